"""The sink retry's rules, without Spark or Cassandra: a write waits for its backend, resets the
connector's sessions when the backend is back or an attempt hangs, and gives up on a stop."""

from __future__ import annotations

import threading
import time

import pytest

from streaming.sinks import SinkRetry, StopRequested, is_transient


class Backend:
    """A database that is down for ``down_attempts`` write attempts, then up."""

    def __init__(self, down_probes: int):
        self.down_probes, self.writes, self.resets = down_probes, 0, 0

    def ready(self) -> bool:
        self.down_probes -= 1
        return self.down_probes < 0

    def write(self) -> None:
        self.writes += 1
        if self.writes == 1:
            raise ConnectionError("Connection refused")  # the node went away under the first write

    def reset(self) -> None:
        self.resets += 1


def retry(backend: Backend, **kwargs) -> SinkRetry:
    return SinkRetry(5.0, 0.01, 0.02, ready=backend.ready, settle_s=0.0, reset=backend.reset, **kwargs)


def test_a_write_waits_for_its_backend_and_resets_the_sessions_once_it_is_back():
    backend = Backend(down_probes=3)
    retry(backend).call("test", backend.write, gated=True)
    assert backend.writes == 2  # the failed one, then one once the port answered (none while down)
    assert backend.resets == 1


def test_a_hung_attempt_resets_the_sessions_and_two_fail_the_batch():
    backend = Backend(down_probes=0)
    release = threading.Event()

    def write() -> None:
        backend.writes += 1
        if backend.writes == 1:
            raise ConnectionError("Connection refused")
        release.wait(5)  # hangs

    with pytest.raises(StopRequested, match="2 attempts hung"):
        retry(backend, attempt_timeout_s=0.05).call("test", write, gated=True)
    release.set()
    assert backend.resets == 2


def test_a_failing_reset_does_not_fail_the_write():
    backend = Backend(down_probes=1)

    def broken_reset() -> None:
        raise RuntimeError("no JVM")

    SinkRetry(5.0, 0.01, 0.02, ready=backend.ready, reset=broken_reset).call("test", backend.write, gated=True)
    assert backend.writes == 2


def test_a_stop_ends_the_retries_at_once():
    backend = Backend(down_probes=10**6)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises((StopRequested, ConnectionError)):
        SinkRetry(60.0, 0.01, 0.05, stop, ready=backend.ready).call("test", backend.write, gated=True)
    assert time.monotonic() - started < 5


def test_any_error_while_the_backend_is_away_is_retried_and_the_same_error_after_is_not():
    odd = "IOException: Couldn't find ks.windows or any similarly named keyspace and table pairs"
    backend = Backend(down_probes=3)
    writes = []

    def write() -> None:
        writes.append(1)
        if len(writes) == 1:
            raise RuntimeError(odd)  # the node went away under the first write, in odd words

    retry(backend).call("test", write, gated=True)
    assert len(writes) == 2
    up = Backend(down_probes=0)  # the backend answers: the same words are the job's own problem
    with pytest.raises(RuntimeError, match="Couldn't find"):
        retry(up).call("test", lambda: (_ for _ in ()).throw(RuntimeError(odd)), gated=True)


def test_an_auth_check_refused_for_want_of_replicas_is_transient_a_bad_table_is_not():
    refused = RuntimeError(
        "An error occurred while calling o3932.save.\n: com.datastax.oss.driver.api.core.DriverExecutionException\n"
        "Caused by: com.datastax.oss.driver.internal.core.adminrequest.UnexpectedResponseException: query "
        "'SELECT * FROM system_schema.types' got unexpected response ERROR(Unable to perform authorization of "
        "permissions: Unable to perform authorization of super-user permission: Cannot achieve consistency "
        "level LOCAL_QUORUM)"
    )
    assert is_transient(refused)
    assert not is_transient(RuntimeError("InvalidQueryException: unconfigured table windowz"))
