"""A full disk under ingest (docs/RELIABILITY.md "Chaos runs", issue 10 item 1): while the
simulated city publishes, the partitions ingest writes to sit on a tmpfs tablespace that is
filled to the last byte (``server.chaos.storage``), then freed. PostgreSQL refuses each batch
with SQLSTATE 53100 (disk_full) and stays up; ingest must take that for the database away —
hold the batch unacknowledged and retry (``ingest.replies.db_away``), never dead-letter good
messages as if they were bad data — and once space is back every acknowledged message is
stored exactly once, every leak alert counted once. Fill authorization only reads, so it
answers throughout.

The fault needs ``mount -t tmpfs`` (root). Where mounting is refused the test fails in CI with
the reason — a green run must not mean the fault never happened — and is skipped, with the
reason, on a developer's machine (the rule of ``tests.tools``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.chaos import ChaosConfig, Outcome, format_table, run_chaos
from server.chaos.storage import mount_problem
from tests.chaos.services import need_programs
from tests.tools import in_ci

pytestmark = pytest.mark.slow

FULL_S = 5.0
"""How long the volume stays full: long enough for several refused retries of the held batch
(ingest's back-off as shipped: 0.5 s doubling)."""
RESUME_BOUND_S = 10.0
"""After the filler is deleted, rows arrive again within this: the held batch's next retry
comes at most one back-off step later (≤ 4 s after a 5 s fault), plus a loaded machine."""
AUTH_UNDISTURBED_S = 3.0
"""The longest wait for a fill-authorization answer: it reads, never writes the full volume,
so anything above a loaded machine's scheduling noise would be a dependency on the disk."""


def _number(pattern: str, note: str) -> float:
    found = re.search(pattern, note)
    assert found is not None, f"{pattern!r} not in the fault's note: {note}"
    return float(found.group(1))


@pytest.fixture(scope="module")
async def disk_full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Outcome, Path]:
    need_programs()
    problem = mount_problem()
    if problem is not None:
        message = f"the disk-full fault cannot be made here: {problem}"
        if in_ci():
            pytest.fail(f"{message} (CI must run it as root: a skip would hide the fault)", False)
        pytest.skip(message)
    logs: Path = tmp_path_factory.mktemp("chaos-disk")
    cfg = ChaosConfig(
        faults=["disk-full"],
        rate=60.0,
        duration_s=14.0,
        warmup_s=3.0,
        fault_s=FULL_S,
        cylinders=200,
        leaks_per_s=2.0,
        drain_timeout_s=40.0,
        keep_logs=logs,
    )
    (outcome,) = await run_chaos(cfg, out=lambda _line: None)
    print(format_table([outcome]))
    return outcome, logs


async def test_a_full_disk_holds_the_batch_and_loses_nothing(
    disk_full: tuple[Outcome, Path],
) -> None:
    o, logs = disk_full
    table = format_table([o])
    # the fault landed: PostgreSQL refused statements for want of space, ingest held its batch
    assert _number(r"(\d+) statements refused", o.note) >= 1, table
    assert _number(r"and (\d+) rows stored in", o.note) == 0, table
    ingest_log = (logs / "ingest.log").read_text(encoding="utf-8", errors="replace")
    assert "DiskFullError" in ingest_log and "unacknowledged, retrying" in ingest_log
    assert "dead-lettering" not in ingest_log
    # and nothing was lost, doubled or taken for bad data
    assert o.sent == o.acked > 0, table
    assert (o.lost, o.duplicated, o.dead_letters) == (0, 0, 0), table
    assert o.stored == o.acked
    assert o.leaks > 0 and (o.alerts_lost, o.alerts_doubled) == (0, 0), table
    # storing resumed soon after the space came back
    assert _number(r"storing again ([\d.]+) s", o.note) < RESUME_BOUND_S, table


async def test_fill_authorization_answers_while_the_disk_is_full(
    disk_full: tuple[Outcome, Path],
) -> None:
    o, _ = disk_full
    assert o.auth_gap_s is not None and o.auth_gap_s < AUTH_UNDISTURBED_S, format_table([o])
    assert o.auth_unanswered == 0, format_table([o])
