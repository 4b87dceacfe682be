"""Export benchmark (docs/ARCHITECTURE.md §10): 1,000,000 cylinder rows as CSV ≤ 10 s and as XLSX ≤ 60 s,
with flat memory.

What is measured is the code the CLI and the API run (`server.archive`): the CSV from
PostgreSQL's `COPY … TO STDOUT` through `export_csv_chunks` into a file, the XLSX from a
server-side cursor through the streaming writer of `server.kernel.tabular` into a file. For each: wall time,
rows/s, file size, and this process's resident memory — baseline, peak, and samples at
10 %, 50 % and 100 % of the rows, which is what "flat" means in numbers. PostgreSQL's own
backend memory is a separate process and not included.

`--import-back` also imports the exported CSV again as a dry run (every row checked,
staged and upserted in a savepoint that is rolled back): the import's speed at 1M rows.
`--compare-cursor` also times a CSV built in Python from the cursor with the csv module,
the alternative the COPY path was chosen over. `--api` also downloads the CSV through
`GET /api/v1/cylinders/export` from the real app in this process (client and server then
share this process's CPU and memory).

    python bench/export.py [--database-url URL] [--formats csv,xlsx] [--compare-cursor] [--api]
                           [--import-back]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import datetime as dt
import io
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BENCHMARKS_MD,
    CITY_CYLINDERS,
    DEFAULT_DSN,
    RssSampler,
    bench_client,
    bench_settings,
    load_line,
    machine_line,
    prepare_city,
    record_section,
    redacted,
    run,
)
from server.archive import (
    ExportFilters,
    cli_principal,
    count_export,
    export_csv_chunks,
    import_archive,
    iter_export_rows,
    open_archive,
    write_xlsx,
)
from server.db.pool import connect

TARGETS_S = {"csv": 10.0, "xlsx": 60.0}
"""docs/ARCHITECTURE.md §10: 1M cylinder rows as CSV ≤ 10 s, XLSX ≤ 60 s."""


def progress_marks(total: int, mem: RssSampler) -> Callable[[int], None]:
    """A progress callback that samples memory at 10 %, 50 % and 100 % of *total* rows."""
    done = 0
    todo = [(0.1, "10%"), (0.5, "50%"), (1.0, "100%")]

    def step(n: int) -> None:
        nonlocal done
        done += n
        while todo and done >= todo[0][0] * total:
            mem.mark(todo.pop(0)[1])

    return step


def _size(path: Path) -> int:
    return path.stat().st_size


@dataclass
class Result:
    """One measured run, printed as a line and recorded as a table row."""

    what: str
    rows: int
    seconds: float
    cpu: float
    size: int
    mem: RssSampler
    note: str = ""

    @property
    def verdict(self) -> str:
        target = TARGETS_S.get(self.what)
        if target is None:
            return "-"
        return f"{'met' if self.seconds <= target else 'MISSED'} (≤ {target:g} s)"

    def line(self) -> str:
        return (
            f"{self.what:>10}: {self.rows:,} rows in {self.seconds:.1f} s = "
            f"{self.rows / self.seconds:,.0f} rows/s, {self.size / 2**20:.0f} MiB, "
            f"CPU {self.cpu:.1f} s; {self.mem.report()}; target {self.verdict}"
            + (f" [{self.note}]" if self.note else "")
        )

    def row(self) -> str:
        mib = 2**20
        m = self.mem
        marks = " / ".join(f"{rss / mib:.0f}" for _, rss in m.marks)
        return (
            f"| {self.what} | {self.rows:,} | {self.seconds:.1f} | {self.rows / self.seconds:,.0f}"
            f" | {self.size / mib:.0f} | {self.cpu:.1f} | {m.baseline / mib:.0f} / "
            f"{m.peak / mib:.0f} / {(m.peak - m.baseline) / mib:.0f} | {marks} | {self.verdict} |"
            + (f" {self.note} |" if self.note else " |")
        )


async def _csv(conn: Any, principal: Any, filters: ExportFilters, path: Path, total: int) -> Result:
    with RssSampler() as mem:
        step = progress_marks(total, mem)
        t0, c0 = time.perf_counter(), time.process_time()
        pending_header = True
        with path.open("wb") as fh:
            async for chunk in export_csv_chunks(conn, principal, filters):
                fh.write(chunk)
                n = chunk.count(b"\n")
                if pending_header and n:
                    n, pending_header = n - 1, False
                step(n)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return Result("csv", total, seconds, cpu, _size(path), mem)


async def _xlsx(
    conn: Any, principal: Any, filters: ExportFilters, path: Path, total: int
) -> Result:
    with RssSampler() as mem:
        step = progress_marks(total, mem)
        t0, c0 = time.perf_counter(), time.process_time()
        rows = await write_xlsx(conn, principal, filters, path, step)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return Result("xlsx", rows, seconds, cpu, _size(path), mem)


async def _import_back(conn: Any, settings: Any, principal: Any, path: Path, total: int) -> Result:
    with RssSampler() as mem:
        step = progress_marks(total, mem)
        t0, c0 = time.perf_counter(), time.process_time()
        src = await asyncio.to_thread(open_archive, path, settings.http)
        try:
            report = await import_archive(
                conn, src, settings, principal, filename=path.name, dry_run=True, progress=step
            )
        finally:
            src.close()
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    note = f"{report.unchanged:,} unchanged, {report.rejected_total:,} rejected"
    kinds = Counter(f"{r.column} {r.value!r}" for r in report.rejected)
    if kinds:
        note += ": " + ", ".join(f"{n:,} × {what}" for what, n in kinds.most_common(3))
    return Result("import (dry run)", report.total_rows, seconds, cpu, _size(path), mem, note)


async def _csv_cursor(
    conn: Any, principal: Any, filters: ExportFilters, path: Path, total: int
) -> Result:
    with RssSampler() as mem:
        step = progress_marks(total, mem)
        t0, c0 = time.perf_counter(), time.process_time()
        rows = 0
        with path.open("w", encoding="utf-8-sig", newline="") as fh:
            buf = io.StringIO()
            writer = csv.writer(buf)
            async for records in iter_export_rows(conn, principal, filters):
                writer.writerows(records)
                fh.write(buf.getvalue())
                buf.seek(0)
                buf.truncate()
                rows += len(records)
                step(len(records))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return Result("csv via cursor + csv module", rows, seconds, cpu, _size(path), mem)


async def _csv_api(settings: Any, total: int) -> Result:
    async with bench_client(settings) as (client, headers):
        with RssSampler() as mem:
            step = progress_marks(total, mem)
            t0, c0 = time.perf_counter(), time.process_time()
            size = 0
            resp = await client.get("/api/v1/cylinders/export?format=csv", headers=headers)
            if resp.status != 200:
                raise RuntimeError(f"export: {resp.status} {await resp.text()}")
            async for chunk in resp.content.iter_chunked(1 << 16):
                size += len(chunk)
                step(chunk.count(b"\n"))
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return Result(
        "csv via GET /api/v1/cylinders/export",
        total,
        seconds,
        cpu,
        size,
        mem,
        "client and server in this process",
    )


async def main(args: argparse.Namespace) -> int:
    settings = bench_settings(args.database_url)
    await prepare_city(settings, args.cylinders)
    principal = cli_principal()
    filters = ExportFilters()
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="cylwatch-bench-"))
    started = dt.datetime.now(dt.UTC)
    results: list[Result] = []

    def done(r: Result) -> None:
        results.append(r)
        print(r.line(), flush=True)

    # Other sessions on this shared machine restart PostgreSQL now and then; a measurement
    # cut short by that is retried on a new connection (and says so) rather than lost.
    conn = await connect(settings)

    async def attempt(measure: Callable[[Any], Awaitable[Result]]) -> None:
        nonlocal conn
        for tries in range(1, 4):
            try:
                r = await measure(conn)
            except (
                asyncpg.PostgresConnectionError,
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,
                asyncpg.AdminShutdownError,
                asyncpg.CannotConnectNowError,
                OSError,
            ) as exc:
                print(f"measurement interrupted ({type(exc).__name__}); retrying", flush=True)
                with contextlib.suppress(Exception):
                    await conn.close()
                await asyncio.sleep(10)
                conn = await connect(settings)
                continue
            if tries > 1:
                r.note = (r.note + "; " if r.note else "") + "retried after a PostgreSQL restart"
            done(r)
            return
        raise SystemExit("PostgreSQL kept restarting; giving up")

    try:
        machine = await machine_line(conn)
        print(machine)
        total = await count_export(conn, principal, filters)
        print(f"exporting {total:,} cylinders from {redacted(args.database_url)} to {out_dir}")
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        for fmt in formats:
            if fmt == "csv":
                await attempt(lambda c: _csv(c, principal, filters, out_dir / "bench.csv", total))
            elif fmt == "xlsx":
                await attempt(lambda c: _xlsx(c, principal, filters, out_dir / "bench.xlsx", total))
            else:
                raise SystemExit(f"unknown format {fmt}")
        if args.import_back and "csv" in formats:
            await attempt(
                lambda c: _import_back(c, settings, principal, out_dir / "bench.csv", total)
            )
        if args.compare_cursor:
            await attempt(
                lambda c: _csv_cursor(c, principal, filters, out_dir / "bench-cursor.csv", total)
            )
    finally:
        await conn.close()
    if args.api:
        done(await _csv_api(settings, total))
    after = load_line()
    print(f"after the run: {after}")
    if args.record:
        record_section(MARK, section(args, machine, after, started, results), Path(args.record))
        print(f"recorded in {args.record}")
    if not args.keep:
        await asyncio.to_thread(_remove, out_dir, bool(args.out_dir))
    return 0


MARK = "cylwatch-bench:export"

NOTES = """- **Memory is flat.** The resident set at 10 %, 50 % and 100 % of the rows stays the same
  for every path: the CSV bytes pass through without becoming Python objects, the XLSX rows
  are formatted one fetched chunk (5,000 rows) at a time into a deflated ZIP entry, and the
  import holds one chunk plus its rejected rows. The XLSX peak above the marks is the last
  chunk's strings plus the ZIP's compressor; it does not depend on the row count.
