"""deploy/systemd: the units of a plain Debian host.

``systemd-analyze verify`` checks every unit against a root holding the host's own unit
files plus the platform's executables (stubs at /opt/cylwatch/current): an unknown key, a bad
value or a missing dependency is printed, and any output fails the test. ``systemd-analyze
security`` scores each service's hardening offline. The parsed files are also checked for
what the deployment relies on (tests/tools.py: without systemd-analyze, that part is skipped
on a developer's machine and fails in CI; the parsed checks always run).
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.tcp_proxy import free_port
from tests.tools import missing

UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
LONG_RUNNING = ("cylwatch-serve@.service", "cylwatch-ingest.service")
ONESHOT = (
    "cylwatch-migrate.service",
    "cylwatch-backup.service",
    "cylwatch-broker-sync.service",
    "cylwatch-maintenance.service",
)
SERVICES = LONG_RUNNING + ONESHOT
TIMERS = ("cylwatch-backup.timer", "cylwatch-broker-sync.timer", "cylwatch-maintenance.timer")
EXPOSURE_MAX = 20
"""`systemd-analyze security --threshold` is in tenths: fail above an exposure of 2.0 ("OK")."""

Unit = dict[str, dict[str, list[str]]]


def parse(path: Path) -> Unit:
    """Sections -> key -> every value in order (systemd keys may repeat)."""
    out: Unit = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out[section][key.strip()].append(value.strip())
    return out


def _one(unit: Unit, section: str, key: str) -> str:
    values = unit[section][key]
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


@pytest.mark.parametrize("name", SERVICES)
def test_services_are_hardened_and_read_the_platforms_environment(name: str) -> None:
    unit = parse(UNITS / name)
    service = unit["Service"]
    assert _one(unit, "Service", "User") == "cylwatch"
    assert "/etc/cylwatch/env" in service["EnvironmentFile"]
    for key, value in (
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("SystemCallFilter", "@system-service"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ):
        assert _one(unit, "Service", key) == value, f"{name}: {key}"
    for command in service["ExecStart"] + service.get("ExecStartPost", []):
        assert command.startswith("/opt/cylwatch/current/venv/bin/"), command
    # only migrations and the backup read the tables' owner's password
    owner = "/etc/cylwatch/migrate.env" in service["EnvironmentFile"]
    assert owner == (name in ("cylwatch-migrate.service", "cylwatch-backup.service")), name


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_processes_restart_and_start_after_the_migrations(name: str) -> None:
    unit = parse(UNITS / name)
    assert _one(unit, "Service", "Restart") == "on-failure"
    assert _one(unit, "Unit", "Requires") == "cylwatch-migrate.service"
    assert "cylwatch-migrate.service" in _one(unit, "Unit", "After").split()
    assert _one(unit, "Unit", "PartOf") == "cylwatch.target"
    # the uploads dir is the only writable place
    assert unit["Service"]["ReadWritePaths"] == ["/var/lib/cylwatch"]


def test_the_server_unit_is_one_process_per_port_gated_by_readyz() -> None:
    unit = parse(UNITS / "cylwatch-serve@.service")
    start = _one(unit, "Service", "ExecStart")
    assert start.endswith("cylwatch serve --host 127.0.0.1 --port %i --no-ingest")
    assert "http://127.0.0.1:%i/readyz" in _one(unit, "Service", "ExecStartPost")
    ingest = _one(parse(UNITS / "cylwatch-ingest.service"), "Service", "ExecStart")
    assert "cylwatch ingest --workers ${CYLWATCH_INGEST_WORKERS}" in ingest


@pytest.mark.parametrize("name", ONESHOT)
def test_jobs_are_oneshot(name: str) -> None:
    assert _one(parse(UNITS / name), "Service", "Type") == "oneshot"


@pytest.mark.parametrize("name", TIMERS)
def test_timers_start_their_service(name: str) -> None:
    unit = parse(UNITS / name)
    assert unit["Install"]["WantedBy"] == ["timers.target"]
    assert (UNITS / name.replace(".timer", ".service")).is_file()
    assert unit["Timer"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A filesystem root: the host's unit files, ours, and stub executables."""
    if shutil.which("systemd-analyze") is None:
        missing("systemd-analyze", "apt-get install -y systemd")
    root = tmp_path_factory.mktemp("root")
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for path in UNITS.iterdir():
        if path.suffix in (".service", ".timer", ".target"):
            shutil.copy(path, units / path.name)
    bin_dir = root / "opt/cylwatch/current/venv/bin"
    bin_dir.mkdir(parents=True)
    for name in ("cylwatch", "python"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    return root


def _instances() -> list[str]:
    return [
        "cylwatch-serve@8081.service" if n == "cylwatch-serve@.service" else n
        for n in (*SERVICES, *TIMERS, "cylwatch.target")
    ]


def test_systemd_analyze_verify_finds_nothing(root: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *_instances()],
        capture_output=True,
        text=True,
        cwd=root / "etc/systemd/system",
        timeout=60,
    )
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), (
        done.stdout + done.stderr
    )


@pytest.mark.parametrize("name", [n for n in _instances() if n.endswith(".service")])
def test_systemd_rates_the_hardening_ok(root: Path, name: str) -> None:
    done = subprocess.run(
        [
            "systemd-analyze", "security", "--offline=true", f"--root={root}",
            f"--threshold={EXPOSURE_MAX}", name,
        ],
        capture_output=True,
        text=True,
        cwd=root / "etc/systemd/system",
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-600:] + done.stderr


# ---------------------------------------------------------------- cylwatch-wait-ready


@pytest.fixture
def flaky_server() -> Iterator[int]:
    """503 twice (not ready yet), then 200."""
    answers = [503, 503]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = answers.pop(0) if answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield port
    server.shutdown()
    server.server_close()


def _wait(url: str, seconds: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(UNITS / "cylwatch-wait-ready"), url, seconds],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_wait_ready_returns_once_the_server_is_ready(flaky_server: int) -> None:
    assert _wait(f"http://127.0.0.1:{flaky_server}/readyz", "10").returncode == 0


def test_wait_ready_gives_up_naming_the_last_answer() -> None:
    done = _wait(f"http://127.0.0.1:{free_port()}/readyz", "1.2")
    assert done.returncode == 1
    assert "not ready after 1.2 s" in done.stderr


def test_the_platform_accepts_the_example_environment() -> None:
    """Every CYL_* line of the env examples names a real setting with a valid value."""
    from server.kernel.settings import load_settings

    env = {}
    for name in ("env.example", "migrate.env.example"):
        for line in (UNITS / name).read_text().splitlines():
            if line.startswith("CYL_"):
                key, _, value = line.partition("=")
                env[key] = value
    settings = load_settings(environ=env)
    assert list(settings.http.trusted_proxies) == ["127.0.0.1"]
    assert settings.services.database_owner_url.startswith("postgresql://cylwatch_owner:")
    assert settings.uploads.dir == "/var/lib/cylwatch/uploads"
