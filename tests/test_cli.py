"""The `cylwatch` command: every command and subcommand has --help with a description,
and a service that is down is one clear line, not a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from server.cli import build_parser, main


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.extend(_walk(sub, (*path, name)))
    return out


COMMANDS = [p for p in _walk(build_parser()) if p]


def test_the_expected_commands_exist() -> None:
    top = {p[0] for p in COMMANDS}
    assert {
        "migrate",
        "serve",
        "demo",
        "seed",
        "user",
        "import",
        "export",
        "ingest",
        "sim",
        "devices",
    } <= top
    assert ("import", "cylinders") in COMMANDS and ("export", "cylinders") in COMMANDS
    assert ("user", "add") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*path, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: cylwatch " + " ".join(path))
    # each command says what it does (a help= or description=), not just its usage line
    parent = build_parser()
    for name in path[:-1]:
        parent = next(
            a for a in parent._actions if isinstance(a, argparse._SubParsersAction)
        ).choices[name]
    sub = next(a for a in parent._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert helps.get(path[-1]), f"`cylwatch {' '.join(path)}` has no help text"


def test_database_down_is_one_line_with_the_fix() -> None:
    env = {
        "CYL_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/cylwatch",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "PostgreSQL is not reachable at postgresql://postgres@127.0.0.1:9/cylwatch" in lines[0]
    assert "pg_ctlcluster" in lines[0]
