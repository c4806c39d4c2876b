"""``gaitstream``: the one command-line entry point; subcommands grow with the pipeline."""
from __future__ import annotations

import sys

import click

from gaitstream import __version__, config, health


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


@main.command("config")
@click.argument("key", required=False)
@click.pass_obj
def show_config(cfg: config.Config, key: str | None) -> None:
    """Print the effective configuration, or one dotted KEY (e.g. kafka.port)."""
    if key:
        try:
            click.echo(cfg.get(key))
        except config.ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    for dotted, value in cfg.flat().items():
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
