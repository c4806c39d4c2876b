"""The sensor payload, schema version 1: one MQTT message = a batch of consecutive samples.

JSON object (msgspec validates types strictly; unknown fields are rejected)::

    {"v": 1,                      # schema version
     "study": "Ga", "subject_id": "GaCo01", "walk_id": "GaCo01_01",
     "seq": 1200,                 # per-walk sequence number of the first sample (0-based)
     "sent_at_ms": 1764120000123, # publisher's wall clock, for latency measurement (bounded:
                                  # :func:`check_clock_skew` against the receiver's clock)
     "samples": [[time_s, l1..l8, r1..r8, total_l, total_r], ...]}   # 19 numbers each

Sample ``i`` of a message has sequence number ``seq + i``. Labels never travel with samples.
The bridge forwards valid payloads to Kafka byte for byte; :func:`validate` gives the reason a
payload is refused, which the bridge writes to the dead-letter topic with the original bytes.
"""

from __future__ import annotations

import re

import msgspec
import numpy as np

from gaitstream import gaitpdb

SCHEMA_VERSION = 1
SAMPLE_WIDTH = len(gaitpdb.COLUMNS)  # 19
MAX_SEQ = 100_000_000
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class SampleBatch(msgspec.Struct, forbid_unknown_fields=True):
    v: int
    study: str
    subject_id: str
    walk_id: str
    seq: int
    sent_at_ms: int
    samples: list[list[float]]


class InvalidPayload(ValueError):
    """Why a payload cannot enter the pipeline (the dead-letter reason)."""


class _Version(msgspec.Struct):
    v: int


_version_decoder = msgspec.json.Decoder(_Version)
_decoder = msgspec.json.Decoder(SampleBatch)
_encoder = msgspec.json.Encoder()


def topic_for(prefix: str, study: str, subject_id: str, walk_id: str) -> str:
    """The MQTT topic of one walk's stream: ``<prefix>/<study>/<subject>/<walk>``."""
    return f"{prefix}/{study}/{subject_id}/{walk_id}"


def kafka_key(batch: SampleBatch) -> bytes:
    """``<subject>/<walk>``: one walk stays in one partition, in order."""
    return f"{batch.subject_id}/{batch.walk_id}".encode()


def encode(batch: SampleBatch) -> bytes:
    return _encoder.encode(batch)


def validate(
    raw: bytes, *, max_bytes: int, max_samples: int, mqtt_topic: str | None = None, topic_prefix: str | None = None
) -> SampleBatch:
    """Decode and check one payload; raise :class:`InvalidPayload` with a one-line reason."""
    return validate_samples(
        raw, max_bytes=max_bytes, max_samples=max_samples, mqtt_topic=mqtt_topic, topic_prefix=topic_prefix
    )[0]


def validate_samples(
    raw: bytes, *, max_bytes: int, max_samples: int, mqtt_topic: str | None = None, topic_prefix: str | None = None
) -> tuple[SampleBatch, np.ndarray]:
    """:func:`validate`, also returning the samples as a float64 (n, 19) array (the streaming job's input)."""
    batch = _validate_header(
        raw, max_bytes=max_bytes, max_samples=max_samples, mqtt_topic=mqtt_topic, topic_prefix=topic_prefix
    )
    return batch, _check_samples(batch.samples)


def validate_many(
    raws: list[bytes], *, max_bytes: int, max_samples: int
) -> list[tuple[SampleBatch, np.ndarray] | InvalidPayload]:
    """:func:`validate_samples` for many payloads at once (the streaming job's micro-batches): the
    numeric checks run once over all samples; a failing payload gets :func:`validate`'s reason."""
    out: list = []
    batches: list[tuple[int, SampleBatch]] = []
    for i, raw in enumerate(raws):
        try:
            batch = _validate_header(raw, max_bytes=max_bytes, max_samples=max_samples)
        except InvalidPayload as exc:
            out.append(exc)
            continue
        out.append(None)
        batches.append((i, batch))
    if not batches:
        return out
    try:  # one conversion for all: a sample of another width makes the array ragged (ValueError)
        values = np.asarray([sample for _, batch in batches for sample in batch.samples], dtype=np.float64)
        ragged = values.ndim != 2 or values.shape[1] != SAMPLE_WIDTH
    except ValueError:
        ragged = True
    if ragged:  # the rare slow path: find the records with a sample of another width
        for i, batch in batches:
            if not all(len(sample) == SAMPLE_WIDTH for sample in batch.samples):
                out[i] = _reason(batch.samples)
        batches = [(i, batch) for i, batch in batches if out[i] is None]
        if not batches:
            return out
        values = np.asarray([sample for _, batch in batches for sample in batch.samples], dtype=np.float64)
    counts = np.array([len(batch.samples) for _, batch in batches])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    bad = ~np.isfinite(values).all(axis=1)
    times = values[:, 0]
    bad |= (times < 0.0) | (times > gaitpdb.TIME_MAX_S)
    step_bad = np.zeros(len(values), dtype=bool)
    step_bad[1:] = np.diff(times) <= 0
    step_bad[starts] = False  # a record's first sample has no predecessor in it
    bad |= step_bad
    bad |= ((values[:, 1:] < gaitpdb.FORCE_MIN_N) | (values[:, 1:] > gaitpdb.FORCE_MAX_N)).any(axis=1)
    record_bad = np.add.reduceat(bad.astype(np.int64), starts) > 0
    for (i, batch), start, count, failed in zip(batches, starts, counts, record_bad, strict=True):
        out[i] = _reason(batch.samples) if failed else (batch, values[start : start + count])
    return out


