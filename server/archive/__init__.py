"""Cylinder archive (气瓶档案) import and export: the interface of docs/ARCHITECTURE.md §9.

Gas companies and inspection agencies keep their archives in spreadsheets; this package is
the one place that turns such a file into cylinder records and back, used alike by the CLI
(`cylwatch import cylinders` / `cylwatch export cylinders`), the REST API
(`server.api.archive`) and the tests. One concern a module:

- `interface` — the columns, who may import, the limits, the import report;
- `reader` — opening a CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or XLSX/XLS (python-calamine);
- `validation` — checking each row on its own;
- `importer` — the database checks (a change of an existing cylinder judged by the rule a
  change by hand obeys, `server.domain.record_changes`) and the idempotent upsert, chunk by
  chunk; `statements` — its SQL;
- `rejected` — the rejected rows given back in the file's own columns, to correct;
- `exporter` — CSV by `COPY … TO STDOUT`, XLSX by the streaming writer of
  `server.kernel.tabular`, both in the caller's scope;
- `cli` — the two commands.
"""

from server.archive.cli import add_commands, cli_principal
from server.archive.exporter import (
    ExportFilters,
    count_export,
    export_csv_chunks,
    export_filename,
    iter_export_rows,
    write_xlsx,
)
from server.archive.importer import import_archive
from server.archive.interface import (
    ARCHIVE_COLUMNS,
    IMPORT_ROLES,
    REQUIRED_COLUMNS,
    ArchiveFileError,
    ImportReport,
    RejectedRow,
)
from server.archive.reader import ArchiveSource, open_archive

__all__ = [
    "ARCHIVE_COLUMNS",
    "IMPORT_ROLES",
    "REQUIRED_COLUMNS",
    "ArchiveFileError",
    "ArchiveSource",
    "ExportFilters",
    "ImportReport",
    "RejectedRow",
    "add_commands",
    "cli_principal",
    "count_export",
    "export_csv_chunks",
    "export_filename",
    "import_archive",
    "iter_export_rows",
    "open_archive",
    "write_xlsx",
]
