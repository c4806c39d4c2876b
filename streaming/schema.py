"""Cassandra schema for gaitstream: keyspace, ``windows``, ``walk_features`` and the live predictions. Idempotent.

``python -m streaming.schema`` (or ``gaitstream schema``) creates what is missing and changes
nothing that exists. Keyspace and replication come from config; identifiers are validated
(CQL cannot bind them as parameters), values never come from user input.

Primary keys make every write an idempotent upsert: replaying a micro-batch rewrites the same
rows with the same values.
"""

from __future__ import annotations

import re
import sys

from gaitstream import gaitpdb
from gaitstream.config import Config, ConfigError

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")

WINDOWS_TABLE = "windows"
FEATURES_TABLE = "walk_features"
WALK_PREDICTIONS_TABLE = "walk_predictions"
SUBJECT_PREDICTIONS_TABLE = "subject_predictions"

# Primary keys (the partition key first): what makes a write idempotent.
WINDOW_KEY: tuple[tuple[str, str], ...] = (("subject_id", "text"), ("walk_id", "text"), ("window_index", "int"))
FEATURE_KEY: tuple[tuple[str, str], ...] = (("subject_id", "text"), ("walk_id", "text"))


def names(columns: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The column names of ``(name, CQL type)`` pairs."""
    return tuple(name for name, _kind in columns)


# Columns of `windows` besides the key: counts, bounds, and the mean of each force channel.
WINDOW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("study", "text"),
    ("sample_count", "int"),
    ("partial", "boolean"),
    ("first_seq", "int"),
    ("last_seq", "int"),
    ("first_time", "double"),
    ("last_time", "double"),
    *((channel, "double") for channel in gaitpdb.FORCE_CHANNELS),
    # Latest publisher clock among the window's samples (latency = WRITETIME - this).
    ("max_sent_at_ms", "bigint"),
)

FEATURE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("study", "text"),
    ("samples", "int"),  # samples the features were computed from
    ("final", "boolean"),  # true once the walk went idle (its last values)
    ("feature_version", "int"),  # model.features.FEATURE_VERSION
    ("features", "map<text, double>"),
)

# The streaming job's scores (model.predict with the registry's champion), per walk and per subject.
PREDICTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("probability", "double"),  # calibrated probability of Parkinson's
    ("label", "text"),  # parkinsons | control (threshold model.predict.THRESHOLD)
    ("model_version", "text"),
    ("model_alias", "text"),
    ("feature_version", "int"),
    ("final", "boolean"),  # scored on the walk's final features (for a subject: all walks final)
    ("updated_at", "timestamp"),
)
WALK_PREDICTION_COLUMNS = PREDICTION_COLUMNS + (
    ("study", "text"),
    ("samples", "int"),  # samples behind the features scored
)
SUBJECT_PREDICTION_COLUMNS = PREDICTION_COLUMNS + (
    ("walks", "int"),  # walks with features
    ("final_walks", "int"),  # of which final
    ("walks_used", "list<text>"),  # the usual walks (or all) whose mean features were scored
    ("inputs", "map<text, double>"),  # the scored input row (finite values), for the API's explanation
)


def identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ConfigError(f"not a valid CQL identifier: {name!r}")
    return name


def replication(cfg: Config) -> str:
    c = cfg.cassandra
    strategy = identifier(c.replication_class)
    if strategy == "SimpleStrategy":
        return f"{{'class': 'SimpleStrategy', 'replication_factor': {c.replication_factor}}}"
    if strategy == "NetworkTopologyStrategy":
        dcs = c.datacenters or {c.local_datacenter: c.replication_factor}
        parts = ", ".join(f"'{identifier(dc)}': {int(rf)}" for dc, rf in dict(dcs).items())
        return f"{{'class': 'NetworkTopologyStrategy', {parts}}}"
    raise ConfigError(f"unsupported replication_class {strategy!r}")


def statements(cfg: Config, keyspace: str | None = None) -> list[str]:
    """The DDL, in order: keyspace, then tables (all IF NOT EXISTS)."""
    ks = identifier(keyspace or cfg.cassandra.keyspace)
    window_cols = ",\n  ".join(f"{name} {kind}" for name, kind in WINDOW_KEY + WINDOW_COLUMNS)
    feature_cols = ",\n  ".join(f"{name} {kind}" for name, kind in FEATURE_KEY + FEATURE_COLUMNS)
    walk_prediction_cols = ",\n  ".join(f"{name} {kind}" for name, kind in WALK_PREDICTION_COLUMNS)
    subject_prediction_cols = ",\n  ".join(f"{name} {kind}" for name, kind in SUBJECT_PREDICTION_COLUMNS)
    return [
        f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {replication(cfg)}",
        f"""CREATE TABLE IF NOT EXISTS {ks}.{WINDOWS_TABLE} (
  {window_cols},
  PRIMARY KEY ((subject_id, walk_id), window_index)
) WITH CLUSTERING ORDER BY (window_index ASC)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.{FEATURES_TABLE} (
  {feature_cols},
  PRIMARY KEY ((subject_id), walk_id)
)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.{WALK_PREDICTIONS_TABLE} (
  subject_id text,
  walk_id text,
  {walk_prediction_cols},
  PRIMARY KEY ((subject_id), walk_id)
)""",
        f"""CREATE TABLE IF NOT EXISTS {ks}.{SUBJECT_PREDICTIONS_TABLE} (
  subject_id text,
  {subject_prediction_cols},
  PRIMARY KEY (subject_id)
)""",
    ]


def create(cfg: Config, keyspace: str | None = None, session=None) -> list[str]:
    """Run the DDL (idempotent); returns the statements run."""
    from gaitstream import clients

    own = session is None
    if own:
        cluster, session = clients.cassandra(cfg)
    try:
        ddl = statements(cfg, keyspace)
        for statement in ddl:
            session.execute(statement, timeout=60)
        return ddl
    finally:
        if own:
            cluster.shutdown()


def main(argv: list[str] | None = None) -> int:
    import argparse

    from gaitstream import config

    parser = argparse.ArgumentParser(prog="python -m streaming.schema", description=__doc__.splitlines()[0])
    parser.add_argument("--keyspace", help="override cassandra.keyspace")
    parser.add_argument("--print", action="store_true", help="print the DDL instead of running it")
    args = parser.parse_args(argv)
    cfg = config.load()
    if args.print:
        print(";\n\n".join(statements(cfg, args.keyspace)) + ";")
        return 0
    for statement in create(cfg, args.keyspace):
        print(statement.splitlines()[0].rstrip(" ("))
    return 0


if __name__ == "__main__":
    sys.exit(main())
