"""In-memory stand-ins for the services, so rules that live in our code run without them.

* :class:`FakeProducer` / :class:`FakeMqttClient`: what the bridge sees of Kafka and Mosquitto.
  Futures are kafka-python's own, so callbacks run exactly as the real producer runs them.
* :class:`FakeCassandraStore` / :class:`FakeMongoClient`: what the API and the trainer see of the
  databases; the real :class:`api.runs.RunStore` runs over the fake Mongo client.
* :func:`gait_table` / :func:`demographics_text`: a small labelled feature table (no Cassandra).

Each fake can be put ``down`` (every call raises the driver's own exception) to test 503 answers.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from kafka.future import Future

from api.data import WALK_KEY_COLUMNS, WINDOW_KEY_COLUMNS, CassandraStore, walks_frame
from api.settings import ApiSettings
from gaitstream.gaitpdb import FORCE_CHANNELS
from model.families import GAIT_COLUMNS
from model.features import FEATURE_VERSION


# --- Kafka and MQTT (the bridge) ----------------------------------------------------------------
@dataclass
class Sent:
    """One record handed to the fake producer, and the future the bridge waits on."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None
    future: Future = field(default_factory=Future)

    @property
    def header(self) -> dict[str, bytes]:
        return dict(self.headers or [])


class FakeProducer:
    """Records every ``send``; confirms it at once, fails it, or holds it for the test to resolve.

    ``failures`` are raised, one per send, before the producer behaves normally again (``None`` in
    the list confirms that send). ``hold=True`` leaves futures pending: resolve with :meth:`confirm`.
    """

    def __init__(
        self, failures: list[BaseException | None] | None = None, hold: bool = False, events: list[tuple] | None = None
    ):
        self.failures = list(failures or [])
        self.hold = hold
        self.events = events if events is not None else []
        self.sent: list[Sent] = []
        self._lock = threading.Lock()

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None, headers=None) -> Future:
        record = Sent(topic, key, value, headers)
        with self._lock:
            self.sent.append(record)
            outcome = self.failures.pop(0) if self.failures else None
        self.events.append(("send", topic))
        if outcome is not None:
            self.events.append(("failed", topic))
            record.future.failure(outcome)
        elif not self.hold:
            self.confirm(record)
        return record.future

    def confirm(self, record: Sent) -> None:
        self.events.append(("confirmed", record.topic))
        record.future.success(SimpleNamespace(topic=record.topic, partition=0, offset=len(self.sent) - 1))

    def to(self, topic: str) -> list[Sent]:
        return [record for record in self.sent if record.topic == topic]

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self, timeout: float | None = None) -> None:
        pass


class FakeMqttClient:
    """The part of paho's client the bridge calls; ``acks`` are the (mid, qos) PUBACKs sent."""

    def __init__(self, events: list[tuple] | None = None):
        self.events = events if events is not None else []
        self.acks: list[tuple[int, int]] = []
        self.acked = threading.Event()

    def username_pw_set(self, username, password=None) -> None:
        pass

    def reconnect_delay_set(self, min_delay: int = 1, max_delay: int = 120) -> None:
        pass

    def ack(self, mid: int, qos: int) -> None:
        self.events.append(("ack", mid))
        self.acks.append((mid, qos))
        self.acked.set()


# --- Cassandra and MongoDB (the API, the trainer) -----------------------------------------------
class FakeCassandraStore(CassandraStore):
    """:class:`api.data.CassandraStore`'s reads over in-memory rows (``walk_features`` rows as dicts).

    A subclass because Litestar checks an injected dependency against the handler's annotation;
    every read is overridden, and :meth:`session` refuses, so nothing here ever connects.
    """

    def __init__(self, walks: list[dict[str, Any]] | None = None, down: BaseException | None = None):
        self.walks = walks or []
        self.windows_frame = pd.DataFrame(columns=list(WINDOW_KEY_COLUMNS) + list(FORCE_CHANNELS))
        self.predictions: dict[str, dict[str, Any]] = {}
        self.down = down
        self.release = threading.Event()  # cleared by a test to hold walk_features (a long run)
        self.release.set()
        self.closed = False

    def _call(self) -> None:
        if self.down is not None:
            raise self.down

    def session(self):
        raise AssertionError("FakeCassandraStore has no session: override the read that needed one")

    def ping(self) -> str:
        self._call()
        return "fake"

    def walk_features(self, subject_id: str | None = None) -> pd.DataFrame:
        self.release.wait(10)
        self._call()
        rows = [SimpleNamespace(**w) for w in self.walks if subject_id in (None, w["subject_id"])]
        return walks_frame(rows)

    def walk_feature_maps(self, subject_id: str) -> list[dict[str, Any]]:
        self._call()
        return [
            {k: w[k] for k in ("walk_id", "final", "feature_version", "features")}
            for w in self.walks
            if w["subject_id"] == subject_id
        ]

    def subject_prediction(self, subject_id: str) -> dict[str, Any] | None:
        self._call()
        return self.predictions.get(subject_id)

    def walk_predictions(self) -> list[dict[str, Any]]:
        self._call()
        return []

    def windows(self, subject_id: str | None = None, walk_ids: list[str] | None = None) -> pd.DataFrame:
        self._call()
        return self.windows_frame

    def walk_keys(self) -> list[dict[str, Any]]:
        self._call()
        return [{k: w[k] for k in WALK_KEY_COLUMNS} for w in self.walks]

    def walk_windows_after(self, subject_id: str, walk_id: str, after_index: int) -> pd.DataFrame:
        self._call()
        return self.windows_frame

    def close(self) -> None:
        self.closed = True


