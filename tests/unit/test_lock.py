"""Reproducible installs: requirements.lock pins every dependency of pyproject.toml to one
version its specifier admits, and aiohttp to a release without known advisories."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
AIOHTTP_FLOOR = (3, 14, 5)
"""Newest aiohttp when pinned (`pip index versions aiohttp`), with no open advisory."""


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not an exact pin"
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_every_dependency_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    locked = _locked()
    missing = [req for req in wanted if _name(req) not in locked]
    assert not missing, f"not in requirements.lock (regenerate it): {missing}"


def test_aiohttp_is_pinned_past_its_advisories() -> None:
    version = tuple(int(part) for part in _locked()["aiohttp"].split(".")[:3])
    assert version >= AIOHTTP_FLOOR
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"aiohttp>=3.14.5,<4"' in project
