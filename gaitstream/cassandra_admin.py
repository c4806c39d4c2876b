"""The Cassandra nodes ``stack/cassandra.sh`` runs for ``cassandra.nodes`` (the cluster-local profile),
and the roles of a cluster that has credentials.

Node ``i`` (1-based, in the order of ``cassandra.nodes``) is one JVM listening on
``<address>:cassandra.port`` (CQL) and ``<address>:cassandra.storage_port`` (gossip, internode), with
its folders under ``$runtime.dir/cassandra/node<i>/``. Its ``cassandra.yaml`` is the single-node
template (``stack/cassandra/cassandra.yaml``) with the node's address and folders filled in, the
first node as the seed and the keys of :func:`overrides` replaced: GossipingPropertyFileSnitch with
``cassandra-rackdc.properties`` (``dc=cassandra.local_datacenter``, ``rack=rack<i>``), few tokens,
no bootstrap (a fresh local cluster has no data to stream), and, when ``cassandra.username`` is set,
PasswordAuthenticator with CassandraAuthorizer.

With credentials, :func:`setup` (run by ``stack/cassandra.sh start`` once the nodes answer) makes,
idempotently: ``system_auth`` replicated NetworkTopologyStrategy ``{local_datacenter: nodes}``, the
role ``cassandra.username`` (LOGIN SUPERUSER, password ``cassandra.password``), and the built-in
``cassandra`` superuser unable to log in. The password comes from the config (the secrets file),
never from a command line, and reaches CQL as a driver-bound parameter.

``python -m gaitstream.cassandra_admin render`` writes the nodes' configuration, ``setup`` the
roles, ``nodes`` prints one line per configured node (``N ADDRESS UP|DOWN detail``), ``wait-up N...``
waits until those nodes answer CQL in the cluster.
"""

from __future__ import annotations

import argparse
import re
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaitstream import clients, config, endpoints
from gaitstream.config import Config, ConfigError

TEMPLATES = config.REPO_ROOT / "stack" / "cassandra"
#: Role and data-centre names that may be formatted into CQL (CQL cannot bind identifiers).
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Cassandra's built-in superuser, created with password "cassandra" on a cluster's first start.
DEFAULT_SUPERUSER = "cassandra"
#: The folders of a node (data, commit log, hints, caches, CDC, triggers, the JVM's crash logs).
NODE_FOLDERS = ("data", "commitlog", "saved_caches", "hints", "cdc_raw", "triggers", "logs")
#: Tokens per node: with replication = nodes every node holds every row anyway; few ranges keep
#: gossip, hints and repairs small.
NUM_TOKENS = 8


@dataclass(frozen=True)
class Node:
    id: int
    host: str
    port: int
    storage_port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return f"node {self.id} ({self.address})"


@dataclass(frozen=True)
class NodeState:
    node: Node
    up: bool
    detail: str

    def line(self) -> str:
        return f"{self.node.id} {self.node.host} {'UP' if self.up else 'DOWN'} {self.detail}"


def identifier(name: str, what: str) -> str:
    """``name`` when it may be formatted into CQL as an identifier (``^[A-Za-z_][A-Za-z0-9_]*$``)."""
    if not IDENTIFIER.fullmatch(name):
        raise ConfigError(f"{what} {name!r} is not a plain identifier (letters, digits, underscores)")
    return name


def nodes(cfg: Config) -> list[Node]:
    """The configured nodes, 1..N; empty when ``cassandra.nodes`` is (one node on cassandra.host)."""
    c = cfg.cassandra
    hosts = [str(h).strip() for h in c.nodes]
    if any(not h for h in hosts):
        raise ConfigError("cassandra.nodes: an empty address")
    if len(set(hosts)) != len(hosts):
        raise ConfigError(f"cassandra.nodes: an address is listed twice ({', '.join(hosts)})")
    return [Node(i, host, c.port, c.storage_port) for i, host in enumerate(hosts, start=1)]


def node(cfg: Config, node_id: int) -> Node:
    found = [n for n in nodes(cfg) if n.id == node_id]
    if not found:
        raise ConfigError(f"no Cassandra node {node_id}: cassandra.nodes lists {len(nodes(cfg))}")
    return found[0]


def node_dir(cfg: Config, node_id: int) -> Path:
    """Node ``node_id``'s folder: ``conf/`` and the data folders (:data:`NODE_FOLDERS`)."""
    return cfg.runtime_dir / "cassandra" / f"node{node_id}"


def authenticated(cfg: Config) -> bool:
    return bool(cfg.cassandra.username)


