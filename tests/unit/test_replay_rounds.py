"""Real-time replay with ``again``: a walk that ends is followed at once by the next, on its own clock."""

from __future__ import annotations

import dataclasses
import threading

from tqdm import tqdm

from bridge import replay
from gaitstream import config, gaitpdb


def test_a_walk_that_ends_is_followed_by_its_next_round_from_seq_0():
    folder = config.load().path("data.gaitpdb_dir")
    ref = min(gaitpdb.list_walks(folder)[0], key=lambda r: r.path.stat().st_size)  # the shortest file
    sent: list[tuple[str, int, int]] = []  # walk id, first seq, samples

    def cursor_for(walk):
        return replay._WalkCursor(walk, f"gait/{walk.ref.walk_id}")

    def send(cursor, upto):
        sent.append((cursor.walk.ref.walk_id, cursor.sent, upto - cursor.sent))
        cursor.sent = upto

    rounds = iter(["r2"])

    def again(walk):
        tag = next(rounds, None)
        return None if tag is None else gaitpdb.Walk(dataclasses.replace(walk.ref, walk_id=tag), walk.time, walk.forces)

    report = replay.ReplayReport(walks_selected=1)
    bar = tqdm(disable=True)
    replay._real_time([ref], folder, report, 500.0, 10, cursor_for, send, threading.Event(), bar, again)
    n = len(gaitpdb.read_walk(ref).time)
    first = [s for s in sent if s[0] == ref.walk_id]
    second = [s for s in sent if s[0] == "r2"]
    assert sum(count for *_, count in first) == n and sum(count for *_, count in second) == n
    assert second[0][1] == 0 and sent.index(second[0]) == len(first)  # starts after the first ends, at seq 0