def check_clock_skew(batch: SampleBatch, received_at_ms: int, *, max_ahead_s: float, max_behind_s: float) -> None:
    """Refuse a payload whose ``sent_at_ms`` is implausible against a clock we control.

    ``received_at_ms`` is the receiver's clock (the bridge's receive time, or Kafka's record
    timestamp, which the bridge's producer sets). A device whose clock is ``max_ahead_s`` ahead or
    ``max_behind_s`` behind it is refused with a reason starting ``clock_skew``: one bad clock must
    not move anyone's watermark. Behind must cover the longest backlog a broker may redeliver.
    """
    skew_s = (batch.sent_at_ms - received_at_ms) / 1000.0
    if skew_s > max_ahead_s:
        raise InvalidPayload(
            f"clock_skew: sent_at_ms {batch.sent_at_ms} is {skew_s:.0f} s ahead of the "
            f"receiver's clock (max {max_ahead_s:g} s)"
        )
    if -skew_s > max_behind_s:
        raise InvalidPayload(
            f"clock_skew: sent_at_ms {batch.sent_at_ms} is {-skew_s:.0f} s behind the "
            f"receiver's clock (max {max_behind_s:g} s)"
        )


def _reason(samples: list[list[float]]) -> InvalidPayload:
    try:
        _check_samples(samples)
    except InvalidPayload as exc:
        return exc
    raise AssertionError("a payload failed the bulk checks but passed validate()")


def _validate_header(
    raw: bytes, *, max_bytes: int, max_samples: int, mqtt_topic: str | None = None, topic_prefix: str | None = None
) -> SampleBatch:
    """Everything :func:`validate` checks except the sample values."""
    if len(raw) > max_bytes:
        raise InvalidPayload(f"oversized: {len(raw)} bytes > {max_bytes}")
    try:
        batch = _decoder.decode(raw)  # one parse for a valid payload (the hot path of bridge and job)
    except msgspec.DecodeError:
        batch = None
    if batch is None or batch.v != SCHEMA_VERSION:
        try:
            # The version first, so a future schema is named as such rather than as "unknown field".
            version = _version_decoder.decode(raw).v
            if version != SCHEMA_VERSION:
                raise InvalidPayload(f"unknown schema version {version} (expected {SCHEMA_VERSION})")
            batch = _decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise InvalidPayload(f"schema: {exc}") from None
        except msgspec.DecodeError as exc:
            raise InvalidPayload(f"bad JSON: {exc}") from None
    for name in ("study", "subject_id", "walk_id"):
        if not _ID.match(getattr(batch, name)):
            raise InvalidPayload(f"bad {name}: {getattr(batch, name)[:70]!r}")
    if not batch.walk_id.startswith(batch.subject_id + "_"):
        raise InvalidPayload(f"walk_id {batch.walk_id!r} is not a walk of subject {batch.subject_id!r}")
    if mqtt_topic is not None and topic_prefix is not None:
        expected = topic_for(topic_prefix, batch.study, batch.subject_id, batch.walk_id)
        if mqtt_topic != expected:
            raise InvalidPayload(f"topic {mqtt_topic!r} does not match payload (expected {expected!r})")
    if batch.sent_at_ms < 0:
        raise InvalidPayload(f"sent_at_ms {batch.sent_at_ms} is negative")
    if not 0 <= batch.seq <= MAX_SEQ:
        raise InvalidPayload(f"seq {batch.seq} out of range [0, {MAX_SEQ}]")
    if not batch.samples:
        raise InvalidPayload("no samples")
    if len(batch.samples) > max_samples:
        raise InvalidPayload(f"too many samples: {len(batch.samples)} > {max_samples}")
    return batch


def _check_samples(samples: list[list[float]]) -> np.ndarray:
    """Shape, finiteness, time order and force bounds, vectorized (a 100-sample batch in ~30 µs)."""
    widths = {len(sample) for sample in samples}
    if widths != {SAMPLE_WIDTH}:
        i = next(i for i, sample in enumerate(samples) if len(sample) != SAMPLE_WIDTH)
        raise InvalidPayload(f"sample {i}: {len(samples[i])} values, expected {SAMPLE_WIDTH}")
    values = np.asarray(samples, dtype=np.float64)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        raise InvalidPayload(f"sample {int(np.argmin(finite))}: NaN or infinite value")
    times = values[:, 0]
    bad_time = (times < 0.0) | (times > gaitpdb.TIME_MAX_S)
    bad_time[1:] |= np.diff(times) <= 0
    if bad_time.any():
        i = int(np.argmax(bad_time))
        raise InvalidPayload(f"sample {i}: time {times[i]} out of range or not increasing")
    forces = values[:, 1:]
    bad_force = ((forces < gaitpdb.FORCE_MIN_N) | (forces > gaitpdb.FORCE_MAX_N)).any(axis=1)
    if bad_force.any():
        raise InvalidPayload(
            f"sample {int(np.argmax(bad_force))}: force outside [{gaitpdb.FORCE_MIN_N}, {gaitpdb.FORCE_MAX_N}] N"
        )
    return values
