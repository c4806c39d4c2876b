"""``python -m gaitstream.supervise --name NAME -- CMD...``: run CMD, restart it when it exits abnormally.

Used by ``stack/bridge.sh``, ``stack/streaming.sh`` and ``stack/api.sh`` in local mode. The child
runs in its own process group (same session, so ``stack``'s stop still reaches every process).

* An exit with code 0, or any exit after the supervisor was asked to stop (SIGTERM/SIGINT,
  forwarded once to the child's process group), ends the supervisor with the child's code:
  a process that was asked to stop is never restarted.
* Any other exit (non-zero code, or killed by a signal nobody asked for) is logged with its cause
  (exit code or signal, and the last error line the child wrote to the log) and the command is
  started again after ``min(backoff_initial_seconds * 2^(n-1), backoff_max_seconds)`` for the
  n-th restart in a row. A run that lasted ``reset_after_seconds`` resets the row. After
  ``max_restarts`` restarts in a row (0 = no cap) the supervisor gives up and exits with the
  child's code. The streaming job resumes from its checkpoint by itself.
* Before a restart, what the dead child left behind (e.g. a Spark JVM or Python driver orphaned
  by a killed wrapper) is killed: the supervisor is a child subreaper, so orphans of its
  descendants become its own children and can be found.
* ``<supervise.status_dir>/<name>-supervisor.json`` (rewritten atomically) holds the state
  (``running``, ``backoff``, ``stopped``, ``gave-up``), the restart count, the last exit and
  the last restarts with their causes (read by ``stack/status`` and the API's ``/metrics``).

Config keys: [supervise] backoff_initial_seconds, backoff_max_seconds, max_restarts,
reset_after_seconds, status_dir.
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaitstream import config as gs_config
from gaitstream import heartbeats

log = logging.getLogger("gaitstream.supervise")
PR_SET_CHILD_SUBREAPER = 36
HISTORY = 20
# A line that says what went wrong (Python, Java and our own log formats).
ERROR_LINE = re.compile(r"(ERROR|CRITICAL|FATAL|Traceback|Exception|Error\b|error:|Killed)")
TAIL_BYTES = 256 * 1024


@dataclass(frozen=True)
class Policy:
    backoff_initial_s: float
    backoff_max_s: float
    max_restarts: int
    reset_after_s: float

    @classmethod
    def from_config(cls, cfg: gs_config.Config) -> Policy:
        s = cfg.supervise
        return cls(s.backoff_initial_seconds, s.backoff_max_seconds, s.max_restarts, s.reset_after_seconds)

    def delay(self, restart_in_row: int) -> float:
        """Seconds to wait before the ``restart_in_row``-th restart in a row (1-based)."""
        return min(self.backoff_initial_s * 2 ** max(restart_in_row - 1, 0), self.backoff_max_s)


def status_path(cfg: gs_config.Config, name: str) -> Path:
    return heartbeats.supervisor(cfg, name).path


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    if returncode > 128:  # a shell reports a child killed by signal N as 128 + N
        try:
            return f"exit code {returncode} ({signal.Signals(returncode - 128).name})"
        except ValueError:
            pass
    return f"exit code {returncode}"


def last_error_line(log_path: Path | None, since_offset: int) -> str | None:
    """The last line matching :data:`ERROR_LINE` the child wrote to the log (after ``since_offset``)."""
    if log_path is None:
        return None
    try:
        with open(log_path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(since_offset, size - TAIL_BYTES, 0)
            handle.seek(start)
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        if ERROR_LINE.search(line) and "gaitstream.supervise" not in line:
            return line.strip()[:500]
    return None


def own_log_file() -> Path | None:
    """Our stdout when it is a regular file (``gs_spawn`` appends to the service log)."""
    try:
        target = Path(os.readlink("/proc/self/fd/1"))
    except OSError:
        return None
    return target if target.is_file() else None


def become_subreaper() -> bool:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def kill_leftovers(grace_s: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL, every process still below us (orphans re-parented to us included)."""
    import psutil

    me = psutil.Process()
    left = me.children(recursive=True)
    for process in left:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(left, timeout=grace_s)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    return [p.pid for p in left]


