"""Probability of Parkinson's for a subject (features from Cassandra) or an uploaded walk file.

The answer carries the model version and the inputs that weigh most in the model, each with the
value seen here and the training medians of both classes, so a reader can see why.

A subject is answered, fastest first, from the streaming job's ``subject_predictions`` row when
the champion scored it (one read by key, no model call), else from the subject's stored feature
maps with :mod:`model.predict` (no pandas); only the window-based feature sets build frames.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from api.errors import InvalidInput, NotFound, ServiceUnavailable
from gaitstream.gaitpdb import WalkFileError, WalkRef, is_usual_walk, parse_walk
from model import families, predict
from model.features import gait_features
from model.registry import LoadedModel

TOP_DRIVERS = 5
UPLOAD_REF = WalkRef(walk_id="upload", subject_id="upload", study="upload")


def require_model(model: LoadedModel | None) -> LoadedModel:
    if model is None:
        raise ServiceUnavailable("no model promoted yet: POST /retrain, then POST /models/{version}/promote")
    return model


def _answer(model: LoadedModel, X: np.ndarray, probability: float | None = None, **extra: Any) -> dict[str, Any]:
    probability = predict.probability(model, X) if probability is None else probability
    with np.errstate(all="ignore"):
        values = np.nanmean(X, axis=0) if len(X) else np.full(len(model.meta["features"]), np.nan)
    return {
        **extra,
        "probability_parkinsons": probability,
        "prediction": predict.label(probability),
        "model_version": model.version,
        "family": model.meta["family"],
        "feature_set": model.meta["feature_set"],
        "calibrated": bool(model.meta.get("calibrated", False)),
        "rows_used": int(len(X)),
        "drivers": drivers(model.meta, values),
    }


def drivers(meta: dict[str, Any], values: np.ndarray) -> list[dict[str, Any]]:
    """The model's heaviest inputs with this case's value and the class medians (empty for KNN)."""
    explain = meta.get("explanation", {})
    weights = explain.get("importance", {})
    index = {name: i for i, name in enumerate(meta["features"])}
    out = []
    for name in sorted(weights, key=weights.get, reverse=True)[:TOP_DRIVERS]:
        value = float(values[index[name]])
        pd_median, control_median = explain["median_parkinsons"].get(name), explain["median_control"].get(name)
        leans = None
        if math.isfinite(value) and pd_median is not None and control_median is not None:
            leans = "parkinsons" if abs(value - pd_median) < abs(value - control_median) else "control"
        out.append(
            {
                "feature": name,
                "importance": weights[name],
                "value": value if math.isfinite(value) else None,
                "median_parkinsons": pd_median,
                "median_control": control_median,
                "closer_to": leans,
            }
        )
    return out


def diagnose_subject(store, model: LoadedModel | None, subject_id: str, use_stream: bool = True) -> dict[str, Any]:
    """The subject's usual walks, averaged as in training (all walks if none is usual)."""
    model = require_model(model)
    if model.meta["feature_set"] in predict.FEATURE_SETS_FROM_MAPS:
        return (use_stream and _from_stream(store, model, subject_id)) or _from_features(store, model, subject_id)
    return _from_windows(store, model, subject_id)


def _from_stream(store, model: LoadedModel, subject_id: str) -> dict[str, Any] | None:
    """The live prediction the streaming job stored with this very model, if any."""
    row = store.subject_prediction(subject_id)
    if row is None or row["model_version"] != model.version:
        return None
    inputs = row["inputs"] or {}
    X = np.array([[inputs.get(name, np.nan) for name in model.meta["features"]]], dtype=np.float64)
    used = row["walks_used"] or []
    return _answer(
        model,
        X,
        probability=float(row["probability"]),
        subject_id=subject_id,
        walks=int(row["walks"]),
        final_walks=int(row["final_walks"] or 0),
        usual_walks=sum(map(is_usual_walk, used)),
    )


def _from_features(store, model: LoadedModel, subject_id: str) -> dict[str, Any]:
    walks = store.walk_feature_maps(subject_id)
    if not walks:
        raise NotFound(f"no walks of subject {subject_id!r} in Cassandra")
    ids = [w["walk_id"] for w in walks]
    maps = [w["features"] for w in walks]
    X, _used = predict.subject_inputs(model, ids, maps)
    return _answer(
        model,
        X,
        subject_id=subject_id,
        walks=len(walks),
        final_walks=sum(bool(w["final"]) for w in walks),
        usual_walks=sum(map(is_usual_walk, ids)),
    )


def _from_windows(store, model: LoadedModel, subject_id: str) -> dict[str, Any]:
    """Window-based feature sets (the seed's KNN): frames of the subject's windows."""
    from model import families

    walks = store.walk_features(subject_id)
    if walks.empty:
        raise NotFound(f"no walks of subject {subject_id!r} in Cassandra")
    usual = walks.loc[walks["walk_id"].map(is_usual_walk)]
    used = usual if len(usual) else walks
    feature_set = model.meta["feature_set"]
    windows = store.windows(subject_id, used["walk_id"].tolist())
    full = windows.loc[~windows["partial"].fillna(True).astype(bool)]
    windows = full if len(full) else windows
    if windows.empty:
        raise NotFound(f"no windows of subject {subject_id!r} in Cassandra")
    _, X, _ = families.design(feature_set, used, windows)
    return _answer(
        model,
        X,
        subject_id=subject_id,
        walks=int(len(walks)),
        final_walks=int(walks["final"].fillna(False).astype(bool).sum()),
        usual_walks=int(len(usual)),
    )


def read_upload(raw: bytes, max_bytes: int) -> bytes:
    """The walk text: gzip inflated (bounded, so a small bomb cannot fill memory), size checked."""
    if raw[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        try:
            text = inflater.decompress(raw, max_bytes + 1)
        except zlib.error as exc:
            raise InvalidInput(f"upload: not a valid gzip file ({exc})", line=0) from None
        raw = text
    if len(raw) > max_bytes:
        raise InvalidInput(f"upload larger than {max_bytes} bytes", line=0)
    return raw


def diagnose_walk(model: LoadedModel | None, raw: bytes, max_bytes: int) -> dict[str, Any]:
    model = require_model(model)
    text = read_upload(raw, max_bytes)
    try:
        walk = parse_walk(text, UPLOAD_REF, "upload")
    except WalkFileError as exc:
        raise InvalidInput(str(exc), line=exc.line, reason=exc.reason) from None
    feature_set = model.meta["feature_set"]
    gait = gait_features(walk.time, walk.forces)
    if feature_set != "windows" and not any(math.isfinite(gait[f"stride_time_mean_{foot}"]) for foot in "lr"):
        raise InvalidInput("upload: no walking found (fewer than 3 valid strides on either foot)", line=0)
    X = families.upload_features(feature_set, gait, walk.forces)
    return _answer(model, X, subject_id=None, walks=1, final_walks=1, samples=int(len(walk)))