def overrides(cfg: Config) -> dict[str, str]:
    """The top-level keys a cluster node sets differently from the single-node template."""
    auth = authenticated(cfg)
    return {
        "num_tokens": str(NUM_TOKENS),
        # Only a fresh, empty cluster is formed here: there is nothing to stream. A node whose
        # folder was deleted while the others hold data comes back empty (read repair, hints).
        "auto_bootstrap": "false",
        "endpoint_snitch": "GossipingPropertyFileSnitch",
        "authenticator": "PasswordAuthenticator" if auth else "AllowAllAuthenticator",
        "authorizer": "CassandraAuthorizer" if auth else "AllowAllAuthorizer",
        "role_manager": "CassandraRoleManager",
    }


def render_yaml(cfg: Config, node_id: int, template: str | None = None) -> str:
    """Node ``node_id``'s cassandra.yaml: the template's placeholders filled for the node, the first
    node as the only seed, the keys of :func:`overrides` replaced."""
    c, n = cfg.cassandra, node(cfg, node_id)
    seed = nodes(cfg)[0]
    text = template if template is not None else (TEMPLATES / "cassandra.yaml").read_text()
    values = {
        "CLUSTER_NAME": c.cluster_name,
        "DATA_DIR": str(node_dir(cfg, node_id)),
        "HOST": n.host,
        "PORT": str(n.port),
        "STORAGE_PORT": str(n.storage_port),
    }
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = re.search(r"@[A-Z_]+@", text)
    if left:
        raise ConfigError(f"unrendered placeholder {left.group(0)} in the Cassandra template")
    text, found = re.subn(
        r"^(\s*- seeds:\s*).*$", rf'\g<1>"{seed.host}:{seed.storage_port}"', text, count=1, flags=re.M
    )
    if not found:
        raise ConfigError("the Cassandra template has no seeds line")
    for key, value in overrides(cfg).items():
        text, found = re.subn(rf"^{key}:.*$", f"{key}: {value}", text, count=1, flags=re.M)
        if not found:
            text += f"{key}: {value}\n"
    head = (
        f"# Node {node_id} of {len(nodes(cfg))} ({n.host}), rendered by python -m gaitstream.cassandra_admin render\n"
        "# from stack/cassandra/cassandra.yaml: do not edit, it is rewritten on every start.\n"
    )
    return head + text


def render_rackdc(cfg: Config, node_id: int) -> str:
    """Node ``node_id``'s cassandra-rackdc.properties (GossipingPropertyFileSnitch)."""
    node(cfg, node_id)
    dc = identifier(cfg.cassandra.local_datacenter, "cassandra.local_datacenter")
    return f"dc={dc}\nrack=rack{node_id}\n"


def write(cfg: Config, node_id: int) -> Path:
    """Write node ``node_id``'s conf/ (cassandra.yaml, cassandra-rackdc.properties, logback.xml) and
    create its folders; the data in them is left alone. Returns the node's folder."""
    home = node_dir(cfg, node_id)
    conf = home / "conf"
    for folder in ("conf", *NODE_FOLDERS):
        (home / folder).mkdir(parents=True, exist_ok=True)
    (conf / "cassandra.yaml").write_text(render_yaml(cfg, node_id))
    (conf / "cassandra-rackdc.properties").write_text(render_rackdc(cfg, node_id))
    shutil.copyfile(TEMPLATES / "logback.xml", conf / "logback.xml")
    return home


# --- Roles ----------------------------------------------------------------------------------
def auth_replication(cfg: Config) -> dict[str, str]:
    """``system_auth``'s replication as ``system_schema.keyspaces`` lists it: NetworkTopologyStrategy
    with one copy per node in the local data centre."""
    dc = identifier(cfg.cassandra.local_datacenter, "cassandra.local_datacenter")
    return {"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", dc: str(max(1, len(nodes(cfg))))}


def auth_replication_cql(cfg: Config) -> str:
    want = auth_replication(cfg)
    parts = ", ".join(f"'{dc}': {rf}" for dc, rf in want.items() if dc != "class")
    return f"ALTER KEYSPACE system_auth WITH replication = {{'class': 'NetworkTopologyStrategy', {parts}}}"


def _role(cfg: Config) -> str:
    user = identifier(cfg.cassandra.username, "cassandra.username")
    if user == DEFAULT_SUPERUSER:
        raise ConfigError(f"cassandra.username must not be {DEFAULT_SUPERUSER!r}: setup disables that role")
    if not cfg.cassandra.password:
        raise ConfigError("cassandra.username is set but cassandra.password is empty")
    return user


