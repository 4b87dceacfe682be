#!/usr/bin/env python3
"""Schemathesis against `/api/v1/openapi.json` as every role, at a large budget (issue 10
item 2): no 5xx, every answer as the published schema says (docs/API.md "Errors").

It runs ``tests/fuzz/test_api_schema.py`` — a real ``cylwatch serve`` on a fresh test
database (``cylwatch_test_<pid>_<hex>``, dropped afterwards), the small city of
``tests/conftest.py`` with a user of every role — with ``--examples`` inputs per operation,
mode (valid-shaped and invalid) and role, and prints the figures: requests, answers by
status, failures by operation and kind (with the curl line of the first of each).

Run: ``nice -n 19 python bench/fuzz_api.py --examples 20`` (``--only fills`` narrows to the
operations whose label contains it). Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/fuzz/test_api_schema.py"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=20, help="inputs per operation/mode/role")
    ap.add_argument("--seed", type=int, default=20261207)
    ap.add_argument("--only", default="", help="only operations whose label contains this")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = {
            **os.environ,
            "CYL_FUZZ_API_EXAMPLES": str(args.examples),
            "CYL_FUZZ_API_SEED": str(args.seed),
            "CYL_FUZZ_API_ONLY": args.only,
            "CYL_FUZZ_API_REPORT": str(report),
        }
        cmd = [sys.executable, "-m", "pytest", TEST, "-q", "-p", "no:cacheprovider"]
        status = subprocess.call(cmd, cwd=ROOT, env=env)
        if report.exists():
            figures = json.loads(report.read_text())
            for f in figures["distinct"]:
                f["message"] = f["message"][:300]
            print(json.dumps(figures, indent=2, ensure_ascii=False))
        return status


if __name__ == "__main__":
    sys.exit(main())
