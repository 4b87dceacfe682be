"""Schemathesis over `/api/v1/openapi.json`, as one user, collecting failures instead of
stopping at the first (docs/API.md "Errors": never a 5xx for bad input, one error shape).

Why a driver of our own rather than ``schemathesis.pytest``: the schema is read from a
server that a session fixture starts, every operation is tried with the headers of every
role, and the figures (inputs tried, failures by kind) are what docs/RELIABILITY.md records.
Hypothesis only generates here (no shrinking): each failing case is kept as it came, with
the curl line that replays it.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import Failure, FailureGroup

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
"""What must hold for every answer, good input or bad."""
SKIP = frozenset(
    {
        "POST /api/v1/auth/logout",  # ends the very session the fuzzer speaks with
        "POST /api/v1/auth/password",  # changes the password its other roles log in with
    }
)
"""Operations a fuzzer may not call without spoiling the rest of its own run."""
MESSAGE_CHARS = 500
"""Enough of a failure's message to see which field or status it is about."""
REQUEST_TIMEOUT_S = 30.0
"""One request's limit: an export or report of the small test city answers in well under."""


@dataclasses.dataclass
class Finding:
    operation: str
    user: str
    status: int
    kind: str
    message: str
    curl: str


@dataclasses.dataclass
class Tally:
    requests: int = 0
    operations: int = 0
    statuses: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    findings: list[Finding] = dataclasses.field(default_factory=list)

    def distinct(self) -> dict[tuple[str, str], Finding]:
        """One finding per (operation, kind): the first seen."""
        out: dict[tuple[str, str], Finding] = {}
        for f in self.findings:
            out.setdefault((f.operation, f.kind), f)
        return out


def load(url: str) -> Any:
    return schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json")


def operations(schema: Any, only: str | None = None) -> list[Any]:
    ops = []
    for result in schema.get_all_operations():
        op = result.ok()
        if op.label in SKIP or (only and only not in op.label):
            continue
        ops.append(op)
    return ops


def _failures(exc: BaseException) -> Iterable[Failure]:
    if isinstance(exc, FailureGroup):
        for sub in exc.exceptions:
            yield from _failures(sub)
    elif isinstance(exc, Failure):
        yield exc


@dataclasses.dataclass
class _Caller:
    """One operation's requests as one user: send a case, check the answer, tally it."""

    url: str
    label: str
    user: str
    headers: dict[str, str]
    session: requests.Session
    tally: Tally

    def one(self) -> Callable[[Any], None]:
        """A plain function of the case for ``hypothesis.given`` (which wants a function)."""

        def send(case: Any) -> None:
            self(case)

        return send

    def __call__(self, case: Any) -> None:
        self.session.cookies.clear()
        response = case.call(
            base_url=self.url, session=self.session, headers=self.headers, timeout=REQUEST_TIMEOUT_S
        )
        self.tally.requests += 1
        self.tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, FailureGroup) as exc:
            curl = case.as_curl_command(headers=self.headers)
            for failure in _failures(exc):
                self.tally.findings.append(
                    Finding(
                        self.label,
                        self.user,
                        response.status_code,
                        type(failure).__name__,
                        f"{failure.title}: {failure.message[:MESSAGE_CHARS]}",
                        curl,
                    )
                )


def fuzz(
    url: str,
    ops: list[Any],
    user: str,
    headers: dict[str, str],
    examples: int,
    seed: int,
    tally: Tally,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
) -> None:
    """Every operation of *ops*, *examples* inputs of each of *modes* (valid-shaped and
    invalid) each."""
    session = requests.Session()
    settings = hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    for op in ops:
        tally.operations += 1
        caller = _Caller(url, op.label, user, headers, session, tally)
        for mode in modes:
            try:
                strategy = op.as_strategy(generation_mode=mode)
            except Exception:  # a schema with no negative form is skipped
                continue
            run = settings(hypothesis.seed(seed)(hypothesis.given(case=strategy)(caller.one())))
            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                continue