def ensure_auth_replication(cfg: Config, session: Any) -> bool:
    """Give ``system_auth`` :func:`auth_replication`; True when it changed."""
    row = session.execute(
        "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", ("system_auth",)
    ).one()
    if row is not None and dict(row.replication) == auth_replication(cfg):
        return False
    session.execute(auth_replication_cql(cfg), timeout=60)
    return True


def ensure_role(cfg: Config, session: Any) -> None:
    """Create (or re-password) the configured role as a login superuser; ``session`` is a
    superuser's other than that role (a role cannot change its own superuser status)."""
    user = _role(cfg)
    for verb in ("CREATE ROLE IF NOT EXISTS", "ALTER ROLE"):
        session.execute(
            f'{verb} "{user}" WITH PASSWORD = %s AND LOGIN = true AND SUPERUSER = true',
            (cfg.cassandra.password,),
            timeout=30,
        )


def disable_default_superuser(session: Any) -> bool:
    """The built-in ``cassandra`` role: no login, no superuser, a random password; True when it changed."""
    row = session.execute(
        "SELECT can_login, is_superuser FROM system_auth.roles WHERE role = %s", (DEFAULT_SUPERUSER,)
    ).one()
    if row is None or not (row.can_login or row.is_superuser):
        return False
    session.execute(
        f"ALTER ROLE {DEFAULT_SUPERUSER} WITH PASSWORD = %s AND LOGIN = false AND SUPERUSER = false",
        (secrets.token_urlsafe(32),),
        timeout=30,
    )
    return True


def _auth_refused(exc: BaseException) -> bool:
    from cassandra import AuthenticationFailed
    from cassandra.cluster import NoHostAvailable

    if isinstance(exc, AuthenticationFailed):
        return True
    return isinstance(exc, NoHostAvailable) and any(isinstance(e, AuthenticationFailed) for e in exc.errors.values())


def _login(cfg: Config, credentials: tuple[str, str]) -> tuple[Any, Any]:
    return clients.cassandra(cfg, connect_timeout=5, request_timeout=30, credentials=credentials)


def _setup_as_default_superuser(cfg: Config, log: Any) -> BaseException | None:
    """Log in as the built-in superuser and create the configured role; the error, if any."""
    try:
        cluster, session = _login(cfg, (DEFAULT_SUPERUSER, DEFAULT_SUPERUSER))
    except Exception as exc:
        return exc
    try:
        if ensure_auth_replication(cfg, session):
            log(f"system_auth replication set to {auth_replication(cfg)}")
        ensure_role(cfg, session)
        log(f"role {_role(cfg)} created (login, superuser)")
        return None
    except Exception as exc:
        return exc
    finally:
        cluster.shutdown()


def setup(cfg: Config, timeout: float = 120.0, log: Any = print) -> None:
    """Roles and ``system_auth`` replication for a cluster with credentials (see the module doc).

    Logs in as the configured role; while that is refused, as the built-in superuser to create it
    (a new cluster creates the built-in one a few seconds after a quorum of its nodes is up). Both
    are retried until ``timeout``."""
    if not authenticated(cfg):
        log("no cassandra.username: nothing to set up")
        return
    user = _role(cfg)
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            cluster, session = _login(cfg, (user, cfg.cassandra.password))
            break
        except Exception as exc:
            last, refused = exc, _auth_refused(exc)
        if refused:
            last = _setup_as_default_superuser(cfg, log) or last
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"could log in neither as {user!r} nor as the built-in superuser in {timeout:.0f} s: "
                f"{type(last).__name__}: {last}"
            )
        time.sleep(2)
    try:
        if ensure_auth_replication(cfg, session):
            log(f"system_auth replication set to {auth_replication(cfg)}")
        if disable_default_superuser(session):
            log(f"built-in role {DEFAULT_SUPERUSER} disabled (no login, not superuser, random password)")
        log(f"roles ok: {user} logs in (superuser); system_auth replication {auth_replication(cfg)}")
    finally:
        cluster.shutdown()


