"""Versioned model registry on disk, with named aliases (MLflow's model registry is the model).

Layout under ``root``::

    <version>/model.joblib     the fitted pipeline (a pickle)
    <version>/meta.json        family, features, metrics, lineage (run, data, feature version, commit)
    registry.json              the index, written only by the trainer and alias moves:
                               {"versions": {v: {"sha256", "meta_sha256", "run_id", "created_at"}},
                                "aliases": {"champion": v, ...}, "history": [alias moves, newest last]}

joblib files are pickles and unpickling runs code, so the digests live in the index, outside the
version's folder: :meth:`Registry.load` reads the artifact's bytes once, hashes them, and unpickles
those very bytes only if both the model's and meta.json's digests equal the index's. Tampering
with ``model.joblib``, ``meta.json`` or both is refused. Every file is written under a temporary
name and renamed, and index updates hold an exclusive lock, so a reader never sees half a model
or half an index, and moving an alias (promote, roll back) is atomic.

``champion`` is what ``/diagnose`` and the streaming job score with; ``challenger`` is a candidate.
A registry from before aliases (a ``current`` file, digests only in each meta.json) is adopted
once: its versions enter the index with the digests their meta.json recorded, ``current``
becomes ``champion``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import sklearn

from model.errors import IntegrityError, NoModel, NotFound

MODEL_FILE, META_FILE, INDEX_FILE, LOCK_FILE = "model.joblib", "meta.json", "registry.json", ".registry.lock"
LEGACY_CURRENT_FILE = "current"
CHAMPION, CHALLENGER = "champion", "challenger"
VERSION_PATTERN = re.compile(r"^v\d{8}T\d{6}\d{6}Z-[0-9a-f]{6}$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
HISTORY_KEEP = 200


@dataclass(frozen=True)
class LoadedModel:
    version: str
    pipeline: Any
    meta: dict[str, Any]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(Path(path).read_bytes())


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def check_alias(name: str) -> str:
    if not ALIAS_PATTERN.match(name):
        raise NotFound(f"bad alias name {name[:40]!r} (lower-case letters, digits, - and _; 1-32 characters)")
    return name


class Registry:
    def __init__(self, root: Path, create: bool = True):
        """``create=False`` for readers that must not make the folder (the streaming job on YARN,
        where it may not exist): every read then fails with an OSError the reader reports."""
        self.root = Path(root)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)

    # -- index ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def index(self) -> dict[str, Any]:
        """The index as stored (adopting a legacy registry the first time)."""
        try:
            return json.loads((self.root / INDEX_FILE).read_text())
        except FileNotFoundError:
            pass  # first use: adopt (or create) under the lock
        with self._locked():
            if not (self.root / INDEX_FILE).exists():
                self._write_index(self._adopt_legacy())
            return json.loads((self.root / INDEX_FILE).read_text())

    def _index_locked(self) -> dict[str, Any]:
        """The index, for a caller holding the lock (a legacy registry is adopted in memory)."""
        try:
            return json.loads((self.root / INDEX_FILE).read_text())
        except FileNotFoundError:
            return self._adopt_legacy()

    def index_stamp(self) -> tuple[int, int] | None:
        """Cheap change detector for watchers (mtime ns, size) of the index; None if absent."""
        try:
            st = (self.root / INDEX_FILE).stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def _write_index(self, index: dict[str, Any]) -> None:
        _atomic_write(self.root / INDEX_FILE, json.dumps(index, indent=1, sort_keys=True).encode())

    def _adopt_legacy(self) -> dict[str, Any]:
        index: dict[str, Any] = {"versions": {}, "aliases": {}, "history": []}
        for folder in sorted(p for p in self.root.iterdir() if VERSION_PATTERN.match(p.name)):
            meta_path = folder / META_FILE
            if not meta_path.is_file():
                continue
            raw = meta_path.read_bytes()
            meta = json.loads(raw)
            index["versions"][folder.name] = {
                "sha256": meta.get("sha256"),
                "meta_sha256": sha256_bytes(raw),
                "run_id": meta.get("run_id"),
                "created_at": meta.get("created_at"),
            }
        try:
            current = (self.root / LEGACY_CURRENT_FILE).read_text().strip()
        except FileNotFoundError:
            current = ""
        if current in index["versions"]:
            index["aliases"][CHAMPION] = current
            index["history"].append(
                {
                    "alias": CHAMPION,
                    "from": None,
                    "to": current,
                    "at": _now(),
                    "reason": "adopted from the legacy 'current' pointer",
                }
            )
        return index

    # -- versions -------------------------------------------------------------------------------
    def save(self, pipeline: Any, meta: dict[str, Any], run_id: str) -> str:
        """Write a new version (model, meta), then record both digests in the index; returns its name."""
        now = dt.datetime.now(dt.UTC)
        version = f"v{now:%Y%m%dT%H%M%S%f}Z-{run_id[:6]}"
        tmp_folder = Path(tempfile.mkdtemp(dir=self.root, prefix=".incoming-"))
        buffer = io.BytesIO()
        joblib.dump(pipeline, buffer)
        model_bytes = buffer.getvalue()
        (tmp_folder / MODEL_FILE).write_bytes(model_bytes)
        full_meta = {
            **meta,
            "version": version,
            "run_id": run_id,
            "created_at": now.isoformat(),
            "sha256": sha256_bytes(model_bytes),
            "sklearn_version": sklearn.__version__,
            "model_file": MODEL_FILE,
        }
        meta_bytes = json.dumps(full_meta, indent=1, allow_nan=False).encode()
        (tmp_folder / META_FILE).write_bytes(meta_bytes)
        with self._locked():
            index = self._index_locked()
            os.replace(tmp_folder, self.root / version)  # the version appears complete or not at all
            index["versions"][version] = {
                "sha256": full_meta["sha256"],
                "meta_sha256": sha256_bytes(meta_bytes),
                "run_id": run_id,
                "created_at": full_meta["created_at"],
            }
            self._write_index(index)
        return version

    def _entry(self, version: str) -> dict[str, Any]:
        entry = self.index()["versions"].get(version) if VERSION_PATTERN.match(version) else None
        if entry is None or not (self.root / version / META_FILE).is_file():
            raise NotFound(f"no model version {version!r}")
        return entry

    def _verified(self, version: str, name: str, digest_key: str) -> bytes:
        expected = self._entry(version)[digest_key]
        data = (self.root / version / name).read_bytes()
        actual = sha256_bytes(data)
        if actual != expected:
            raise IntegrityError(
                f"model {version}: sha256 of {name} is {actual[:12]}…, the registry index says "
                f"{str(expected)[:12]}…; refusing to load it",
                version=version,
            )
        return data

    def meta(self, version: str) -> dict[str, Any]:
        """meta.json of a version, checked against the index (a rewritten meta.json is refused)."""
        return json.loads(self._verified(version, META_FILE, "meta_sha256"))

    def versions(self) -> list[str]:
        """All registered versions, oldest first."""
        return sorted(v for v in self.index()["versions"] if (self.root / v / META_FILE).is_file())

    def load(self, version: str) -> LoadedModel:
        """Unpickle a version: the bytes hashed are the bytes unpickled, and only if both digests match."""
        meta = self.meta(version)
        data = self._verified(version, MODEL_FILE, "sha256")
        return LoadedModel(version, joblib.load(io.BytesIO(data)), meta)

    # -- aliases --------------------------------------------------------------------------------
    def aliases(self) -> dict[str, str]:
        return dict(self.index()["aliases"])

    def alias(self, name: str) -> str | None:
        return self.index()["aliases"].get(check_alias(name))

    def history(self, name: str | None = None) -> list[dict[str, Any]]:
        """Alias moves, newest first (optionally of one alias)."""
        moves = self.index()["history"]
        return [m for m in reversed(moves) if name is None or m["alias"] == name]

    def set_alias(self, name: str, version: str, reason: str = "") -> LoadedModel:
        """Verify and load ``version``, then point ``name`` at it (atomic, recorded in the history)."""
        check_alias(name)
        loaded = self.load(version)
        with self._locked():
            index = self._index_locked()
            previous = index["aliases"].get(name)
            index["aliases"][name] = version
            index["history"] = (
                index["history"] + [{"alias": name, "from": previous, "to": version, "at": _now(), "reason": reason}]
            )[-HISTORY_KEEP:]
            self._write_index(index)
        return loaded

    def rollback(self, name: str) -> LoadedModel:
        """Point ``name`` back at the version it held before its last move."""
        moves = self.history(check_alias(name))
        if not moves or moves[0]["from"] is None:
            raise NotFound(f"alias {name!r} has no earlier version to roll back to")
        return self.set_alias(name, moves[0]["from"], reason=f"rollback from {moves[0]['to']}")

    def remove_alias(self, name: str) -> None:
        with self._locked():
            index = self._index_locked()
            previous = index["aliases"].pop(check_alias(name), None)
            if previous is None:
                raise NotFound(f"no alias {name!r}")
            index["history"] = (
                index["history"] + [{"alias": name, "from": previous, "to": None, "at": _now(), "reason": "removed"}]
            )[-HISTORY_KEEP:]
            self._write_index(index)

    # -- the champion (what /diagnose and the stream use) ----------------------------------------
    def current_version(self) -> str | None:
        return self.alias(CHAMPION)

    def promote(self, version: str) -> LoadedModel:
        return self.set_alias(CHAMPION, version, reason="promote")


class AliasWatcher:
    """The model behind an alias, reloaded when the alias moves (one ``stat`` per call otherwise).

    Used by the streaming job each micro-batch and by every API worker process, so an alias moved
    through any worker is seen by all of them within one call.
    """

    def __init__(self, registry: Registry, alias: str = CHAMPION):
        self.registry, self.alias = registry, check_alias(alias)
        self._stamp: tuple[int, int] | None = None
        self._model: LoadedModel | None = None

    def get(self) -> LoadedModel | None:
        stamp = self.registry.index_stamp()
        if stamp is None and self._stamp is None and self._model is None:
            self.registry.index()  # adopt a legacy registry, if any
            stamp = self.registry.index_stamp()
        if stamp != self._stamp:
            version = self.registry.alias(self.alias)
            if version is None:
                self._model = None
            elif self._model is None or self._model.version != version:
                self._model = self.registry.load(version)
            self._stamp = stamp
        return self._model

    def require(self) -> LoadedModel:
        model = self.get()
        if model is None:
            raise NoModel(f"no model behind alias {self.alias!r} yet: POST /retrain, then promote a version")
        return model
