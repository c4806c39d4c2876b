"""Cassandra health: CQL connect, server version, and a prepared INSERT read back.

The round trip uses its own keyspace ``gaitstream_health`` (SimpleStrategy, RF 1) so it never
touches the pipeline's keyspace. Timeouts are short because ``stack/cassandra.sh`` polls this
every second while the node starts.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from gaitstream import endpoints
from gaitstream.config import Config

HEALTH_KEYSPACE = "gaitstream_health"
HEALTH_TABLE = "roundtrip"
CONNECT_TIMEOUT_S = 3.0
REQUEST_TIMEOUT_S = 10.0  # DDL on a freshly started node can take a few seconds


def connection_class() -> type:
    """The driver's libev reactor when its C extension is built, else the asyncio one
    (asyncore, the driver's other fallback, is gone from Python 3.12)."""
    try:
        from cassandra.io.libevreactor import LibevConnection

        return LibevConnection
    except Exception:  # ImportError, or the extension built without libev
        from cassandra.io.asyncioreactor import AsyncioConnection

        return AsyncioConnection


def connect(
    cfg: Config, *, connect_timeout: float = CONNECT_TIMEOUT_S, request_timeout: float = REQUEST_TIMEOUT_S
) -> tuple[Any, Any]:
    """A ``(cluster, session)`` pinned to the configured single node; caller shuts the cluster down."""
    from cassandra import ProtocolVersion
    from cassandra.auth import PlainTextAuthProvider
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy, WhiteListRoundRobinPolicy

    points, port = endpoints.cassandra_contact_points(cfg), cfg.cassandra.port
    # One local node: talk to exactly it. A cluster: token-aware within the local data centre.
    policy = (
        WhiteListRoundRobinPolicy(points)
        if len(points) == 1
        else TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=cfg.cassandra.local_datacenter))
    )
    profile = ExecutionProfile(load_balancing_policy=policy, request_timeout=request_timeout)
    credentials = endpoints.cassandra_credentials(cfg)
    cluster = Cluster(
        points,
        port=port,
        auth_provider=PlainTextAuthProvider(*credentials) if credentials else None,
        protocol_version=ProtocolVersion.V5,  # Cassandra 4+; avoids the driver's noisy downgrade
        connection_class=connection_class(),
        connect_timeout=connect_timeout,
        control_connection_timeout=connect_timeout,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        max_schema_agreement_wait=request_timeout,
    )
    try:
        session = cluster.connect()
    except Exception:
        cluster.shutdown()
        raise
    return cluster, session


def check(cfg: Config) -> str:
    # The driver logs connection errors/warnings at WARNING; the check reports through its result.
    logging.getLogger("cassandra").setLevel(logging.CRITICAL)
    t0 = time.monotonic()
    cluster, session = connect(cfg)
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
