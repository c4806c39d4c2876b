"""model.registry: digests in the index verified before unpickling, aliases moved atomically."""

from __future__ import annotations

import json

import pytest
from sklearn.dummy import DummyClassifier

from model.errors import IntegrityError, NoModel, NotFound
from model.registry import CHALLENGER, CHAMPION, AliasWatcher, Registry, sha256_file


def test_save_load_promote(tmp_path):
    registry = Registry(tmp_path)
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    version = registry.save(model, {"family": "dummy"}, run_id="abcdef123")
    meta = json.loads((tmp_path / version / "meta.json").read_text())
    assert meta["sha256"] == sha256_file(tmp_path / version / "model.joblib") and meta["sklearn_version"]
    assert registry.current_version() is None
    registry.promote(version)
    assert registry.current_version() == version and registry.versions() == [version]
    assert registry.load(version).pipeline.predict_proba([[0]]).tolist() == [[0.5, 0.5]]
    assert registry.aliases() == {CHAMPION: version}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.name != ".registry.lock"], (
        "no temp files left behind"
    )


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


def _dummy(registry: Registry, run_id: str) -> str:
    return registry.save(DummyClassifier().fit([[0], [1]], [0, 1]), {"family": "dummy"}, run_id=run_id)


def test_rewritten_meta_json_is_refused_even_with_a_matching_model_digest(tmp_path):
    """The digests live in the index: editing meta.json's sha256 to match a tampered model fails."""
    registry = Registry(tmp_path)
    version = _dummy(registry, "333333")
    model_file, meta_file = tmp_path / version / "model.joblib", tmp_path / version / "meta.json"
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    meta = json.loads(meta_file.read_text())
    meta["sha256"] = sha256_file(model_file)
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(IntegrityError, match="meta.json"):
        registry.load(version)
    with pytest.raises(IntegrityError):
        registry.meta(version)


def test_aliases_move_and_roll_back_with_history(tmp_path):
    registry = Registry(tmp_path)
    first, second = _dummy(registry, "aaaaaa"), _dummy(registry, "bbbbbb")
    registry.promote(first)
    registry.set_alias(CHALLENGER, second)
    assert registry.aliases() == {CHAMPION: first, CHALLENGER: second}
    registry.promote(second)
    assert registry.current_version() == second
    assert registry.rollback(CHAMPION).version == first and registry.current_version() == first
    assert [(m["alias"], m["from"], m["to"]) for m in registry.history(CHAMPION)][:2] == [
        (CHAMPION, second, first),
        (CHAMPION, first, second),
    ]
    registry.remove_alias(CHALLENGER)
    assert registry.aliases() == {CHAMPION: first}
    with pytest.raises(NotFound):
        registry.set_alias("Bad Alias!", first)
    with pytest.raises(NotFound):
        Registry(tmp_path / "empty").rollback(CHAMPION)


def test_watcher_follows_the_alias_without_reloading_otherwise(tmp_path):
    registry = Registry(tmp_path)
    watcher = AliasWatcher(Registry(tmp_path))  # another process's view of the same folder
    assert watcher.get() is None
    with pytest.raises(NoModel):
        watcher.require()
    first, second = _dummy(registry, "cccccc"), _dummy(registry, "dddddd")
    registry.promote(first)
    loaded = watcher.get()
    assert loaded.version == first and watcher.get() is loaded  # unchanged index: same object
    registry.promote(second)
    assert watcher.get().version == second
    registry.remove_alias(CHAMPION)
    assert watcher.get() is None


def test_legacy_registry_is_adopted_once(tmp_path):
    """A registry from before aliases (digest in meta.json, a `current` file) keeps working."""
    registry = Registry(tmp_path)
    version = _dummy(registry, "eeeeee")
    (tmp_path / "registry.json").unlink()
    (tmp_path / "current").write_text(version + "\n")
    adopted = Registry(tmp_path)
    assert adopted.current_version() == version and adopted.versions() == [version]
    assert adopted.load(version).version == version


def test_a_reader_does_not_create_the_folder_and_fails_as_oserror(tmp_path):
    """The streaming job reads the registry with create=False: a missing folder is an OSError it reports."""
    missing = tmp_path / "nowhere" / "models"
    watcher = AliasWatcher(Registry(missing, create=False))
    with pytest.raises(OSError):
        watcher.get()
    assert not missing.exists()
