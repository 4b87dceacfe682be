"""Private services of a chaos run: a PostgreSQL cluster, a Mosquitto, a Redis and `cylwatch
ingest`.

A fault must never reach the machine's shared PostgreSQL, Redis or Mosquitto (other work runs
on them), so the run starts its own: a PostgreSQL 15 cluster made with ``initdb`` in a temp
dir on a spare port (pausing it pauses nobody else — a SIGSTOP of single backends of a shared
cluster could freeze everyone's queries behind a lock the stopped backend holds), and a
Mosquitto with ``config/mosquitto.conf`` — persistence and its ``autosave_interval``
included, docs/DEPLOY.md §10 — where only the listener, the file locations and the
authentication are rewritten (the TLS listener needs certificates, the plugin a provisioned
dynamic-security file; neither takes part in what a fault tests), and a redis-server of its
own for the live bus, which a fault may restart.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final, Protocol

import psutil

__all__ = [
    "IngestProcess",
    "PrivateMosquitto",
    "PrivatePostgres",
    "PrivateRedis",
    "first_start",
    "free_port",
    "wait_port",
]

ROOT: Final = Path(__file__).resolve().parents[2]
MOSQUITTO_CONF: Final = ROOT / "config" / "mosquitto.conf"
PG_BIN: Final = Path(os.environ.get("CYL_CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
"""The server programs of PostgreSQL 15 (the Debian layout; the variable for other systems)."""
PG_ACCOUNT: Final = "postgres"
"""``initdb`` refuses to run as root: as root the cluster belongs to the packaged server's
account."""
START_TIMEOUT_S: Final = 30.0
"""How long a private service may take to listen: a loaded 2-core machine, a cold cache."""
STOP_TIMEOUT_S: Final = 20.0
"""How long a graceful stop may take before it becomes a kill (ingest commits and acks)."""

_DROPPED_KEYS: Final = frozenset(
    {"cafile", "certfile", "keyfile", "tls_version", "allow_anonymous", "plugin"}
    | {"plugin_opt_config_file"}
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the process on port {port} exited with {proc.returncode}")
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class _Service(Protocol):
    def start(self) -> None: ...
    def new_port(self) -> None: ...


FIRST_START_TRIES: Final = 3
"""A spare port is free when picked, but other work on the machine (tests starting their own
services) may take it before the service binds it: the first start tries a new port."""


def first_start(service: _Service) -> None:
    """Start *service* the first time, on a new spare port if its own was taken meanwhile.
    Later starts (a restart fault) keep the port: the clients reconnect to it."""
    for attempt in range(FIRST_START_TRIES):
        try:
            service.start()
            return
        except (RuntimeError, TimeoutError, subprocess.CalledProcessError):
            if attempt == FIRST_START_TRIES - 1:
                raise
            service.new_port()


def _as_server_account(command: list[str]) -> list[str]:
    return ["runuser", "-u", PG_ACCOUNT, "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A throw-away PostgreSQL cluster: trust on loopback, fsync off, removed on close."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cylwatch-chaos-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        if os.geteuid() == 0:
            account = pwd.getpwnam(PG_ACCOUNT)
            os.chown(self.dir, account.pw_uid, account.pw_gid)

    def new_port(self) -> None:
        self.port = free_port()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> None:
        command = _as_server_account([str(PG_BIN / program), *args])
        subprocess.run(command, check=True, capture_output=True, timeout=120)  # noqa: S603

    def init(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL 15 server programs not found in {PG_BIN}")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        opts = " ".join(
            (
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.dir}",
                "-c fsync=off",
            )
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def processes(self) -> list[psutil.Process]:
        """The postmaster and every process it started (backends, checkpointer, WAL writer)."""
        pid_file = self.data / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().split("\n", 1)[0])
            postmaster = psutil.Process(pid)
        except (OSError, ValueError, psutil.Error):
            return []
        return [postmaster, *postmaster.children(recursive=True)]

    def signal_all(self, sig: int) -> int:
        procs = self.processes()
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)
        return len(procs)

    def close(self) -> None:
        self.signal_all(signal.SIGCONT)  # a paused cluster cannot stop
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateMosquitto:
    """config/mosquitto.conf on a spare loopback port, its persistence in a temp dir.

    *exe*: the broker program (default: ``mosquitto`` on PATH) — another build of Mosquitto
    can be put through the same rounds (docs/DEPLOY.md §10 compares 2.0.11 and 2.0.20)."""

    def __init__(self, autosave_interval: int | None = None, exe: str | None = None) -> None:
        self.exe = exe or shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cylwatch-chaos-mqtt-"))
        os.chmod(self.dir, 0o777)  # noqa: S103 - mosquitto drops root for its own user
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        self.autosave_interval = 0
        lines: list[str] = []
        listeners = 0
        for line in MOSQUITTO_CONF.read_text(encoding="utf-8").splitlines():
            key = line.split(" ", 1)[0]
            if key == "listener":
                listeners += 1
                if listeners == 1:
                    lines.append(f"listener {self.port} 127.0.0.1")
                continue
            if key in _DROPPED_KEYS:
                continue
            if key == "persistence_location":
                line = f"persistence_location {self.dir}/"
            elif key == "autosave_interval":
                if autosave_interval is not None:
                    line = f"autosave_interval {autosave_interval}"
                self.autosave_interval = int(line.split()[1])
            lines.append(line)
        lines.append("allow_anonymous true")
        self._lines = lines
        self._write_conf()
        self.proc: subprocess.Popen[bytes] | None = None

    def _write_conf(self) -> None:
        lines = [
            f"listener {self.port} 127.0.0.1" if line.startswith("listener ") else line
            for line in self._lines
        ]
        self.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def new_port(self) -> None:
        self.port = free_port()
        self._write_conf()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def version(self) -> str:
        """``mosquitto -h``'s first line, e.g. "mosquitto version 2.0.11"."""
        try:
            done = subprocess.run(  # noqa: S603 - the broker program, a fixed argument
                [self.exe, "-h"], capture_output=True, timeout=10, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{self.exe}: {exc}"
        first = done.stdout.decode(errors="replace").strip().splitlines()
        return first[0] if first else self.exe

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own config, fixed arguments
                [self.exe, "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        wait_port(self.port, START_TIMEOUT_S, self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM saves the state first (a restart); SIGKILL does not (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server on a spare loopback port, no persistence (the bus keeps nothing)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cylwatch-chaos-redis-"))
        self.log = self.dir / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def new_port(self) -> None:
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - fixed arguments
                [exe, *args, "no", "--dir", str(self.dir)], stdout=out, stderr=subprocess.STDOUT
            )
        wait_port(self.port, START_TIMEOUT_S, self.proc)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class IngestProcess:
    """`cylwatch ingest --workers N` as deployed: a supervisor that restarts a dead worker."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.env = env
        self.workers = workers
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "server.cli", "ingest", "--workers", str(self.workers)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def log_count(self, text: str) -> int:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace").count(text)
        except OSError:
            return 0

    def wait_log(self, text: str, occurrences: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_count(text) >= occurrences:
                return
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(0.1)
        tail = self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"ingest: {text!r} ×{occurrences} not seen in time:\n{tail}")

    def worker_pids(self) -> list[int]:
        """The supervisor's worker children (not multiprocessing's resource tracker)."""
        if self.proc is None:
            return []
        try:
            children = psutil.Process(self.proc.pid).children()
        except psutil.Error:
            return []
        out = []
        for child in children:
            with contextlib.suppress(psutil.Error):
                if "resource_tracker" not in " ".join(child.cmdline()):
                    out.append(child.pid)
        return out

    def signal_tree(self, sig: int) -> int:
        """Signal the supervisor and every process under it (workers, reply processes)."""
        if self.proc is None:
            return 0
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)
        return len(procs)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.signal_tree(signal.SIGCONT)  # a stopped process cannot stop
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(psutil.Error):
                    for child in psutil.Process(proc.pid).children(recursive=True):
                        child.kill()
                proc.kill()
                proc.wait(5)
        return proc.returncode
