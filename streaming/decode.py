"""Kafka record values → sample batches, with the bridge's own checks (``bridge.payload.validate``).

The one place the streaming job decodes payloads: the windows operator and the archive both call
:func:`decode_records` (msgspec, inside the Python workers), so what the bridge accepts, what is
windowed and what is archived can never disagree. A record that fails is returned with its
reason; it is dead-lettered by the windows query only (the archive skips it), so it is recorded once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bridge import payload


@dataclass(frozen=True)
class Limits:
    """The bridge's payload limits (config ``bridge.max_payload_bytes``, ``bridge.max_samples_per_message``)."""

    max_bytes: int = 262_144
    max_samples: int = 1_000


@dataclass
class Decoded:
    """One valid record: its samples as arrays (``values``: (n, 19) time + 18 channels)."""

    index: int  # position in the input
    batch: payload.SampleBatch
    values: np.ndarray

    @property
    def seq(self) -> np.ndarray:
        return self.batch.seq + np.arange(len(self.values), dtype=np.int64)


def expected_key(batch: payload.SampleBatch) -> str:
    return payload.kafka_key(batch).decode()


def decode_records(keys, values, limits: Limits) -> tuple[list[Decoded], list[tuple[int, str]]]:
    """Valid records, and (position, reason) for the others (a key that is not the payload's walk too)."""
    good: list[Decoded] = []
    bad: list[tuple[int, str]] = []
    present = [i for i, raw in enumerate(values) if raw is not None]
    bad += [(i, "empty record") for i, raw in enumerate(values) if raw is None]
    checked = payload.validate_many(
        [bytes(values[i]) for i in present], max_bytes=limits.max_bytes, max_samples=limits.max_samples
    )
    for i, result in zip(present, checked, strict=True):
        if isinstance(result, payload.InvalidPayload):
            bad.append((i, str(result)))
            continue
        batch, samples = result
        if keys[i] != expected_key(batch):
            bad.append(
                (i, f"kafka key {str(keys[i])[:70]!r} does not match the payload's walk {expected_key(batch)!r}")
            )
            continue
        good.append(Decoded(i, batch, samples))
    return good, bad