- **CSV comes from PostgreSQL** (`COPY (SELECT …) TO STDOUT`, streamed through a bounded
  queue): the "cursor + csv module" row is the alternative that was not chosen — the same
  file built in Python from a server-side cursor costs several times the CPU of this process.
- **XLSX is written by `server.kernel.tabular.XlsxWriter`, not xlsxwriter.** Measured on this machine,
  xlsxwriter's `write_string`/`write_number` (constant_memory) cost 6.7 s of CPU per
  100,000 rows of the archive's 14 columns — 67 s per million rows for the cells alone,
  over the 60 s target before any database work; one string per row into a deflated ZIP
  entry cost 1.3 s of CPU per 100,000 rows. The output is the same subset of SpreadsheetML
  xlsxwriter writes in constant_memory mode (inline strings, numbers, one date style,
  frozen header), read back by python-calamine in the tests; more than 1,048,575 rows
  continue on a further sheet.
- **Import** is not a docs/ARCHITECTURE.md §10 target; the dry-run re-import of the 1M-row export shows
  its speed (every row validated, staged by COPY, checked against the table, upserted in a
  savepoint that is rolled back). Its rejected rows are the seeded `not_activated`
  cylinders: the archive interface (`IMPORT_STATUSES`, docs/ARCHITECTURE.md §9) does not accept that
  status, so an export holding such cylinders does not re-import them.
