"""The archive import's reasons as codes (server/archive/reasons.py, docs/API.md "Cylinders"):
one closed vocabulary in the server, a string for every code in both languages of the import
page, and every refused row and warning of a report — and every record the enterprise
interface refuses through the import — carrying its code and exactly its parameters beside
the English sentence it always had.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from dashboard.i18n import strings
from server.archive import ARCHIVE_COLUMNS
from server.archive.reasons import PARAMS, REASON_CODES, REASONS, WARNING_CODES, reason
from server.domain.record_changes import DATE_REFUSALS
from tests.api.conftest import Fresh, call, unique
from tests.api.test_enterprise_ingest import CYLINDERS, company, push, record
from tests.conftest import World

IMPORT = "/api/v1/cylinders/import"
PAGE_HELPERS = {"empty", "list_sep", "coded"}
"""Strings of imports.reason.* that are not codes: how the page says a parameter."""
_ARCHIVE = Path(__file__).resolve().parents[2] / "server" / "archive"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_code_has_a_string_in_both_languages(lang: str) -> None:
    table = strings(lang)
    codes = (*REASON_CODES, *WARNING_CODES)
    for code in codes:
        key = f"imports.reason.{code}"
        assert key in table, f"{lang}: no string for reason {code}"
        said = set(re.findall(r"\{(\w+)\}", table[key]))
        assert said == set(PARAMS[code]), (lang, code, said, PARAMS[code])
    for key in table:
        if key.startswith("imports.reason."):
            name = key.removeprefix("imports.reason.")
            assert name in codes or name in PAGE_HELPERS, f"{lang}: {key} is no code"


def test_the_vocabulary_is_closed_and_every_code_is_emitted() -> None:
    """Each code the archive package names is in the vocabulary, and each code of the
    vocabulary is named somewhere (the dates' codes by server.domain.record_changes)."""
    named: set[str] = set(DATE_REFUSALS)
    for path in _ARCHIVE.glob("*.py"):
        if path.name != "reasons.py":
            named |= set(re.findall(r'\breason\(\s*"(\w+)"', path.read_text(encoding="utf-8")))
    assert named == set(REASONS), named ^ set(REASONS)
    assert len(REASON_CODES) + len(WARNING_CODES) == len(REASONS)
    with pytest.raises(KeyError):
        reason("no_such_code")
    with pytest.raises(TypeError):
        reason("required")  # its column is missing
    assert reason("required", column="tag").text == "tag is required"


def _file(rows: list[dict[str, str]], extra: str) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([*ARCHIVE_COLUMNS, extra])
    for row in rows:
        writer.writerow([row.get(c, "") for c in ARCHIVE_COLUMNS] + ["备注"])
    return buf.getvalue().encode()


def _check_entry(entry: dict[str, Any]) -> None:
    """A coded entry: a code of the vocabulary, exactly its parameters, the same sentence."""
    code, params = entry["code"], entry["params"]
    assert set(params) == set(PARAMS[code]), entry
    text = entry.get("reason", entry.get("text"))
    assert reason(code, **params).text == text, entry


async def test_a_report_gives_each_rejected_row_and_warning_its_code(
    client: Any, fresh: Fresh, pool: Any, world: World
) -> None:
    mine = await fresh.cylinder("A")
    taken = await pool.fetchval("SELECT barcode FROM cylinders WHERE id = $1", mine)
    theirs = await pool.fetchval(
        "SELECT tag FROM cylinders WHERE id = $1", await fresh.cylinder("B")
    )
    made = world.today.replace(year=world.today.year - 2, day=1).isoformat()
    first = unique("RC")

    def row(**over: str) -> dict[str, str]:
        return {"tag": unique("RC"), "owner_code": "TEST-A", "spec": "YSP35.5",
                "manufacture_date": made, **over}  # fmt: skip

    rows = [
        row(tag=first),  # 2: good
        row(tag=first),  # 3
        row(tag="A B"),  # 4
        row(owner_code="NOPE"),  # 5
        row(owner_code="TEST-B"),  # 6
        row(spec="YSP99"),  # 7
        row(manufacture_date="2021-02-30"),  # 8
        row(tare_kg="abc"),  # 9
        row(status="broken"),  # 10
        row(barcode=taken),  # 11
        row(tag=theirs),  # 12
        row(next_inspection_date=world.today.isoformat()),  # 13
        row(manufacture_date=world.today.replace(year=world.today.year + 1).isoformat()),  # 14
    ]
    status, body = await call(
        client,
        "POST",
        IMPORT + "?dry_run=true&filename=codes.csv",
        "t_company_a",
        data=_file(rows, "remark"),
        headers={"Content-Type": "text/csv"},
    )
    assert status == 200, body
    got = {r["line"]: r for r in body["rejected_rows"]}
    assert {line: r["code"] for line, r in got.items()} == {
        3: "tag_repeated",
        4: "has_spaces",
        5: "unknown_company",
        6: "not_your_company",
        7: "unknown_model",
        8: "not_calendar_date",
        9: "not_a_number",
        10: "unknown_status",
        11: "barcode_taken",
        12: "tag_other_company",
        13: "finding_not_stated",
        14: "date_in_future",
    }
    for entry in body["rejected_rows"]:
        _check_entry(entry)
    assert got[3]["params"] == {"tag": first, "line": 2}
    assert got[7]["params"]["value"] == "YSP99" and "YSP35.5" in got[7]["params"]["models"]
    assert got[13]["params"] == {"column": "next_inspection_date", "role": "company_admin"}
    assert got[14]["params"] == {"column": "manufacture_date"}
    assert body["warnings"] == [w["text"] for w in body["warning_details"]]
    (ignored,) = body["warning_details"]
    assert (ignored["code"], ignored["params"]) == ("columns_ignored", {"columns": ["remark"]})
    _check_entry(ignored)


async def test_the_enterprise_interface_passes_the_codes_through(client: Any, pool: Any) -> None:
    co = await company(pool)
    same = record(1)
    records = [same, record(2, tag=same["tag"]), record(3, spec="YSP99")]
    status, body = await push(client, CYLINDERS, co, {"records": records})
    assert status == 200, body
    stored, repeated, bad_spec = body["results"]
    assert stored["status"] == "stored"
    assert (repeated["code"], repeated["params"]) == (
        "tag_repeated",
        {"tag": same["tag"], "index": 0},  # a line of the file is a record of the batch
    )
    assert repeated["message"] == f"tag {same['tag']} repeats the record at index 0 of this batch"
    assert bad_spec["code"] == "unknown_model" and bad_spec["params"]["value"] == "YSP99"
    assert bad_spec["field"] == "spec" and bad_spec["message"].startswith("spec 'YSP99'")