# --- Node states ----------------------------------------------------------------------------
def node_states(cfg: Config, cluster: Any, session: Any, wait_s: float = 3.0) -> list[NodeState]:
    """Each configured node as a connected client sees it: in the cluster metadata (the ring), and
    answering a query sent to that node alone. ``wait_s`` covers the connection pools the driver
    is still opening."""
    from cassandra.query import SimpleStatement

    query = SimpleStatement("SELECT release_version, data_center, rack FROM system.local")
    deadline = time.monotonic() + wait_s
    states = []
    for n in nodes(cfg):
        while True:
            hosts = {h.endpoint.address: h for h in cluster.metadata.all_hosts()}
            host = hosts.get(n.host)
            if host is None:
                state = NodeState(n, False, "not in the cluster metadata (not in the ring)")
            elif host.is_up is False:
                state = NodeState(n, False, "unreachable (no connection to its CQL port)")
            else:
                try:
                    row = session.execute(query, host=host, timeout=max(1.0, wait_s)).one()
                    state = NodeState(n, True, f"{row.data_center}/{row.rack} {row.release_version}")
                except Exception as exc:
                    state = NodeState(n, False, f"no answer ({type(exc).__name__})")
            if state.up or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        states.append(state)
    return states


def current_states(cfg: Config) -> list[NodeState]:
    """:func:`node_states` through a new connection; every node DOWN when none accepts one."""
    clients.quiet_cassandra_driver()
    try:
        cluster, session = clients.cassandra(cfg)
    except Exception as exc:
        return [NodeState(n, False, f"no connection to the cluster ({type(exc).__name__})") for n in nodes(cfg)]
    try:
        return node_states(cfg, cluster, session)
    finally:
        cluster.shutdown()


def wait_up(cfg: Config, node_ids: list[int], timeout: float) -> list[NodeState]:
    """Until every node of ``node_ids`` is UP (:func:`current_states`); raises TimeoutError."""
    wanted = set(node_ids) or {n.id for n in nodes(cfg)}
    for node_id in wanted:
        node(cfg, node_id)
    deadline = time.monotonic() + timeout
    while True:
        states = [s for s in current_states(cfg) if s.node.id in wanted]
        down = [s for s in states if not s.up]
        if not down:
            return states
        if time.monotonic() >= deadline:
            raise TimeoutError("; ".join(f"{s.node}: {s.detail}" for s in down))
        time.sleep(1)


def repair(cfg: Config, node_id: int, keyspace: str) -> dict[str, int]:
    """Repair what node ``node_id`` missed in ``keyspace``: every row of every table read at
    consistency ALL with that node as coordinator. A replica whose data differs (or lacks the row)
    is written by Cassandra's blocking read repair before the read returns, so afterwards the node
    holds every row the others do. (No JMX here, so no ``nodetool repair``: this is the read path's
    repair, table by table.) Returns rows read per table."""
    from cassandra.query import SimpleStatement

    target = node(cfg, node_id)
    identifier(keyspace, "keyspace")
    cluster, session = clients.cassandra(cfg, only_node=target.host, consistency="ALL", request_timeout=120)
    try:
        tables = [
            row.table_name
            for row in session.execute(
                "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,)
            )
        ]
        counts = {}
        for table in tables:
            statement = SimpleStatement(f"SELECT * FROM {keyspace}.{identifier(table, 'table')}", fetch_size=500)
            counts[table] = sum(1 for _ in session.execute(statement))
        return counts
    finally:
        cluster.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaitstream.cassandra_admin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("render", help="write the nodes' configuration").add_argument("node", type=int, nargs="*")
    sub.add_parser("setup", help="system_auth replication and roles").add_argument("--timeout", type=float, default=120)
    sub.add_parser("nodes", help="one line per node: N ADDRESS UP|DOWN detail (exit 1 when one is down)")
    wait = sub.add_parser("wait-up", help="wait until nodes N... (default: all) answer")
    wait.add_argument("node", type=int, nargs="*")
    wait.add_argument("--timeout", type=float, default=120)
    rep = sub.add_parser("repair", help="read KEYSPACE at ALL through node N: read repair fills what it missed")
    rep.add_argument("node", type=int)
    rep.add_argument("keyspace")
    args = parser.parse_args(argv)
    try:
        cfg = config.load()
        if not nodes(cfg):
            raise ConfigError("cassandra.nodes is empty: one node on cassandra.host, nothing to do here")
        endpoints.cassandra_consistency(cfg, "read")
        if args.command == "render":
            for node_id in args.node or [n.id for n in nodes(cfg)]:
                print(write(cfg, node_id))
        elif args.command == "setup":
            setup(cfg, args.timeout)
        elif args.command == "repair":
            for table, count in repair(cfg, args.node, args.keyspace).items():
                print(f"{args.keyspace}.{table}: {count} rows read at ALL through node {args.node}")
        elif args.command == "nodes":
            states = current_states(cfg)
            print("\n".join(s.line() for s in states))
            return 0 if all(s.up for s in states) else 1
        else:
            for state in wait_up(cfg, args.node, args.timeout):
                print(state.line())
    except Exception as exc:
        print(f"cassandra {args.command}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
