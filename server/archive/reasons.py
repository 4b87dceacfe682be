"""Why an archive row is refused, and what an import warns about: a closed vocabulary of
stable codes with their parameters (docs/ARCHITECTURE.md §9, docs/API.md "Cylinders").

A report is read by people in two languages (the import page is zh-CN by default) and by
programs (the enterprise interface's clients). The English sentence the server has always
given stays — the API's ``reason``, the rejected-rows CSV, the command line — and each refusal
and warning also carries its ``code`` and ``params``, from which a page says it in the
reader's language (the dashboard's ``imports.reason.<code>`` strings) and a program decides
without parsing English. One place names every code: :data:`REASONS` maps each to its English
template, whose ``{fields}`` are the code's parameters; :func:`reason` refuses an unknown code
or a parameter the template does not name, so no code can be emitted that this vocabulary
(and therefore the page's strings, checked by tests/archive/test_reason_codes.py) lacks.

Parameters are plain JSON values: texts as the file spells them (a column's name, a tag, a
value), line numbers, and lists (the configured models, the allowed statuses). An empty text
reads "empty" in the English sentence; ``{name!r}`` quotes a value the file gave.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from server.domain.record_changes import DATE_REFUSALS

__all__ = ["PARAMS", "REASONS", "REASON_CODES", "WARNING_CODES", "Reason", "reason"]

Param = str | int | list[str]

_ROW_REASONS: Final[dict[str, str]] = {
    # a cell on its own (server.archive.validation)
    "required": "{column} is required",
    "too_long": "{column} is longer than {max} characters",
    "has_spaces": "{column} must not contain spaces",
    "has_nul": "{column} contains a NUL character, which no text field can hold",
    "not_a_date": "{column}: {value} is not a date",
    "date_format": "{column}: expected a date YYYY-MM-DD, got {value!r}",
    "not_calendar_date": "{column}: {value!r} is not a calendar date",
    "not_a_number": "{column}: expected a number, got {value!r}",
    "not_positive": "{column} must be positive",
    "too_large": "{column} is larger than {max}",
    "too_small": "{column} is too small (rounds to 0.00)",
    "beyond_header": "row has a value in column {index}, beyond the header",
    "unknown_company": "owner_code {value!r} is not a registered company",
    "not_your_company": "owner_code {value!r} is not your company",
    "unknown_model": "spec {value!r} is not a configured model ({models})",
    "unknown_status": "status must be one of {allowed}",
    # the dates of one record (server.domain.record_changes.check_dates), after the column
    **{code: "{column} " + words for code, words in DATE_REFUSALS.items()},
    "date_not_derivable": "{column}: {detail}",
    # the file as a whole and what is on record (server.archive.importer)
    "tag_repeated": "tag {tag} repeats line {line} of this file",
    "barcode_repeated": "barcode {barcode} is also given to tag {tag} on line {line}",
    "barcode_repeated_line": "barcode {barcode} is also given to another tag on line {line}",
    "barcode_taken": "barcode {barcode} already belongs to cylinder {cylinder}",
    "tag_voided": "tag {tag} is voided: its cylinder was scrapped, a scrapped cylinder never"
    " returns to use and its tag is never used again (a new cylinder needs a new tag)",
    "tag_other_company": "tag belongs to another company",
    # the importing role's rules (server.domain.record_changes, .transitions, .registration)
    "field_not_changeable": "role {role} may not change {column} (on record: {before},"
    " in the file: {after})",
    "status_not_settable": "role {role} may not set status {status} (must be one of {allowed})",
    "status_final": "the cylinder is {old_status}; a scrapped cylinder is never returned to use",
    "status_no_return": "the cylinder is {old_status}; role {role} may not return a"
    " {old_status} cylinder to service",
    "finding_not_stated": "{column}: role {role} may not state this when registering a"
    " cylinder; the dates are derived from manufacture_date and set by inspections"
    " (leave the cell empty)",
}

_WARNINGS: Final[dict[str, str]] = {
    "columns_ignored": "column(s) ignored, not part of the archive interface: {columns}",
    "rejected_truncated": "{total} rows rejected; only {kept} of them are listed",
}

REASONS: Final[Mapping[str, str]] = MappingProxyType({**_ROW_REASONS, **_WARNINGS})
"""Code → the English sentence, its ``{fields}`` the code's parameters."""
REASON_CODES: Final[tuple[str, ...]] = tuple(_ROW_REASONS)
"""Every code a refused row (``RejectedRow.code``) may carry."""
WARNING_CODES: Final[tuple[str, ...]] = tuple(_WARNINGS)
"""Every code an import's warning may carry."""


def _fields(template: str) -> tuple[str, ...]:
    names = (name for _, name, _, _ in string.Formatter().parse(template) if name)
    return tuple(dict.fromkeys(names))


PARAMS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {code: _fields(template) for code, template in REASONS.items()}
)
"""Code → the names of its parameters."""

_EMPTY: Final = "empty"
"""An empty text parameter in the English sentence (a field empty on record or in the file)."""


def _english(value: Param) -> str | int:
    if isinstance(value, list):
        value = ", ".join(value)
    return _EMPTY if value == "" else value


@dataclass(frozen=True, slots=True)
class Reason:
    """One refusal or warning: its code, its parameters and the English sentence."""

    code: str
    params: dict[str, Param] = field(default_factory=dict)
    text: str = ""


def reason(code: str, **params: Param) -> Reason:
    """The reason *code* with *params* (exactly the parameters :data:`PARAMS` names for it)."""
    template = REASONS[code]  # KeyError: a code outside the vocabulary is a bug
    if set(params) != set(PARAMS[code]):
        raise TypeError(f"reason {code!r} takes {PARAMS[code]}, got {sorted(params)}")
    words = {name: _english(value) for name, value in params.items()}
    return Reason(code, dict(params), template.format(**words))
