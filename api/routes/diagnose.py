"""POST /diagnose (a subject's features from Cassandra) and POST /diagnose/walk (an uploaded file)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio.to_thread
from litestar import Controller, Request, post
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema

from api import diagnosis
from api.auth import require_token_when_exposed
from api.data import CassandraStore
from api.errors import InvalidInput
from api.metrics import Metrics
from api.schemas import DiagnoseSubject, Diagnosis, ErrorBody, InvalidWalkBody, response
from api.settings import ApiSettings
from api.training import ModelHolder

NO_MODEL = response(ErrorBody, "no model promoted yet, or Cassandra unavailable")


@dataclass
class WalkUploadOperation(Operation):
    """The upload's body is read by hand (raw text, gzip, or multipart), so describe it here."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING, description="gaitpdb walk: 19 tab-separated numbers a line")
        binary = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="walk text, or gzip of it")
        form = Schema(type=OpenAPIType.OBJECT, properties={"file": binary}, required=["file"])
        self.request_body = RequestBody(
            required=True,
            content={
                "text/plain": OpenAPIMediaType(schema=text),
                "application/octet-stream": OpenAPIMediaType(schema=binary),
                "multipart/form-data": OpenAPIMediaType(schema=form),
            },
        )


async def upload_bytes(request: Request) -> bytes:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or not hasattr(upload, "read"):
            raise InvalidInput("multipart upload needs a file field named 'file'", line=0)
        return await upload.read()
    return await request.body()


class DiagnoseController(Controller):
    path = "/diagnose"
    tags = ["diagnosis"]

    @post(
        "/",
        status_code=200,
        guards=[require_token_when_exposed],
        sync_to_thread=True,
        responses={404: response(ErrorBody, "no walks of this subject in Cassandra"), 503: NO_MODEL},
    )
    def diagnose_subject(
        self, data: DiagnoseSubject, store: CassandraStore, holder: ModelHolder, metrics: Metrics
    ) -> Diagnosis:
        """Probability of Parkinson's for a subject, from the features the stream stored for their walks."""
        started = time.perf_counter()
        try:
            result = diagnosis.diagnose_subject(store, holder.get(), data.subject_id)
        except Exception:
            metrics.inc("gaitstream_api_diagnoses_total", source="subject", outcome="error")
            raise
        metrics.inc("gaitstream_api_diagnoses_total", source="subject", outcome="ok")
        metrics.observe_diagnose(time.perf_counter() - started)
        return Diagnosis(**result)

    @post(
        "/walk",
        status_code=200,
        guards=[require_token_when_exposed],
        operation_class=WalkUploadOperation,
        responses={422: response(InvalidWalkBody, "malformed walk file: the line at fault"), 503: NO_MODEL},
    )
    async def diagnose_walk(
        self, request: Request, holder: ModelHolder, settings: ApiSettings, metrics: Metrics
    ) -> Diagnosis:
        """Parkinson's probability for one uploaded walk (gaitpdb format; raw body, gzip or multipart field 'file')."""
        started = time.perf_counter()
        try:
            raw = await upload_bytes(request)
            result = await anyio.to_thread.run_sync(
                diagnosis.diagnose_walk, holder.get(), raw, settings.max_upload_bytes
            )
        except Exception:
            metrics.inc("gaitstream_api_diagnoses_total", source="upload", outcome="error")
            raise
        metrics.inc("gaitstream_api_diagnoses_total", source="upload", outcome="ok")
        metrics.observe_diagnose(time.perf_counter() - started)
        return Diagnosis(**result)
