"""Cassandra health: CQL connect, server version, and a prepared INSERT read back.

The round trip uses its own keyspace ``gaitstream_health`` so it never touches the pipeline's
keyspace: SimpleStrategy RF 1 on a single node; with ``cassandra.nodes`` NetworkTopologyStrategy
with one copy per node in the local data centre, written at ``cassandra.write_consistency`` and
read at ``cassandra.read_consistency``. With ``cassandra.nodes`` every configured node must first be
in the cluster metadata and answer a query sent to it alone; the check fails naming those that do
not. Timeouts are short because ``stack/cassandra.sh`` polls this every second while nodes start.
"""

from __future__ import annotations

import secrets
import time

from gaitstream import cassandra_admin, clients, endpoints
from gaitstream.config import Config

HEALTH_KEYSPACE = "gaitstream_health"
HEALTH_TABLE = "roundtrip"


def replication(cfg: Config) -> str:
    """The health keyspace's replication: RF 1 on a single node, one copy per node on a cluster."""
    count = len(cassandra_admin.nodes(cfg))
    if not count:
        return "{'class': 'SimpleStrategy', 'replication_factor': 1}"
    dc = cassandra_admin.identifier(cfg.cassandra.local_datacenter, "cassandra.local_datacenter")
    return f"{{'class': 'NetworkTopologyStrategy', '{dc}': {count}}}"


def check(cfg: Config) -> str:
    from cassandra import ConsistencyLevel

    clients.quiet_cassandra_driver()  # the check reports errors through its result
    write_cl = ConsistencyLevel.name_to_value[endpoints.cassandra_consistency(cfg, "write")]
    read_cl = ConsistencyLevel.name_to_value[endpoints.cassandra_consistency(cfg, "read")]
    t0 = time.monotonic()
    cluster, session = clients.cassandra(cfg)
    try:
        members = ""
        if cfg.cassandra.nodes:
            states = cassandra_admin.node_states(cfg, cluster, session)
            down = [s for s in states if not s.up]
            if down:
                raise RuntimeError(
                    f"{len(down)} of {len(states)} nodes down: " + "; ".join(f"{s.node}: {s.detail}" for s in down)
                )
            members = f"{len(states)}/{len(states)} nodes up ({', '.join(s.node.host for s in states)}), "
        version = session.execute("SELECT release_version FROM system.local").one().release_version
        session.execute(f"CREATE KEYSPACE IF NOT EXISTS {HEALTH_KEYSPACE} WITH replication = {replication(cfg)}")
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {HEALTH_KEYSPACE}.{HEALTH_TABLE} "
            "(probe text PRIMARY KEY, nonce text, written_at timestamp)"
        )
        token = secrets.token_hex(8)
        insert = session.prepare(
            f"INSERT INTO {HEALTH_KEYSPACE}.{HEALTH_TABLE} (probe, nonce, written_at) VALUES (?, ?, toTimestamp(now()))"
        )
        insert.consistency_level = write_cl
        select = session.prepare(f"SELECT nonce FROM {HEALTH_KEYSPACE}.{HEALTH_TABLE} WHERE probe = ?")
        select.consistency_level = read_cl
        session.execute(insert, ("health", token))
        row = session.execute(select, ("health",)).one()
        if row is None or row.nonce != token:
            raise RuntimeError(f"round trip mismatch: wrote {token!r}, read {row.nonce if row else None!r}")
    finally:
        cluster.shutdown()
    if cfg.cassandra.nodes:
        where = f"{members}port {cfg.cassandra.port}, {endpoints.cassandra_consistency(cfg, 'write')}"
    else:
        where = f"{cfg.cassandra.host}:{cfg.cassandra.port}"
    return f"cassandra {version} ok ({where}, round trip {1000 * (time.monotonic() - t0):.0f} ms)"
