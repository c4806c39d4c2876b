"""The MQTT broker's local certificate authority: the CA, the broker's server certificate, and one
client certificate per identity (the bridge, the dev profile's replayer account, each device).

Mosquitto's TLS listener requires a client certificate and takes its common name as the user name
(``use_identity_as_username``), so a device's certificate *is* its identity: the ACL's
``pattern write <prefix>/+/%u/#`` lets device ``GaPt03`` publish only under its own subject.
Keys are created by ``openssl`` (EC P-256), never leave this machine and are mode 600; nothing
secret is ever passed on a command line. ``python -m gaitstream.pki broker`` (run by
``stack/mosquitto.sh`` before every start) creates what is missing and changes nothing else.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gaitstream import config
from gaitstream.config import Config

log = logging.getLogger("gaitstream.pki")

CA_DAYS = 3650
SERVER_DAYS = 825
# A device name is its subject id (the ACL substitutes it into a topic: no wildcards, no slashes).
DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


class PkiError(RuntimeError):
    """A certificate could not be issued or is missing; the message says which and what to do."""


@dataclass(frozen=True)
class Identity:
    """A client certificate and its key (the CA that signed it is :func:`ca_file`)."""

    name: str
    cert: Path
    key: Path

    @property
    def exists(self) -> bool:
        return self.cert.is_file() and self.key.is_file()


def tls_dir(cfg: Config) -> Path:
    return cfg.path("mqtt.tls_dir")


def devices_dir(cfg: Config) -> Path:
    return cfg.path("mqtt.devices_dir")


def ca_file(cfg: Config) -> Path:
    return tls_dir(cfg) / "ca.crt"


def service_identity(cfg: Config, name: str) -> Identity:
    """The bridge's (or the replayer account's) client certificate, kept beside the CA."""
    d = tls_dir(cfg) / "clients"
    return Identity(name, d / f"{name}.crt", d / f"{name}.key")


def device_identity(cfg: Config, subject_id: str) -> Identity:
    d = devices_dir(cfg)
    return Identity(subject_id, d / f"{subject_id}.crt", d / f"{subject_id}.key")


def _openssl(*args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise PkiError("openssl is not installed (apt-get install openssl)") from exc
    if done.returncode != 0:
        raise PkiError(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _san(host: str) -> str:
    names = {"IP:127.0.0.1", "DNS:localhost"}
    try:
        ipaddress.ip_address(host)
        names.add(f"IP:{host}")
    except ValueError:
        names.add(f"DNS:{host}")
    return ",".join(sorted(names))


def ensure_ca(cfg: Config) -> Path:
    """The CA certificate, created on first use (its key stays mode 600 beside it)."""
    d = tls_dir(cfg)
    crt, key = d / "ca.crt", d / "ca.key"
    if crt.is_file() and key.is_file():
        return crt
    _private_dir(d)
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-out", str(crt), "-days", str(CA_DAYS), "-subj", "/CN=gaitstream local MQTT CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    os.chmod(key, 0o600)
    log.info("created the local MQTT CA %s", crt)
    return crt


def _issue(cfg: Config, name: str, cert: Path, key: Path, *, days: int, extensions: str) -> None:
    """A key and a certificate for common name ``name``, signed by the local CA."""
    d = tls_dir(cfg)
    ca_crt, ca_key = ensure_ca(cfg), d / "ca.key"
    if not ca_key.is_file():
        raise PkiError(f"the CA key {ca_key} is not on this machine: issue certificates where the CA lives")
    _private_dir(cert.parent)
    csr = _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", str(key), "-subj", f"/CN={name}",
    )  # fmt: skip
    os.chmod(key, 0o600)
    with tempfile.NamedTemporaryFile("w", suffix=".ext", dir=d) as ext:
        ext.write(extensions)
        ext.flush()
        _openssl(
            "x509", "-req", "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", str(days), "-extfile", ext.name, "-out", str(cert), stdin=csr,
        )  # fmt: skip


def ensure_server(cfg: Config) -> tuple[Path, Path]:
    """The broker's certificate for ``mqtt.host`` (and loopback), issued once."""
    d = tls_dir(cfg)
    crt, key = d / "server.crt", d / "server.key"
    if not (crt.is_file() and key.is_file()):
        ext = f"subjectAltName={_san(cfg.mqtt.host)}\nextendedKeyUsage=serverAuth\n"
        _issue(cfg, cfg.mqtt.host, crt, key, days=SERVER_DAYS, extensions=ext)
        log.info("issued the broker certificate %s", crt)
    return crt, key


def _client_ext() -> str:
    return "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"


def ensure_service(cfg: Config, name: str) -> Identity:
    ident = service_identity(cfg, name)
    if not ident.exists:
        _issue(cfg, name, ident.cert, ident.key, days=SERVER_DAYS, extensions=_client_ext())
    return ident


def check_device_name(cfg: Config, subject_id: str) -> None:
    if not DEVICE_NAME.match(subject_id):
        raise PkiError(f"device name {subject_id!r}: letters, digits, '_' and '-' only (a subject id)")
    if subject_id in (cfg.mqtt.bridge_user, cfg.mqtt.replay_user):
        raise PkiError(f"device name {subject_id!r} is a service account's name")


def add_device(cfg: Config, subject_id: str, *, renew: bool = False) -> tuple[Identity, bool]:
    """The device credential of ``subject_id``: (identity, issued now). Existing ones are kept
    unless ``renew``."""
    check_device_name(cfg, subject_id)
    ident = device_identity(cfg, subject_id)
    if ident.exists and not renew:
        return ident, False
    _issue(cfg, subject_id, ident.cert, ident.key, days=cfg.mqtt.device_cert_days, extensions=_client_ext())
    log.info("issued device credential %s", ident.cert)
    return ident, True


def can_issue(cfg: Config) -> bool:
    """The CA (or the place to create it) is on this machine: the dev stack's case."""
    d = tls_dir(cfg)
    return (d / "ca.key").is_file() or not (d / "ca.crt").exists()


def devices(cfg: Config) -> list[dict[str, str]]:
    """Issued device credentials: name, expiry (``notAfter``), certificate path."""
    out = []
    for crt in sorted(devices_dir(cfg).glob("*.crt")):
        end = _openssl("x509", "-in", str(crt), "-noout", "-enddate").decode().strip().partition("=")[2]
        out.append({"device": crt.stem, "expires": end, "certificate": str(crt)})
    return out


def ensure_broker(cfg: Config) -> None:
    """Everything the broker and the services need: CA, server certificate, the bridge's client
    certificate, and in the dev profile the replayer account's."""
    ensure_ca(cfg)
    ensure_server(cfg)
    ensure_service(cfg, cfg.mqtt.bridge_user)
    if cfg.runtime.profile == "dev":
        ensure_service(cfg, cfg.mqtt.replay_user)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaitstream.pki", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["broker"], help="broker: CA, server and service certificates")
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        ensure_broker(config.load())
    except PkiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
