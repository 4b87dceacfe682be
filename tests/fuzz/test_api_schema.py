"""Schemathesis against the running app's `/api/v1/openapi.json`, as every role.

What a user would notice: a request the API cannot handle answers a 5xx, or an answer that
is not what the published schema says (docs/API.md "Errors": one error shape, a fitting
4xx for bad input). Each operation is fuzzed with valid-shaped and invalid inputs as
anonymous and as each user of ``tests/conftest.py``'s ROLE_USERS (admin last: its writes
may change what the others see).

The budget: ``CYL_FUZZ_API_EXAMPLES`` inputs per operation, mode and role. By default 1,
invalid and valid-shaped inputs taking turns by role, which keeps this test near a minute
on a quiet machine; ``bench/fuzz_api.py`` runs it with more, both modes for every role.
``CYL_FUZZ_API_ONLY`` narrows to operations whose label contains it;
``CYL_FUZZ_API_REPORT`` names a JSON file to write the figures to.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import orjson
import pytest
from schemathesis import GenerationMode

from tests.conftest import ROLE_USERS
from tests.fuzz.api_schema import Tally, fuzz, load, operations
from tests.fuzz.conftest import Server

EXAMPLES = int(os.environ.get("CYL_FUZZ_API_EXAMPLES", "1"))
SEED = int(os.environ.get("CYL_FUZZ_API_SEED", "20261207"))
ANON = "anonymous"
BOTH = (GenerationMode.NEGATIVE, GenerationMode.POSITIVE)
ORDER = [ANON, *(u for u in ROLE_USERS if u != "t_admin"), "t_admin"]


@pytest.mark.slow
def test_every_role_gets_no_5xx_and_answers_that_match_the_schema(api_server: Server) -> None:
    schema = load(api_server.url)
    only = os.environ.get("CYL_FUZZ_API_ONLY") or None
    ops = operations(schema, only)
    assert len(ops) > (0 if only else 100)  # the whole API, not an empty document
    tally = Tally()
    started = time.monotonic()
    for i, user in enumerate(ORDER):
        headers = {} if user == ANON else api_server.headers[user]
        # the small budget takes turns: invalid inputs for one role, valid-shaped for the next
        modes = BOTH if EXAMPLES > 1 else (BOTH[i % 2],)
        fuzz(api_server.url, ops, user, headers, EXAMPLES, SEED, tally, modes)
    report = {
        "examples": EXAMPLES,
        "seed": SEED,
        "operations": len(ops),
        "roles": len(ORDER),
        "requests": tally.requests,
        "seconds": round(time.monotonic() - started, 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "failures": len(tally.findings),
        "distinct": [dataclasses.asdict(f) for f in tally.distinct().values()],
    }
    if path := os.environ.get("CYL_FUZZ_API_REPORT"):
        Path(path).write_bytes(
            orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
        )
    lines = [
        f"{f.operation} as {f.user}: {f.status} {f.message}\n  {f.curl}"
        for f in tally.distinct().values()
    ]
    assert not tally.findings, f"{len(tally.findings)} failures:\n" + "\n".join(lines)
    assert "Traceback" not in api_server.log_text()
