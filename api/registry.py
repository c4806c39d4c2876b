"""Versioned model registry on disk: ``<version>/model.joblib`` + ``meta.json``, and ``current``.

joblib files are pickles: unpickling runs code, so :meth:`Registry.load` hashes the file first and
refuses it unless the sha256 equals the one recorded in meta.json at save time. Every file is
written under a temporary name and renamed (``os.replace``), so a reader never sees half a model
and promotion (rewriting ``current``) is atomic.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import sklearn

from api.errors import IntegrityError, NotFound

MODEL_FILE, META_FILE, CURRENT_FILE = "model.joblib", "meta.json", "current"
VERSION_PATTERN = re.compile(r"^v\d{8}T\d{6}\d{6}Z-[0-9a-f]{6}$")


@dataclass(frozen=True)
class LoadedModel:
    version: str
    pipeline: Any
    meta: dict[str, Any]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


class Registry:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def save(self, pipeline: Any, meta: dict[str, Any], run_id: str) -> str:
        """Write a new version (model, then meta with the model's sha256); returns its name."""
        now = dt.datetime.now(dt.timezone.utc)
        version = f"v{now:%Y%m%dT%H%M%S%f}Z-{run_id[:6]}"
        folder = self.root / version
        tmp_folder = Path(tempfile.mkdtemp(dir=self.root, prefix=".incoming-"))
        joblib.dump(pipeline, tmp_folder / MODEL_FILE)
        full_meta = {**meta, "version": version, "run_id": run_id, "created_at": now.isoformat(),
                     "sha256": sha256_file(tmp_folder / MODEL_FILE), "sklearn_version": sklearn.__version__,
                     "model_file": MODEL_FILE}
        (tmp_folder / META_FILE).write_text(json.dumps(full_meta, indent=1, allow_nan=False))
        os.replace(tmp_folder, folder)  # the version appears complete or not at all
        return version

    def _folder(self, version: str) -> Path:
        if not VERSION_PATTERN.match(version) or not (self.root / version / META_FILE).is_file():
            raise NotFound(f"no model version {version!r}")
        return self.root / version

    def meta(self, version: str) -> dict[str, Any]:
        return json.loads((self._folder(version) / META_FILE).read_text())

    def versions(self) -> list[str]:
        """All complete versions, oldest first."""
        return sorted(p.name for p in self.root.iterdir() if VERSION_PATTERN.match(p.name) and (p / META_FILE).is_file())

    def load(self, version: str) -> LoadedModel:
        """Unpickle a version only after its sha256 matched meta.json."""
        folder = self._folder(version)
        meta = json.loads((folder / META_FILE).read_text())
        actual = sha256_file(folder / MODEL_FILE)
        if actual != meta.get("sha256"):
            raise IntegrityError(f"model {version}: sha256 of {MODEL_FILE} is {actual[:12]}…, meta.json says "
                                 f"{str(meta.get('sha256'))[:12]}…; refusing to load it", version=version)
        return LoadedModel(version, joblib.load(folder / MODEL_FILE), meta)

    def current_version(self) -> str | None:
        try:
            version = (self.root / CURRENT_FILE).read_text().strip()
        except FileNotFoundError:
            return None
        return version or None

    def promote(self, version: str) -> LoadedModel:
        """Verify and load ``version``, then point ``current`` at it (atomic rename)."""
        loaded = self.load(version)
        _atomic_write(self.root / CURRENT_FILE, (version + "\n").encode())
        return loaded
