"""The model package stands alone: API and stream import it, it imports neither (nor their frameworks)."""

from __future__ import annotations

import ast
from pathlib import Path

from api import diagnosis
from model import features
from streaming import windowing

MODEL_DIR = Path(__file__).resolve().parents[2] / "model"
FORBIDDEN = ("api", "streaming", "litestar", "pyspark", "bridge")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_model_imports_no_api_stream_or_framework():
    files = sorted(MODEL_DIR.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        bad = {name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_stream_and_upload_use_the_same_feature_code():
    assert windowing.features is features
    assert diagnosis.gait_features is features.gait_features
    # gait_features is the incremental accumulator fed whole: the stream's class
    assert "GaitAccumulator" in features.gait_features.__code__.co_names
