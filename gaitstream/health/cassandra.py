"""Cassandra health: CQL connect, server version, and a prepared INSERT read back.

The round trip uses its own keyspace ``gaitstream_health`` (SimpleStrategy, RF 1) so it never
touches the pipeline's keyspace. Timeouts are short because ``stack/cassandra.sh`` polls this
every second while the node starts.
"""

from __future__ import annotations

import secrets
import time

from gaitstream import clients
from gaitstream.config import Config

HEALTH_KEYSPACE = "gaitstream_health"
HEALTH_TABLE = "roundtrip"


def check(cfg: Config) -> str:
    clients.quiet_cassandra_driver()  # the check reports errors through its result
    t0 = time.monotonic()
    cluster, session = clients.cassandra(cfg)
    try:
        version = session.execute("SELECT release_version FROM system.local").one().release_version
        session.execute(
            f"CREATE KEYSPACE IF NOT EXISTS {HEALTH_KEYSPACE} WITH replication = "
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {HEALTH_KEYSPACE}.{HEALTH_TABLE} "
            "(probe text PRIMARY KEY, nonce text, written_at timestamp)"
        )
        token = secrets.token_hex(8)
        insert = session.prepare(
            f"INSERT INTO {HEALTH_KEYSPACE}.{HEALTH_TABLE} (probe, nonce, written_at) VALUES (?, ?, toTimestamp(now()))"
        )
        select = session.prepare(f"SELECT nonce FROM {HEALTH_KEYSPACE}.{HEALTH_TABLE} WHERE probe = ?")
        session.execute(insert, ("health", token))
        row = session.execute(select, ("health",)).one()
        if row is None or row.nonce != token:
            raise RuntimeError(f"round trip mismatch: wrote {token!r}, read {row.nonce if row else None!r}")
    finally:
        cluster.shutdown()
    host, port = cfg.cassandra.host, cfg.cassandra.port
    return f"cassandra {version} ok ({host}:{port}, round trip {1000 * (time.monotonic() - t0):.0f} ms)"
