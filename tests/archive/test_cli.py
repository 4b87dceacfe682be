"""`cylwatch import cylinders` / `cylwatch export cylinders` through `server.cli.main`.

These are plain (sync) tests: the CLI runs its own event loop, as it does for an operator.
The settings come from the environment the test sets, like a real shell."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import python_calamine

from server.cli import main
from server.kernel.settings import Settings
from server.kernel.tabular import CSV_BOM
from tests.archive.conftest import Arc, csv_bytes, write_file


@pytest.fixture
def cli_env(settings: Settings, arc: Arc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CYL_DATABASE_URL", settings.services.database_url)
    monkeypatch.setenv("CYL_REDIS_URL", settings.services.redis_url)


def test_cli_import_then_export(
    cli_env: None, arc: Arc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [arc.row(owner_code=arc.code_b), arc.row(owner_code=arc.code_b), arc.row(spec="X")]
    path = write_file(tmp_path, csv_bytes(rows, encoding="gbk"), "导入.csv")
    report = tmp_path / "rejected.csv"
    assert main(["import", "cylinders", str(path), "--report", str(report)]) == 0
    out, err = capsys.readouterr()
    assert "3 row(s): 2 inserted, 0 updated, 0 unchanged, 1 rejected" in out
    assert "line 4 [spec]" in err and "1 row(s) were rejected" in err
    lines = list(csv.reader(io.StringIO(report.read_text(encoding="utf-8-sig"))))
    assert lines[1][:3] == ["4", "spec", "X"]

    assert main(["import", "cylinders", str(path), "--dry-run"]) == 0
    assert "0 inserted, 0 updated, 2 unchanged, 1 rejected (dry run" in capsys.readouterr().out

    out_csv = tmp_path / "out.csv"
    assert main(["export", "cylinders", "-o", str(out_csv), "--company", arc.code_b]) == 0
    data = out_csv.read_bytes()
    assert data.startswith(CSV_BOM)
    tags = [r["tag"] for r in csv.DictReader(io.StringIO(data[3:].decode()))]
    assert set(tags) >= {rows[0]["tag"], rows[1]["tag"]}
    assert f"exported {len(tags)} cylinder(s)" in capsys.readouterr().out

    out_xlsx = tmp_path / "out.xlsx"
    assert main(["export", "cylinders", "-o", str(out_xlsx), "--company", arc.code_b]) == 0
    wb = python_calamine.CalamineWorkbook.from_path(str(out_xlsx))
    assert [r[0] for r in wb.get_sheet_by_index(0).to_python()[1:]] == tags
    wb.close()
    # the exported workbook imports back unchanged
    assert main(["import", "cylinders", str(out_xlsx)]) == 0
    assert f"{len(tags)} unchanged, 0 rejected" in capsys.readouterr().out


def test_cli_as_company_and_exit_codes(
    cli_env: None, arc: Arc, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [arc.row(owner_code=arc.code_b)]
    path = write_file(tmp_path, csv_bytes(rows))
    # every row rejected (not this company's): nothing stored → 1
    assert main(["import", "cylinders", str(path), "--as-company", arc.code_a]) == 1
    assert "is not your company" in capsys.readouterr().err
    assert main(["import", "cylinders", str(path), "--as-company", "NO-SUCH"]) == 1
    assert "no company with code 'NO-SUCH'" in capsys.readouterr().err
    bad = write_file(tmp_path, b"\x00\x01\x02", "x.csv")
    assert main(["import", "cylinders", str(bad)]) == 1
    assert "neither CSV text nor XLSX" in capsys.readouterr().err
    assert main(["import", "cylinders", str(tmp_path / "missing.csv")]) == 1
    assert main(["export", "cylinders", "-o", str(tmp_path / "x.pdf")]) == 1


def test_cli_help_documents_columns_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["import", "cylinders", "--help"])
    text = capsys.readouterr().out
    assert "owner_code" in text and "Exit status" in text and "GBK" in text
