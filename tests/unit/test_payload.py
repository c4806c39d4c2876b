"""Payload schema v1: valid batches pass byte for byte, every kind of bad payload gets a reason."""

from __future__ import annotations

import json

import pytest

from bridge import payload

LIMITS = dict(max_bytes=16384, max_samples=50)


def _batch(**overrides) -> dict:
    body = {
        "v": 1,
        "study": "Ga",
        "subject_id": "GaCo01",
        "walk_id": "GaCo01_01",
        "seq": 100,
        "sent_at_ms": 1,
        "samples": [[1.0 + i / 100] + [10.0] * 18 for i in range(3)],
    }
    body.update(overrides)
    return body


def _raw(body) -> bytes:
    return json.dumps(body).encode()


def test_valid_batch_round_trips():
    batch = payload.validate(_raw(_batch()), **LIMITS)
    assert (batch.subject_id, batch.walk_id, batch.seq, len(batch.samples)) == ("GaCo01", "GaCo01_01", 100, 3)
    assert payload.kafka_key(batch) == b"GaCo01/GaCo01_01"
    assert payload.validate(payload.encode(batch), **LIMITS) == batch


def test_topic_must_match_payload():
    topic = payload.topic_for("gait", "Ga", "GaCo01", "GaCo01_01")
    payload.validate(_raw(_batch()), mqtt_topic=topic, topic_prefix="gait", **LIMITS)
    with pytest.raises(payload.InvalidPayload, match="does not match"):
        payload.validate(_raw(_batch()), mqtt_topic="gait/Ga/GaCo02/GaCo02_01", topic_prefix="gait", **LIMITS)


BAD = {
    "not json": (b"{nope", "bad JSON"),
    "not utf8": (b"\xff\xfe\x00", "bad JSON"),
    "empty": (b"", "bad JSON"),
    "array": (b"[1,2]", "schema"),
    "missing field": (_raw({k: v for k, v in _batch().items() if k != "seq"}), "schema"),
    "wrong type": (_raw(_batch(seq="100")), "schema"),
    "bool sample": (_raw(_batch(samples=[[True] * 19])), "schema"),
    "unknown field": (_raw(_batch(label="PD")), "schema"),
    "NaN": (_raw(_batch()).replace(b"10.0", b"NaN", 1), "bad JSON"),
    "infinite": (_raw(_batch()).replace(b"10.0", b"1e999", 1), "schema"),
    "future version": (_raw(_batch(v=2, other=1)), "unknown schema version 2"),
    "negative seq": (_raw(_batch(seq=-1)), "seq"),
    "negative clock": (_raw(_batch(sent_at_ms=-1)), "sent_at_ms"),
    "no samples": (_raw(_batch(samples=[])), "no samples"),
    "short sample": (_raw(_batch(samples=[[1.0] * 18])), "18 values"),
    "absurd force": (_raw(_batch(samples=[[1.0] + [1e6] * 18])), "force outside"),
    "time backwards": (_raw(_batch(samples=[[2.0] + [1.0] * 18, [1.0] + [1.0] * 18])), "not increasing"),
    "too many samples": (_raw(_batch(samples=[[i / 100] + [1.0] * 18 for i in range(51)])), "too many"),
    "oversized": (b" " * 20000, "oversized"),
    "bad id": (_raw(_batch(subject_id="Ga Co/01", walk_id="Ga Co/01_01")), "bad subject_id"),
    "walk of other subject": (_raw(_batch(walk_id="GaCo02_01")), "not a walk of subject"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_payload_has_a_reason(name):
    raw, reason = BAD[name]
    with pytest.raises(payload.InvalidPayload, match=reason):
        payload.validate(raw, **LIMITS)


NOW_MS = 1_764_120_000_000
CLOCK = dict(max_ahead_s=300.0, max_behind_s=43_200.0)


@pytest.mark.parametrize("skew_s", [0, 299, -299, -43_199])
def test_a_clock_within_the_bounds_passes(skew_s):
    batch = payload.validate(_raw(_batch(sent_at_ms=NOW_MS + skew_s * 1000)), **LIMITS)
    payload.check_clock_skew(batch, NOW_MS, **CLOCK)


@pytest.mark.parametrize(
    "skew_s, direction", [(86_400, "ahead"), (301, "ahead"), (-86_400, "behind"), (-43_201, "behind")]
)
def test_a_skewed_clock_is_refused_both_ways(skew_s, direction):
    batch = payload.validate(_raw(_batch(sent_at_ms=NOW_MS + skew_s * 1000)), **LIMITS)
    with pytest.raises(payload.InvalidPayload, match=rf"^clock_skew: .* {abs(skew_s)} s {direction}"):
        payload.check_clock_skew(batch, NOW_MS, **CLOCK)


def test_a_device_clock_at_zero_is_refused():
    batch = payload.validate(_raw(_batch(sent_at_ms=0)), **LIMITS)
    with pytest.raises(payload.InvalidPayload, match="^clock_skew"):
        payload.check_clock_skew(batch, NOW_MS, **CLOCK)


def test_bulk_validation_equals_one_at_a_time():
    """validate_many (the streaming job's micro-batches) gives each payload what validate_samples
    gives it alone: the same arrays for the good ones, the same reason for the bad ones, whatever
    their neighbours (a sample of another width once made the bulk path take a slow branch)."""
    good = [[1.0 + i / 100] + [10.0] * 18 for i in range(3)]
    bodies = [
        _batch(),
        _batch(samples=good[:1] + [[1.5] + [10.0] * 17]),  # a short sample
        _batch(seq=200),
        _batch(samples=good[:2] + [[1.9] + [10.0] * 19]),  # a long sample
        _batch(v=2),
        _batch(samples=[[1.0] + [float("nan")] + [10.0] * 17]),
        _batch(samples=[[2.0] + [10.0] * 18, [1.0] + [10.0] * 18]),  # time going back
        _batch(samples=[[1.0] + [1e9] + [10.0] * 17]),
        _batch(seq=300, samples=[[3.0] + [20.0] * 18]),
        _batch(samples=[[1.0] + [10.0] * 19, [1.1] + [10.0] * 19]),  # every sample too long: not ragged
    ]
    raws = [json.dumps(body).encode() for body in bodies]
    for subset in (raws, raws[1:2], [raws[0], raws[3]], raws[::-1], raws[-1:]):
        for raw, result in zip(subset, payload.validate_many(subset, **LIMITS), strict=True):
            try:
                batch, values = payload.validate_samples(raw, **LIMITS)
            except payload.InvalidPayload as exc:
                assert isinstance(result, payload.InvalidPayload) and str(result) == str(exc)
            else:
                assert not isinstance(result, payload.InvalidPayload)
                assert result[0] == batch and (result[1] == values).all()
