"""``gaitstream``: the one command-line entry point; subcommands grow with the pipeline."""

from __future__ import annotations

import logging
import os
import sys

import click

from gaitstream import __version__, config, health, secrecy


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gaitstream")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Foot-sensor gait recordings to a Parkinson's screening signal, as a stream.

    Configuration: conf/gaitstream.toml, overridden by GAITSTREAM_<SECTION>_<KEY>
    environment variables (or another file via GAITSTREAM_CONFIG).
    """
    try:
        ctx.obj = config.load()
    except config.ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _require_safe_secrets(cfg: config.Config, component: str) -> None:
    """Refuse to start ``component`` with a placeholder secret outside the dev profile (runtime.profile)."""
    try:
        secrecy.require_safe(cfg, component)
    except secrecy.SecretError as exc:
        raise click.ClickException(str(exc)) from exc


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("kafka", "cassandra"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command("replay")
@click.option(
    "--study", "studies", multiple=True, type=click.Choice(["Ga", "Ju", "Si"]), help="Only these studies (repeatable)."
)
@click.option(
    "--group", "groups", multiple=True, type=click.Choice(["Co", "Pt"]), help="Only controls (Co) or patients (Pt)."
)
@click.option("--subject", "subjects", multiple=True, help="Only these subject ids, e.g. GaCo01 (repeatable).")
@click.option("--walk", "walks", multiple=True, help="Only these walk ids, e.g. GaCo01_02 (repeatable).")
@click.option("--one-per-subject", is_flag=True, help="Only each subject's first walk (the real-time cohort).")
@click.option(
    "--speed", type=float, default=None, help="Multiple of real time; 0 = as fast as possible. [replay.speed]"
)
@click.option(
    "--batch-size", type=click.IntRange(1, 1000), default=None, help="Samples per MQTT message. [replay.batch_size]"
)
@click.option(
    "--data-dir", type=click.Path(exists=True, file_okay=False), default=None, help="gaitpdb folder. [data.gaitpdb_dir]"
)
@click.option("--no-progress", is_flag=True, help="No progress bar (logs only).")
@click.option("-v", "--verbose", is_flag=True)
@click.pass_obj
def replay_cmd(
    cfg: config.Config,
    studies,
    groups,
    subjects,
    walks,
    one_per_subject,
    speed,
    batch_size,
    data_dir,
    no_progress,
    verbose,
) -> None:
    """Publish gaitpdb walks to Mosquitto as live sensor streams (QoS 1, one topic per walk).

    Each subject publishes as its own device over TLS (its certificate from `gaitstream devices
    add`, issued here on first use when the local CA is on this machine; [replay] as_devices).
    Reads [mqtt] and [replay]. Ctrl-C stops cleanly and reports what was sent.
    """
    from pathlib import Path

    from bridge import replay
    from gaitstream import gaitpdb, pki

    _require_safe_secrets(cfg, "replay")
    _setup_logging(verbose)
    folder = Path(data_dir) if data_dir else cfg.path("data.gaitpdb_dir")
    refs, missing = gaitpdb.list_walks(folder)
    chosen = replay.select_walks(refs, studies, groups, subjects, walks, one_per_subject)
    if not chosen:
        raise click.ClickException("no walk matches the selection")
    speed = cfg.replay.speed if speed is None else speed
    batch = batch_size or cfg.replay.batch_size
    click.echo(
        f"replaying {len(chosen)} walks at {'max speed' if speed == 0 else f'{speed}x real time'}, "
        f"{batch} samples/message",
        err=True,
    )
    try:
        report = replay.replay(
            cfg,
            chosen,
            speed=float(speed),
            batch_size=batch,
            data_dir=folder,
            missing=missing if not (studies or groups or subjects or walks) else (),
            progress=not no_progress,
        )
    except (ConnectionError, pki.PkiError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(report.summary(), err=True)
    sys.exit(130 if report.interrupted else 0)


@main.group("devices")
def devices_group() -> None:
    """Device credentials for the MQTT TLS listener (a client certificate per subject, signed by the
    local CA in [mqtt] tls_dir; the broker's ACL lets a device publish only to its own subject's
    topics, <prefix>/<study>/<subject>/#)."""


@devices_group.command("add")
@click.argument("subjects", nargs=-1, required=True)
@click.option("--renew", is_flag=True, help="Issue a new certificate even if one exists.")
@click.pass_obj
def devices_add(cfg: config.Config, subjects, renew) -> None:
    """Issue a credential for each SUBJECT (e.g. GaPt03): certificate and mode-600 key in
    [mqtt] devices_dir. An existing credential is kept unless --renew."""
    from gaitstream import pki

    for subject in subjects:
        try:
            ident, issued = pki.add_device(cfg, subject, renew=renew)
        except pki.PkiError as exc:
            raise click.ClickException(str(exc)) from exc
        state = "issued" if issued else "exists"
        click.echo(f"{subject}\t{state}\tcertificate {ident.cert}\tkey {ident.key}\tca {pki.ca_file(cfg)}")


@devices_group.command("list")
@click.pass_obj
def devices_list(cfg: config.Config) -> None:
    """Issued device credentials with their expiry."""
    from gaitstream import pki

    rows = pki.devices(cfg)
    for row in rows:
        click.echo(f"{row['device']}\texpires {row['expires']}\t{row['certificate']}")
    click.echo(f"{len(rows)} device(s) in {pki.devices_dir(cfg)}", err=True)


@main.command("bridge")
@click.option("--client-id", default=None, help="MQTT client id (persistent session). [bridge.client_id]")
@click.option(
    "--shared-group", default=None, help="Join $share/<group>/ to split load with other bridges. [bridge.shared_group]"
)
@click.option("-v", "--verbose", is_flag=True)
@click.pass_obj
def bridge_cmd(cfg: config.Config, client_id, shared_group, verbose) -> None:
    """Forward sensor messages from Mosquitto to Kafka; ack MQTT only after Kafka confirmed.

    Reads [mqtt], [kafka] (samples_topic, dead_letter_topic, partitions) and [bridge]. Invalid
    payloads go to the dead-letter topic with the reason. SIGTERM/Ctrl-C: flush, then exit.
    """
    from bridge.bridge import run_bridge
    from gaitstream import pki

    _require_safe_secrets(cfg, "bridge")
    _setup_logging(verbose)
    try:
        code = run_bridge(cfg, client_id=client_id, shared_group=shared_group)
    except pki.PkiError as exc:
        raise click.ClickException(str(exc)) from exc
    sys.exit(code)


@main.command("schema")
@click.option("--keyspace", default=None, help="Another keyspace than [cassandra] keyspace.")
@click.option("--print", "print_only", is_flag=True, help="Print the CQL instead of running it.")
@click.pass_obj
def schema_cmd(cfg: config.Config, keyspace, print_only) -> None:
    """Create the Cassandra keyspace and tables if missing (idempotent).

    Reads [cassandra] host, port, keyspace, replication_class, replication_factor.
    """
    from streaming import schema

    if print_only:
        click.echo(";\n\n".join(schema.statements(cfg, keyspace)) + ";")
        return
    try:
        ddl = schema.create(cfg, keyspace)
    except Exception as exc:  # the driver raises NoHostAvailable/OperationTimedOut, among others
        c = cfg.cassandra
        raise click.ClickException(
            f"Cassandra at {c.host}:{c.port} did not take the schema "
            f"({type(exc).__name__}: {exc}); is it up? stack/cassandra.sh start"
        ) from exc
    for statement in ddl:
        click.echo(statement.splitlines()[0].rstrip(" ("))


@main.command("api")
@click.option("--host", default=None, help="Bind address. [api.host]")
@click.option("--port", type=int, default=None, help="Port. [api.port]")
@click.option("--workers", type=int, default=None, help="uvicorn worker processes. [api.workers]")
@click.pass_obj
def api_cmd(cfg: config.Config, host, port, workers) -> None:
    """Serve the Litestar API and dashboard with uvicorn.

    Reads [api], [cassandra], [mongo] and [data]. Ctrl-C/SIGTERM shut down cleanly. With several
    workers each process builds the app from the same config (GAITSTREAM_CONFIG and overrides).
    Bound to a non-loopback address, the read routes with health data need the token too.
    """
    import uvicorn

    _require_safe_secrets(cfg, "api")
    if host and host != cfg.api.host:  # the app decides from api.host whether reads need the token
        os.environ["GAITSTREAM_API_HOST"] = host
        cfg = config.load(cfg.source)  # the same file, with the new override
    workers = workers or cfg.api.workers
    host, port = cfg.api.host, port or cfg.api.port
    # uvloop and httptools (C event loop and HTTP parser) and no access-log line per request: what
    # /diagnose needs to keep p99 under 50 ms at 200 req/s on 2 cores (bench/api_load.py).
    server = {
        "host": host,
        "port": port,
        "log_level": "info",
        "loop": "uvloop",
        "http": "httptools",
        "access_log": cfg.api.access_log,
    }
    if workers <= 1:
        from api.app import create_app

        uvicorn.run(create_app(cfg), **server)
        return
    os.environ["GAITSTREAM_CONFIG"] = str(cfg.source)
    uvicorn.run("api.app:app_from_environment", factory=True, workers=workers, **server)


@main.command("demo")
@click.option(
    "--speed",
    type=float,
    default=0.0,
    show_default=True,
    help="Replay speed: multiple of real time, 0 = as fast as the pipeline takes it.",
)
@click.option(
    "--batch-size", type=click.IntRange(1, 1000), default=50, show_default=True, help="Samples per MQTT message."
)
@click.option("--replay-all", is_flag=True, help="Replay every walk even if its windows are already stored.")
@click.option("--no-wait", is_flag=True, help="Return after the report, leaving everything running.")
@click.option("--timeout", type=float, default=1800, show_default=True, help="Seconds to wait for Cassandra.")
@click.pass_obj
def demo_cmd(cfg: config.Config, speed, batch_size, replay_all, no_wait, timeout) -> None:
    """Run the whole pipeline end to end on the gaitpdb data set, then wait for Ctrl-C.

    Starts the stack, creates the schema, starts the bridge, the streaming job and the API,
    replays the walks, waits until Cassandra holds every window, retrains over HTTP and prints
    a report with the subject-wise metrics and the URLs. Reads every section of the config.
    """
    from cli.demo import run_demo

    run_demo(cfg, speed=speed, batch_size=batch_size, replay_all=replay_all, wait=not no_wait, timeout=timeout)


@main.command("config")
@click.argument("key", required=False)
@click.option("--show-secrets", is_flag=True, help="Print passwords, tokens and URI passwords instead of <redacted>.")
@click.pass_obj
def show_config(cfg: config.Config, key: str | None, show_secrets: bool) -> None:
    """Print the effective configuration, or one dotted KEY (e.g. kafka.port); secrets redacted.

    Reads every section, the secrets file (runtime.secrets_file) and GAITSTREAM_* overrides.
    """
    if key:
        try:
            value = cfg.get(key)
        except config.ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(value if show_secrets else secrecy.redact(key, value))
        return
    flat = cfg.flat() if show_secrets else secrecy.redacted_flat(cfg)
    for dotted, value in flat.items():
        click.echo(f"{dotted} = {value!r}")


@main.command("health")
@click.argument("services", nargs=-1, type=click.Choice(health.SERVICES))
@click.pass_obj
def check_health(cfg: config.Config, services: tuple[str, ...]) -> None:
    """Round-trip data through each service (default: all five); exit 1 if any fails.

    Reads the host/port keys of the [mqtt], [kafka], [cassandra], [hdfs] and [mongo] sections.
    """
    failed = 0
    for service in services or health.SERVICES:
        try:
            click.echo(f"{service:10s} ok    {health.check(service, cfg)}")
        except Exception as exc:  # report every service, whatever broke
            failed += 1
            click.echo(f"{service:10s} FAIL  {type(exc).__name__}: {exc}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