class _Cursor(list):
    def sort(self, key: str, direction: int = 1) -> _Cursor:  # type: ignore[override]
        return _Cursor(sorted(self, key=lambda doc: doc.get(key), reverse=direction < 0))

    def limit(self, count: int) -> _Cursor:
        return _Cursor(self[:count])


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    return all(doc.get(k) in v["$in"] if isinstance(v, dict) else doc.get(k) == v for k, v in query.items())


class FakeCollection:
    """The pymongo collection calls :class:`api.runs.RunStore` makes (equality, ``$in``, ``$set``)."""

    def __init__(self, client: FakeMongoClient):
        self.database = SimpleNamespace(client=client)
        self.docs: dict[str, dict[str, Any]] = {}

    def insert_one(self, doc: dict[str, Any]) -> None:
        self.database.client.call()
        self.docs[doc["_id"]] = copy.deepcopy(doc)

    def find_one(self, query: dict[str, Any]) -> dict[str, Any] | None:
        return next(iter(self.find(query)), None)

    def find(self, query: dict[str, Any] | None = None) -> _Cursor:
        self.database.client.call()
        return _Cursor(copy.deepcopy(d) for d in self.docs.values() if _matches(d, query or {}))

    def update_one(self, query: dict[str, Any], update: dict[str, Any]) -> None:
        self.update_many(query, update, limit=1)

    def update_many(self, query: dict[str, Any], update: dict[str, Any], limit: int | None = None):
        self.database.client.call()
        hits = [d for d in self.docs.values() if _matches(d, query)][:limit]
        for doc in hits:
            doc.update(copy.deepcopy(update["$set"]))
        return SimpleNamespace(modified_count=len(hits))


class FakeMongoClient:
    """``client[database][collection]`` → :class:`FakeCollection`; ``down`` makes every call raise it."""

    def __init__(self, down: BaseException | None = None):
        self.down = down
        self.collections: dict[tuple[str, str], FakeCollection] = {}
        self.admin = SimpleNamespace(command=self._command)

    def call(self) -> None:
        if self.down is not None:
            raise self.down

    def _command(self, name: str) -> dict[str, Any]:
        self.call()
        return {"ok": 1}

    def __getitem__(self, database: str):
        client = self

        class _Database:
            def __getitem__(self, collection: str) -> FakeCollection:
                return client.collections.setdefault((database, collection), FakeCollection(client))

        return _Database()

    def close(self) -> None:
        pass


# --- a small labelled feature table ---------------------------------------------------------------
def gait_table(per_class_per_study: int = 4, seed: int = 0) -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """(``walk_features`` rows, Parkinson's by subject): two usual walks a subject in Ga, one in Ju and
    Si, one dual-task walk per Ga subject; the first ten gait features carry the label."""
    rng = np.random.default_rng(seed)
    walks, labels = [], {}
    for study in ("Ga", "Ju", "Si"):
        for group in ("Pt", "Co"):
            for number in range(1, per_class_per_study + 1):
                subject_id = f"{study}{group}{number:02d}"
                labels[subject_id] = group == "Pt"
                numbers = ("01", "02", "10") if study == "Ga" else ("01",)
                for walk in numbers:
                    values = rng.normal(size=len(GAIT_COLUMNS))
                    values[:10] += 3.0 * labels[subject_id]
                    walks.append(
                        {
                            "subject_id": subject_id,
                            "walk_id": f"{subject_id}_{walk}",
                            "study": study,
                            "samples": 12_000,
                            "final": True,
                            "feature_version": FEATURE_VERSION,
                            "features": dict(zip(GAIT_COLUMNS, values.tolist(), strict=True)),
                        }
                    )
    return walks, labels


def demographics_text(labels: dict[str, bool]) -> str:
    """demographics.txt for the subjects (Group 1 = Parkinson's, 2 = control)."""
    lines = ["ID\tStudy\tGroup\tGender\tAge"]
    lines += [f"{s}\t{s[:2]}\t{1 if pd_ else 2}\t1\t70" for s, pd_ in labels.items()]
    return "\n".join(lines) + "\n"


def api_settings(root: Path, labels: dict[str, bool], **overrides: Any) -> ApiSettings:
    """Settings of an isolated API: registry and demographics.txt under ``root``, a small fast CV."""
    data_dir = root / "gaitpdb"
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "demographics.txt").write_text(demographics_text(labels))
    values = dict(
        token="unit-token",
        registry_dir=root / "registry",
        data_dir=data_dir,
        keyspace="unit",
        mongo_database="gaitstream_unit",
        runs_collection="runs",
        default_family="knn",
        default_feature_set="gait",
        cv_folds=3,
        cv_repeats=1,
        seed=0,
        bias_variance_rounds=0,
        forest_trees=10,
        max_upload_bytes=1_000_000,
        backend_timeout=1.0,
        prediction_cache_seconds=0.0,
    )
    return ApiSettings(**{**values, **overrides})
