"""What the chaos tests need installed to start their private services
(server/chaos/services.py; docs/RELIABILITY.md "Chaos runs")."""

from __future__ import annotations

import shutil

from server.chaos.services import PG_BIN
from tests.tools import missing


def need_programs(*, broker_and_redis: bool = True) -> None:
    """Skip (fail in CI) for want of PostgreSQL 15's server programs and, unless told
    otherwise, Mosquitto and redis-server."""
    if not (PG_BIN / "initdb").exists():
        missing(f"PostgreSQL 15 server programs ({PG_BIN})", "apt-get install postgresql-15")
    if not broker_and_redis:
        return
    if shutil.which("mosquitto") is None:
        missing("mosquitto", "apt-get install mosquitto")
    if shutil.which("redis-server") is None:
        missing("redis-server", "apt-get install redis-server")
