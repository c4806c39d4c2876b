"""api.registry: checksum verified before unpickling, atomic promotion."""
from __future__ import annotations

import json

import pytest
from sklearn.dummy import DummyClassifier

from api.errors import IntegrityError, NotFound
from api.registry import Registry, sha256_file


def test_save_load_promote(tmp_path):
    registry = Registry(tmp_path)
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    version = registry.save(model, {"family": "dummy"}, run_id="abcdef123")
    meta = json.loads((tmp_path / version / "meta.json").read_text())
    assert meta["sha256"] == sha256_file(tmp_path / version / "model.joblib") and meta["sklearn_version"]
    assert registry.current_version() is None
    registry.promote(version)
    assert registry.current_version() == version and registry.versions() == [version]
    assert registry.load(version).pipeline.predict([[0]]).tolist() in ([0], [1])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp files left behind"


def test_tampered_artifact_is_refused_and_not_promoted(tmp_path):
    registry = Registry(tmp_path)
    good = registry.save(DummyClassifier().fit([[0], [1]], [0, 1]), {}, run_id="111111")
    bad = registry.save(DummyClassifier().fit([[0], [1]], [0, 1]), {}, run_id="222222")
    registry.promote(good)
    with open(tmp_path / bad / "model.joblib", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(IntegrityError):
        registry.load(bad)
    with pytest.raises(IntegrityError):
        registry.promote(bad)
    assert registry.current_version() == good


@pytest.mark.parametrize("version", ["../etc", "current", "v1", ""])
def test_unknown_or_path_like_versions_are_not_found(tmp_path, version):
    with pytest.raises(NotFound):
        Registry(tmp_path).load(version)