- **Load.** The machine line gives the load average when the run started and ended; a
  2-core box at load 8–11 gives this process a fraction of a core. CPU seconds of the
  benchmark process are shown because they depend far less on the load than wall time
  (the CSV path's work is mostly in PostgreSQL, so its CPU here is small).
- **Under load the CSV target was missed once.** On 2026-11-23 at 23:40 UTC, at load
  average 10.7, the same export took 11.4 s for CSV (missed, ≤ 10 s) and 53.2 s for XLSX;
  earlier runs at load 8 took 3.7 s and 8.5 s for CSV. The CSV's work is mostly
  PostgreSQL's (this process used ~1.4 s of CPU), so it slows with whatever else the two
  cores run."""


def section(
    args: argparse.Namespace,
    machine: str,
    after: str,
    started: dt.datetime,
    results: list[Result],
) -> str:
    flags = " ".join(
        f
        for f, on in (
            ("--compare-cursor", args.compare_cursor),
            ("--import-back", args.import_back),
            ("--api", args.api),
        )
        if on
    )
    lines = [
        "## Archive export (and import)",
        "",
        f"Command: `python bench/export.py --database-url {redacted(args.database_url)} "
        f"--formats {args.formats} {flags}` ({started:%Y-%m-%d %H:%M} UTC)",
        "",
        f"Machine: {machine.removeprefix('machine: ')}; after the run: {after}.",
        "",
        "Targets (docs/ARCHITECTURE.md §10): 1M cylinder rows as CSV ≤ 10 s, XLSX ≤ 60 s, memory flat. "
        "Whole archive as the CLI exports it (admin scope, no filter), to a local file.",
        "",
        "| what | rows | wall s | rows/s | file MiB | CPU s (this process) | RSS MiB "
        "baseline / peak / growth | RSS MiB at 10 / 50 / 100 % | target | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(r.row() for r in results),
        "",
    ]
    missed = [r for r in results if r.verdict.startswith("MISSED")]
    if missed:
        lines.append(
            "**Missed on this run:** "
            + "; ".join(f"{r.what} took {r.seconds:.1f} s ({r.verdict})" for r in missed)
            + ". See the load average in the machine line and the note on load below."
        )
        lines.append("")
    lines.append(NOTES)
    return "\n".join(lines) + "\n"


def _remove(out_dir: Path, keep_dir: bool) -> None:
    for p in out_dir.glob("bench*"):
        p.unlink()
    if not keep_dir:
        os.rmdir(out_dir)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--database-url", default=DEFAULT_DSN, help=f"default {DEFAULT_DSN}")
    p.add_argument("--cylinders", type=int, default=CITY_CYLINDERS, help="city size to seed")
    p.add_argument("--formats", default="csv,xlsx", help="comma-separated: csv, xlsx")
    p.add_argument("--compare-cursor", action="store_true", help="also CSV via cursor + csv")
    p.add_argument("--api", action="store_true", help="also CSV through the HTTP endpoint")
    p.add_argument("--import-back", action="store_true", help="also import the CSV back (dry run)")
    p.add_argument("--out-dir", help="where the files go (default: a temp dir, removed)")
    p.add_argument("--keep", action="store_true", help="keep the exported files")
    p.add_argument(
        "--record",
        nargs="?",
        const=str(BENCHMARKS_MD),
        default=None,
        help="write the section into docs/BENCHMARKS.md (or PATH)",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    run(main(parse()))