class Supervisor:
    def __init__(self, name: str, command: list[str], policy: Policy, status_file: Path, log_path: Path | None = None):
        self.name, self.command, self.policy = name, command, policy
        self.status_file, self.log_path = status_file, log_path
        self.stop_requested = threading.Event()
        self.child: subprocess.Popen | None = None
        self.restarts = 0
        self.in_row = 0
        self.history: list[dict[str, Any]] = []
        self.last_exit: dict[str, Any] | None = None
        self.started_at = time.time()
        self.child_started_at: float | None = None

    # -- status file ------------------------------------------------------------------------
    def write_status(self, state: str, next_restart_at: float | None = None) -> None:
        doc = {
            "name": self.name,
            "pid": os.getpid(),
            "state": state,
            "command": self.command,
            "child_pid": self.child.pid if self.child and self.child.poll() is None else None,
            "started_at": self.started_at,
            "child_started_at": self.child_started_at,
            "restarts": self.restarts,
            "restarts_in_row": self.in_row,
            "next_restart_at": next_restart_at,
            "last_exit": self.last_exit,
            "history": self.history[-HISTORY:],
            "updated_at": time.time(),
        }
        heartbeats.write(self.status_file, doc, indent=1)

    # -- signals ----------------------------------------------------------------------------
    def request_stop(self, signum: int, _frame=None) -> None:
        if not self.stop_requested.is_set():
            log.info("%s: %s received: stopping the child, no restart", self.name, signal.Signals(signum).name)
        self.stop_requested.set()
        self.forward(signal.SIGTERM)

    def forward(self, sig: int) -> None:
        child = self.child
        if child is not None and child.poll() is None:
            try:
                os.killpg(child.pid, sig)
            except ProcessLookupError:
                pass

    # -- the loop ---------------------------------------------------------------------------
    def spawn(self) -> tuple[subprocess.Popen, int]:
        """Start the child (also kept as ``self.child``); returns it and the log's size before it."""
        offset = self.log_path.stat().st_size if self.log_path and self.log_path.exists() else 0
        child = self.child = subprocess.Popen(self.command, process_group=0)
        self.child_started_at = time.time()
        log.info("%s: started pid %d: %s", self.name, child.pid, " ".join(self.command))
        self.write_status("running")
        if self.stop_requested.is_set():  # a stop that came while we were starting it
            self.forward(signal.SIGTERM)
        return child, offset

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_stop)
        become_subreaper()
        while True:
            child, offset = self.spawn()
            code = child.wait()
            ran_s = time.time() - (self.child_started_at or time.time())
            cause = describe_exit(code)
            error = last_error_line(self.log_path, offset)
            self.last_exit = {"code": code, "cause": cause, "error": error, "at": time.time(), "ran_s": round(ran_s, 1)}
            if self.stop_requested.is_set() or code == 0:
                why = "on request" if self.stop_requested.is_set() else "by itself"
                log.info("%s: pid %d exited %s (%s): not restarted", self.name, child.pid, why, cause)
                kill_leftovers()
                self.write_status("stopped")
                return code
            kill_leftovers()
            if ran_s >= self.policy.reset_after_s:
                self.in_row = 0
            if self.policy.max_restarts and self.in_row >= self.policy.max_restarts:
                log.error(
                    "%s: pid %d %s after %.0fs (last error: %s); %d restarts in a row: giving up",
                    self.name,
                    child.pid,
                    cause,
                    ran_s,
                    error or "none logged",
                    self.in_row,
                )
                self.write_status("gave-up")
                return code if code > 0 else 128 - code
            self.in_row += 1
            delay = self.policy.delay(self.in_row)
            self.restarts += 1
            self.history.append(
                {
                    "at": time.time(),
                    "code": code,
                    "cause": cause,
                    "error": error,
                    "ran_s": round(ran_s, 1),
                    "delay_s": delay,
                }
            )
            self.history = self.history[-HISTORY:]
            log.warning(
                "%s: pid %d %s after %.0fs; last error: %s; restart %d (%d in a row) in %.1fs",
                self.name,
                child.pid,
                cause,
                ran_s,
                error or "none logged",
                self.restarts,
                self.in_row,
                delay,
            )
            self.write_status("backoff", next_restart_at=time.time() + delay)
            if self.stop_requested.wait(delay):
                log.info("%s: stop requested during backoff: not restarted", self.name)
                self.write_status("stopped")
                return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gaitstream.supervise", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", required=True, help="process name (status file <name>-supervisor.json)")
    parser.add_argument(
        "--log",
        type=Path,
        default=None,
        help="the child's log, read for the last error line (default: our stdout, if a file)",
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to supervise")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = gs_config.load()
    supervisor = Supervisor(
        args.name, command, Policy.from_config(cfg), status_path(cfg, args.name), args.log or own_log_file()
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
