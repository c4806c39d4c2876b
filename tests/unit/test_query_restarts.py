"""A query stopped by a transient error is started again alone (streaming.job.QueryRestarter):
once its backends answer, with backoff, within a time budget; anything else fails the job."""

from __future__ import annotations

import pytest

pytest.importorskip("pyspark")

from streaming.job import QueryRestarter  # noqa: E402

HDFS_DOWN = (
    "Call From vm/127.0.0.1 to localhost:9000 failed on socket exception: java.net.SocketException: Connection reset"
)


class Query:
    """What the restarter reads from a StreamingQuery."""

    def __init__(self, name: str, active: bool = True, error: str | None = None, progressed: bool = False):
        self.name, self.isActive, self.error = name, active, error
        self.lastProgress = {"batchId": 1} if progressed else None

    def exception(self):
        return self.error


def restarter(ready: dict, starts: list, total_s: float = 600.0) -> QueryRestarter:
    def start(name):
        def run():
            starts.append(name)
            return Query(name)

        return run

    return QueryRestarter({"windows": start("windows"), "archive": start("archive")}, ready, total_s, 0.0, 0.0)


def test_a_transient_failure_restarts_that_query_alone_once_its_backend_answers():
    backend_up, starts = [False], []
    restarts = restarter({"archive": lambda: backend_up[0]}, starts)
    queries = [Query("windows", progressed=True), Query("archive", active=False, error=HDFS_DOWN)]
    assert restarts.step(queries) is None and starts == []  # HDFS still away: wait, the job goes on
    backend_up[0] = True
    assert restarts.step(queries) is None and starts == ["archive"]
    assert queries[1].isActive and queries[0].name == "windows"
    queries[1].lastProgress = {"batchId": 2}
    assert restarts.step(queries) is None and restarts.failing == {}  # a trigger completed: recovered


def test_other_failures_and_exhausted_budgets_fail_the_job():
    starts: list = []
    assert "NullPointerException" in restarter({}, starts).step(
        [Query("archive", active=False, error="java.lang.NullPointerException")]
    )
    hung = "StopRequested: batch 3: Cassandra: 2 attempts hung; Connection refused"
    assert "stopped" in restarter({}, starts).step([Query("windows", active=False, error=hung)])
    never = restarter({"archive": lambda: False}, starts, total_s=-1.0)
    assert "still failing" in never.step([Query("archive", active=False, error=HDFS_DOWN)])
    assert starts == []


def test_any_failure_while_the_backend_is_away_is_waited_out():
    """A node killed mid-write fails a task with whatever its client was doing; the text need not
    name a connection problem. While the backend does not answer, that is still an outage."""
    backend_up, starts = [False], []
    restarts = restarter({"windows": lambda: backend_up[0]}, starts)
    odd = "java.io.IOException: Couldn't find ks.windows or any similarly named keyspace and table pairs"
    queries = [Query("windows", active=False, error=odd), Query("archive", progressed=True)]
    assert restarts.step(queries) is None and starts == []
    backend_up[0] = True
    assert restarts.step(queries) is None and starts == ["windows"]
    # The same text with the backend answering is the job's own problem.
    assert "Couldn't find" in restarter({"windows": lambda: True}, []).step([Query("windows", active=False, error=odd)])


def test_a_topic_still_being_created_is_waited_out():
    """The bridge creates the samples topic on first use, maybe just as the job asks for offsets:
    Kafka answers, but its metadata is not ready yet. That is transient, not the job's fault."""
    starts: list = []
    restarts = restarter({"windows": lambda: True}, starts)
    creating = (
        "org.apache.kafka.common.errors.UnknownTopicOrPartitionException: "
        "This server does not host this topic-partition."
    )
    assert restarts.step([Query("windows", active=False, error=creating)]) is None and starts == ["windows"]
