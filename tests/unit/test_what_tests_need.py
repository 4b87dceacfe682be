"""Tests say what they need (docs/ARCHITECTURE.md §12), proved by running pytest itself.

- The pure tests (``tests/unit``) pass with PostgreSQL, Redis and Mosquitto all down.
- A selected test that needs the services ends the run with one line naming each service
  that is down and the command that starts it; a ``no_services`` test outside
  ``tests/unit`` runs without them.
- A missing tool skips a test on a developer's machine and fails it in CI — in particular
  the browser tests when Chromium is missing.

Each run is a child ``python -m pytest`` in the repository; the services are pointed at a
port that is bound but not listening, so every connection to them is refused at once.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SERVICES_DOWN_EXIT
from tests.tools import missing

ROOT = Path(__file__).resolve().parents[2]
CHILD_TIMEOUT_S = 600


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound to a socket that never listens: a connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def _env(port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env.update(
        CYL_TEST_ADMIN_DSN=f"postgresql://postgres@127.0.0.1:{port}/postgres",
        CYL_TEST_REDIS_URL=f"redis://127.0.0.1:{port}/15",
        CYL_MQTT_URL=f"mqtt://127.0.0.1:{port}",
        **extra,
    )
    return env


def _pytest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        check=False,
    )


def test_unit_tests_pass_with_every_service_down(refused_port: int) -> None:
    this = Path(__file__).relative_to(ROOT)
    run = _pytest(_env(refused_port), "tests/unit", f"--ignore={this}")
    assert run.returncode == 0, run.stdout + run.stderr
    assert " passed" in run.stdout
    assert "services down" not in run.stdout + run.stderr


def _write_test(directory: Path, body: str) -> Path:
    path = directory / "test_child.py"
    path.write_text(f"import pytest\n\n{body}\n", encoding="utf-8")
    return path


def test_a_test_needing_services_stops_the_run_in_one_line(
    refused_port: int, tmp_path: Path
) -> None:
    child = _write_test(tmp_path, "def test_talks_to_the_database():\n    pass")
    run = _pytest(_env(refused_port), "-c", "pyproject.toml", "-p", "tests.conftest", str(child))
    assert run.returncode == SERVICES_DOWN_EXIT, run.stdout + run.stderr
    lines = [line for line in (run.stdout + run.stderr).splitlines() if "services down" in line]
    assert len(lines) == 1, run.stdout + run.stderr
    for name in ("PostgreSQL", "Redis", "Mosquitto"):
        assert f"{name} at 127.0.0.1:{refused_port}" in lines[0]
    assert "bash scripts/services.sh" in lines[0]
    assert "Traceback" not in run.stdout + run.stderr


def test_a_no_services_test_outside_unit_runs_without_them(
    refused_port: int, tmp_path: Path
) -> None:
    child = _write_test(
        tmp_path, "pytestmark = pytest.mark.no_services\n\ndef test_pure():\n    pass"
    )
    run = _pytest(_env(refused_port), "-c", "pyproject.toml", "-p", "tests.conftest", str(child))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_a_missing_tool_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="node is not installed: apt-get install nodejs"):
        missing("node", "apt-get install nodejs")


@pytest.mark.parametrize(("ci", "summary"), [("true", "1 error"), ("", "1 skipped")])
def test_browser_tests_fail_in_ci_without_chromium(
    refused_port: int, tmp_path: Path, ci: str, summary: str
) -> None:
    child = _write_test(tmp_path, "def test_opens_a_page(browser):\n    pass")
    env = _env(refused_port, CI=ci, CYL_CHROMIUM=str(tmp_path / "no-chromium"))
    run = _pytest(env, "-c", "pyproject.toml", "-p", "tests.browser.conftest", str(child))
    assert summary in run.stdout, run.stdout + run.stderr
    assert f"Chromium at {tmp_path / 'no-chromium'} is not installed" in run.stdout
