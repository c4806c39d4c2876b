"""The dashboard: the page at ``/``, its static files, plotly.js from the installed ``plotly``
package (no CDN: the page works offline), and the read-only JSON the page polls."""

from __future__ import annotations

import datetime
import math
from pathlib import Path
from typing import Annotated

from litestar import Controller, MediaType, get
from litestar.params import Parameter
from litestar.response import File
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from api.auth import require_token_when_exposed
from api.data import CassandraStore
from api.monitor import PipelineMonitor
from api.schemas import (
    ErrorBody,
    LivePredictions,
    PipelineStatus,
    WalkKey,
    WalkPrediction,
    WalkWindows,
    WindowMeans,
    response,
)
from gaitstream.gaitpdb import SENSOR_XY, SENSORS
from model.registry import CHAMPION, Registry

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_WINDOWS = 2000
BACKEND_DOWN = {503: response(ErrorBody, "Cassandra unavailable")}
# The JSON the page polls is open on loopback and needs the token beyond it (the page and its
# static files stay open: the page asks for the token when a read answers 401).
READ_GUARDS = [require_token_when_exposed]


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the PyPI ``plotly`` package."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def finite(value) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


class DashboardController(Controller):
    tags = ["dashboard"]

    @get("/", include_in_schema=False, sync_to_thread=False)
    def page(self) -> File:
        return File(STATIC_DIR / "index.html", media_type=MediaType.HTML, content_disposition_type="inline")

    @get("/vendor/plotly.min.js", include_in_schema=False, sync_to_thread=False)
    def plotly(self) -> File:
        return File(plotly_js(), media_type="text/javascript", content_disposition_type="inline")

    @get("/dashboard/pipeline", guards=READ_GUARDS, sync_to_thread=True)
    def pipeline(self, pipeline: PipelineMonitor) -> PipelineStatus:
        """Health of every service and pipeline process, streaming queries, Kafka lag, bridge counters."""
        return PipelineStatus(**pipeline.snapshot())

    @get("/dashboard/predictions", guards=READ_GUARDS, sync_to_thread=True, responses=BACKEND_DOWN)
    def predictions(
        self, store: CassandraStore, registry: Registry, limit: Annotated[int, Parameter(ge=1, le=1000)] = 100
    ) -> LivePredictions:
        """The streaming job's live walk predictions: walks still streaming first, then the latest."""
        now = datetime.datetime.now(datetime.UTC)
        walks = []
        for row in store.walk_predictions():
            updated = row["updated_at"]
            if updated is not None and updated.tzinfo is None:
                updated = updated.replace(tzinfo=datetime.UTC)  # the driver returns naive UTC
            walks.append(
                WalkPrediction(
                    subject_id=row["subject_id"],
                    walk_id=row["walk_id"],
                    study=row["study"],
                    probability=finite(row["probability"]),
                    label=row["label"],
                    model_version=row["model_version"],
                    model_alias=row["model_alias"],
                    final=row["final"],
                    samples=row["samples"],
                    updated_at=updated.isoformat() if updated else None,
                    age_s=(now - updated).total_seconds() if updated else None,
                )
            )
        walks.sort(key=lambda w: (bool(w.final), w.age_s if w.age_s is not None else math.inf))
        return LivePredictions(alias=CHAMPION, alias_version=registry.current_version(), walks=walks[:limit])

    @get("/dashboard/walks", guards=READ_GUARDS, sync_to_thread=True, responses=BACKEND_DOWN)
    def walks(self, store: CassandraStore) -> list[WalkKey]:
        """Every walk with stored gait features, sorted by subject and walk."""
        keys = sorted(store.walk_keys(), key=lambda k: (k["subject_id"], k["walk_id"]))
        return [WalkKey(**k) for k in keys]

    @get("/dashboard/windows", guards=READ_GUARDS, sync_to_thread=True, responses=BACKEND_DOWN)
    def windows(
        self,
        store: CassandraStore,
        subject_id: Annotated[str, Parameter(pattern=KEY_PATTERN)],
        walk_id: Annotated[str, Parameter(pattern=KEY_PATTERN)],
        after: Annotated[int, Parameter(ge=-1, le=10_000_000)] = -1,
    ) -> WalkWindows:
        """A walk's window means with ``window_index > after`` (at most 2000): poll with the last index seen."""
        frame = store.walk_windows_after(subject_id, walk_id, after).head(MAX_WINDOWS)
        windows = [
            WindowMeans(
                window_index=int(row["window_index"]),
                sample_count=row["sample_count"],
                partial=row["partial"],
                total_l=finite(row["total_l"]),
                total_r=finite(row["total_r"]),
                sensors={s: finite(row[s]) for s in SENSORS},
            )
            for row in frame.to_dict("records")
        ]
        return WalkWindows(
            subject_id=subject_id,
            walk_id=walk_id,
            after_index=after,
            windows=windows,
            sensor_xy={s: [float(x), float(y)] for s, (x, y) in SENSOR_XY.items()},
        )


static_files = create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False)
DASHBOARD_HANDLERS: list[ControllerRouterHandler] = [DashboardController, static_files]
