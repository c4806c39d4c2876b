"""Replay gaitpdb walks as live sensor traffic: each walk's samples published to Mosquitto.

One topic per walk (``<prefix>/<study>/<subject>/<walk>``), QoS 1, each subject as its own device
(TLS client certificate; the broker's ACL confines it to its subject's topics),
payload schema v1 (:mod:`bridge.payload`) with per-walk sequence numbers. Speed is a multiple
of real time (1.0 = 100 Hz per walk, every selected walk at once) or 0 for as fast as possible.
Walk files are verified against SHA256SUMS; a corrupt one is reported (file, line) and skipped,
a listed but absent one is skipped with a notice.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bridge import payload as payload_schema
from gaitstream import clients, gaitpdb
from gaitstream.config import Config

log = logging.getLogger("gaitstream.replay")


@dataclass
class ReplayReport:
    walks_selected: int = 0
    walks_done: int = 0
    samples: int = 0
    messages: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    interrupted: bool = False
    # Samples sent per walk: (walk_id → count), so a caller can check what arrived downstream.
    per_walk: dict[str, int] = field(default_factory=dict)
    # Devices that published, credentials issued for this run, publishes the broker refused (by
    # reason, e.g. "Not authorized": a topic outside the device's ACL), reconnects, and messages
    # sent again after a reconnect (the resend window).
    devices: int = 0
    credentials_issued: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    resent: int = 0

    def summary(self) -> str:
        rate = self.samples / self.seconds if self.seconds else 0.0
        state = "interrupted" if self.interrupted else "done"
        refused = sum(self.refused.values())
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.refused.items()))
        return (
            f"replay {state}: {self.samples} samples in {self.messages} messages from "
            f"{self.walks_done}/{self.walks_selected} walks in {self.seconds:.1f}s ({rate:,.0f} samples/s); "
            f"{len(self.skipped)} corrupt skipped, {len(self.missing)} listed but absent; "
            f"{self.devices} device(s), {refused} publishes refused by the broker{f' ({reasons})' if refused else ''}, "
            f"{self.reconnects} reconnects, {self.resent} messages resent"
        )


def select_walks(
    refs: Iterable[gaitpdb.WalkRef],
    studies: Sequence[str] = (),
    groups: Sequence[str] = (),
    subjects: Sequence[str] = (),
    walks: Sequence[str] = (),
    one_per_subject: bool = False,
) -> list[gaitpdb.WalkRef]:
    """Filter walks by study (Ga/Ju/Si), group (Co/Pt), subject id, walk id; all when empty."""
    chosen, seen = [], set()
    for ref in refs:
        group = ref.subject_id[2:4]
        if studies and ref.study not in studies or groups and group not in groups:
            continue
        if subjects and ref.subject_id not in subjects or walks and ref.walk_id not in walks:
            continue
        if one_per_subject and ref.subject_id in seen:
            continue
        seen.add(ref.subject_id)
        chosen.append(ref)
    return chosen


class Publisher:
    """One MQTT connection (a device over TLS, or the dev profile's replayer account) that bounds
    unacknowledged QoS 1 publishes, counts the ones the broker refuses (MQTT 5 reason codes), and
    keeps what it sent in the last ``replay.resend_window_seconds`` to send again after any
    reconnect: a broker killed with kill -9 forgets what it received since its last autosave, and a
    device is the only place those messages still exist. Duplicates are removed downstream."""

    def __init__(self, cfg: Config, max_outstanding: int, *, device: str | None = None, qos: int = 1):
        m = cfg.mqtt
        self.qos = qos
        self.device = device
        self.capacity = threading.BoundedSemaphore(max_outstanding)
        self.answered = threading.Event()
        self.refused_connect: str | None = None
        self.refused: collections.Counter[str] = collections.Counter()
        self.connects = 0
        self.resent = 0
        self.window = cfg.replay.resend_window_seconds
        self._recent: collections.deque[tuple[float, str, bytes]] = collections.deque()
        self._lock = threading.Lock()  # guards _recent only; never held across a paho call
        self._topics: dict[int, str] = {}  # mid → topic, to name what was refused
        self._resend_mids: set[int] = set()
        self._warned: set[str] = set()
        prefix = cfg.replay.client_id_prefix
        if device:
            client_id = f"{prefix}-{device}-{os.getpid()}"
            self.client = clients.mqtt_client(cfg, "device", client_id, device=device)
        else:
            client_id = f"{prefix}-{os.getpid()}-{threading.get_ident() % 10000}"
            self.client = clients.mqtt_client(cfg, "replay", client_id)
        self.client.max_inflight_messages_set(max_outstanding)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=4)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        clients.mqtt_connect(cfg, self.client, keepalive=30)
        self.client.loop_start()
        if not self.answered.wait(10) or self.refused_connect:
            self.close()
            where = f"{m.host}:{clients.mqtt_port(cfg)}"
            raise ConnectionError(self.refused_connect or f"no answer from MQTT broker {where}")

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.refused_connect = f"MQTT broker refused {self.device or 'the replayer'}: {reason_code}"
            client.disconnect()
            self.answered.set()
            return
        self.connects += 1
        self.answered.set()
        if self.connects > 1:
            self._resend_recent()

    def _resend_recent(self) -> None:
        """After a reconnect: everything sent in the resend window goes out again (outside the
        capacity bound: this runs on the network thread, which must not block)."""
        with self._lock:
            self._trim(time.monotonic())
            recent = list(self._recent)
        for _, topic, body in recent:
            info = self.client.publish(topic, body, qos=self.qos)
            self._resend_mids.add(info.mid)  # acknowledged on this same thread, later
        self.resent += len(recent)
        if recent:
            log.warning("%s reconnected: sent its last %d messages again", self.device or "replayer", len(recent))

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        # Runs under paho's message mutex: no lock of ours here (publish() holds none across paho).
        topic = self._topics.pop(mid, "?")
        resend = mid in self._resend_mids
        self._resend_mids.discard(mid)
        if reason_code.is_failure:
            self.refused[str(reason_code)] += 1
            if topic not in self._warned:
                self._warned.add(topic)
                log.warning("broker refused a publish of %s to %s: %s", self.device or "replayer", topic, reason_code)
        if not resend:
            self.capacity.release()

    def _trim(self, now: float) -> None:
        while self._recent and now - self._recent[0][0] > self.window:
            self._recent.popleft()

    def publish(self, topic: str, body: bytes) -> None:
        self.capacity.acquire()
        info = self.client.publish(topic, body, qos=self.qos)
        self._topics[info.mid] = topic
        if self.window > 0:
            now = time.monotonic()
            with self._lock:
                self._recent.append((now, topic, body))
                self._trim(now)

    def drain(self, timeout: float) -> bool:
        """Wait until every publish is acknowledged by the broker."""
        deadline = time.monotonic() + timeout
        held = 0
        try:
            while held < self.capacity._initial_value:  # type: ignore[attr-defined]
                if not self.capacity.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    return False
                held += 1
            return True
        finally:
            for _ in range(held):
                self.capacity.release()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class DeviceFleet:
    """The publishers of one replay: one device per subject (``replay.as_devices``), each with its
    own TLS client certificate, connected on first use; or the one replayer account."""

    def __init__(self, cfg: Config, max_outstanding: int):
        self.cfg = cfg
        self.max_outstanding = max_outstanding
        self.as_devices = cfg.replay.as_devices
        self._publishers: dict[str, Publisher] = {}

    def ensure_credentials(self, subjects: Iterable[str]) -> int:
        """Issue the missing device credentials when the CA is on this machine; returns how many
        were issued. Without the CA, a missing credential is an error naming the command to run."""
        if not self.as_devices:
            return 0
        from gaitstream import pki

        issued = 0
        for subject in sorted(set(subjects)):
            if pki.device_identity(self.cfg, subject).exists:
                continue
            if not pki.can_issue(self.cfg):
                raise ConnectionError(f"no credential for device {subject}: run `gaitstream devices add {subject}`")
            issued += pki.add_device(self.cfg, subject)[1]
        if issued:
            log.info("issued %d device credentials in %s", issued, pki.devices_dir(self.cfg))
        return issued

    def for_subject(self, subject_id: str) -> Publisher:
        key = subject_id if self.as_devices else ""
        publisher = self._publishers.get(key)
        if publisher is None:
            publisher = Publisher(self.cfg, self.max_outstanding, device=subject_id if self.as_devices else None)
            self._publishers[key] = publisher
        return publisher

    def __len__(self) -> int:
        return len(self._publishers)

    def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(p.drain(max(0.0, deadline - time.monotonic())) for p in list(self._publishers.values()))

    def close(self, report: ReplayReport) -> None:
        for publisher in self._publishers.values():
            publisher.close()
            for reason, n in publisher.refused.items():
                report.refused[reason] = report.refused.get(reason, 0) + n
            report.reconnects += max(0, publisher.connects - 1)
            report.resent += publisher.resent
        report.devices = len(self._publishers) if self.as_devices else 0


class _WalkCursor:
    """A loaded walk and how far it has been published."""

    def __init__(self, walk: gaitpdb.Walk, topic: str):
        self.walk = walk
        self.topic = topic
        self.rows = np.column_stack([walk.time, walk.forces])
        self.sent = 0

    @property
    def done(self) -> bool:
        return self.sent >= len(self.rows)

    def next_message(self, upto: int) -> tuple[bytes, int]:
        """Encode samples [sent, upto) as one payload; returns (body, sample count)."""
        ref = self.walk.ref
        batch = payload_schema.SampleBatch(
            v=payload_schema.SCHEMA_VERSION,
            study=ref.study,
            subject_id=ref.subject_id,
            walk_id=ref.walk_id,
            seq=self.sent,
            sent_at_ms=int(time.time() * 1000),
            samples=self.rows[self.sent : upto].tolist(),
        )
        count = upto - self.sent
        self.sent = upto
        return payload_schema.encode(batch), count


def _load(refs: Sequence[gaitpdb.WalkRef], data_dir: Path, report: ReplayReport, ahead: int) -> Iterator[gaitpdb.Walk]:
    """Verified walks in order, read `ahead` files in advance on a thread pool."""
    checksums = gaitpdb.read_checksums(data_dir)

    def read(ref):
        try:
            return gaitpdb.read_walk(ref, checksums.get(f"{ref.walk_id}.txt"))
        except gaitpdb.WalkFileError as exc:
            return exc

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        pending: list[concurrent.futures.Future] = []
        queue = iter(refs)
        for ref in queue:
            pending.append(pool.submit(read, ref))
            if len(pending) >= ahead:
                break
        while pending:
            result = pending.pop(0).result()
            nxt = next(queue, None)
            if nxt is not None:
                pending.append(pool.submit(read, nxt))
            if isinstance(result, gaitpdb.WalkFileError):
                log.warning("skipping corrupt walk file: %s", result)
                report.skipped.append(str(result))
                continue
            yield result


def replay(
    cfg: Config,
    refs: Sequence[gaitpdb.WalkRef],
    *,
    speed: float,
    batch_size: int,
    data_dir: Path,
    missing: Sequence[str] = (),
    progress: bool = True,
    stop: threading.Event | None = None,
    again: Callable[[gaitpdb.Walk], gaitpdb.Walk | None] | None = None,
) -> ReplayReport:
    """Publish the walks; returns what was sent. Ctrl-C (or ``stop``) ends it cleanly.
    In real time, ``again`` gives the walk to stream in place of one that ended (see ``_real_time``)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if speed < 0:
        raise ValueError("speed must be >= 0 (0 = as fast as possible)")
    if again is not None and speed == 0:
        raise ValueError("again needs real time (speed > 0)")
    stop = stop or threading.Event()
    report = ReplayReport(walks_selected=len(refs), missing=list(missing))
    for name in missing:
        log.info("listed in SHA256SUMS but absent, skipped: %s", name)
    prefix = cfg.mqtt.topic_prefix
    fleet = DeviceFleet(cfg, cfg.replay.max_outstanding)
    report.credentials_issued = fleet.ensure_credentials(ref.subject_id for ref in refs)
    bar = tqdm(total=None, unit=" samples", unit_scale=True, disable=not progress, desc="replay", dynamic_ncols=True)
    started = time.monotonic()

    def send(cursor: _WalkCursor, upto: int) -> None:
        body, count = cursor.next_message(upto)
        fleet.for_subject(cursor.walk.ref.subject_id).publish(cursor.topic, body)
        report.samples += count
        report.messages += 1
        report.per_walk[cursor.walk.ref.walk_id] = cursor.sent
        bar.update(count)
        if cursor.done:
            report.walks_done += 1

    def cursor_for(walk: gaitpdb.Walk) -> _WalkCursor:
        ref = walk.ref
        return _WalkCursor(walk, payload_schema.topic_for(prefix, ref.study, ref.subject_id, ref.walk_id))

    try:
        if speed == 0:
            _as_fast_as_possible(
                refs, data_dir, report, cfg.replay.max_active_walks, batch_size, cursor_for, send, stop
            )
        else:
            _real_time(refs, data_dir, report, speed, batch_size, cursor_for, send, stop, bar, again)
    except KeyboardInterrupt:
        report.interrupted = True
    finally:
        report.interrupted = report.interrupted or stop.is_set()
        if not fleet.drain(timeout=30):
            log.warning("some publishes were not acknowledged by the broker within 30 s")
        fleet.close(report)
        bar.close()
        report.seconds = time.monotonic() - started
    return report


def _as_fast_as_possible(refs, data_dir, report, max_active, batch_size, cursor_for, send, stop) -> None:
    """Round-robin over a bounded set of active walks, one batch each, until all are sent."""
    source = _load(refs, data_dir, report, ahead=4)
    active: list[_WalkCursor] = []
    exhausted = False
    while not stop.is_set():
        while not exhausted and len(active) < max_active:
            walk = next(source, None)
            if walk is None:
                exhausted = True
            else:
                active.append(cursor_for(walk))
        if not active:
            return
        for cursor in active:
            send(cursor, min(cursor.sent + batch_size, len(cursor.rows)))
        active = [c for c in active if not c.done]


def _real_time(refs, data_dir, report, speed, batch_size, cursor_for, send, stop, bar, again=None) -> None:
    """All walks at once; sample k of a walk is due k / (100 Hz × speed) after the walk started.
    ``again`` (a walk → the walk to stream in its place once it ends, or None) keeps a cohort whole
    for a soak test: the next walk starts on its own clock as the previous one ends."""
    now = time.monotonic()
    cursors = [(cursor_for(w), now) for w in _load(refs, data_dir, report, ahead=4)]
    bar.total = None if again else sum(len(c.rows) for c, _ in cursors)
    rate = gaitpdb.SAMPLE_RATE_HZ * speed
    while cursors and not stop.is_set():
        next_due = math.inf
        running = []
        for cursor, t0 in cursors:
            due = int((time.monotonic() - t0) * rate) + 1  # samples due for this walk by now
            n = len(cursor.rows)
            while not cursor.done and (cursor.sent + batch_size <= due or due >= n):
                send(cursor, min(cursor.sent + batch_size, n))
            if cursor.done and again is not None and (following := again(cursor.walk)) is not None:
                cursor, t0 = cursor_for(following), time.monotonic()
            if not cursor.done:
                next_due = min(next_due, t0 + (cursor.sent + batch_size) / rate)
                running.append((cursor, t0))
        cursors = running
        if cursors:
            stop.wait(max(0.0, next_due - time.monotonic()))
