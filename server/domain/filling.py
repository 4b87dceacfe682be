"""Assessing a completed fill: mass, repeat fills, and the pre/post-fill checks.

- Mass: GB 5842 sets each model's allowable filling mass; TSG 23-2021 forbids an
  overfilled cylinder leaving the station (liquid expansion can burst it), so overfill is a
  safety alert. Underfill (below max − tolerance, the traditional 14.5 ± 0.5 kg of the
  "15 kg" YSP35.5) is consumer protection, not a safety block (DOMAIN.md).
- Repeat fill: a cylinder filled again within the configured window without a return
  scan between is a sign of tag cloning or of filling off the books (DOMAIN.md
  "Abnormal behaviour").
- Checks: the local traceability standards (e.g. DB4114/T 185-2023) require a recorded
  pre-fill (充装前检查) and post-fill (充装后检查) check; any failed item aborts the fill.

Every number comes from :class:`server.kernel.settings.Filling` and the model table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from server.kernel.settings import CylinderModel, Filling

from .dates import require_aware

__all__ = [
    "FillAssessment",
    "assess_fill",
    "checks_failed",
    "is_repeat_fill",
    "max_fill_kg",
]


class FillAssessment(StrEnum):
    """Outcome of :func:`assess_fill`; ``overfill`` and ``underfill`` are alert kinds."""

    OK = "ok"
    OVERFILL = "overfill"
    UNDERFILL = "underfill"
    UNKNOWN_MODEL = "unknown_model"


def _model(spec: str, models: Mapping[str, CylinderModel]) -> CylinderModel | None:
    """Look a model up by its spec code, tolerating stray blanks and letter case.

    Specs arrive from imports and gun payloads typed by people (``" ysp35.5"``); the
    model table is keyed by the canonical GB 5842 code (``"YSP35.5"``).
    """
    found = models.get(spec)
    if found is None:
        found = models.get(spec.strip().upper())
    return found


def max_fill_kg(spec: str, models: Mapping[str, CylinderModel]) -> float | None:
    """Maximum net LPG mass per fill for a model (GB 5842), or ``None`` if unknown."""
    model = _model(spec, models)
    return None if model is None else model.max_fill_kg


def _exact(x: float) -> Decimal:
    """A float as the decimal number it was written as (14.9 stays 14.9).

    Mass limits are compared in decimal so that a reading of exactly the limit is never
    mis-judged by binary rounding (e.g. ``14.9 + 0.1 != 15.0`` in floats).
    """
    return Decimal(repr(x))


def assess_fill(
    spec: str, net_kg: float, models: Mapping[str, CylinderModel], rules: Filling
) -> FillAssessment:
    """Judge a fill's net mass against the model's maximum (DOMAIN.md "Models").

    - ``overfill``: net > max + ``rules.overfill_tolerance_kg`` (0 by default: exactly the
      maximum is lawful, a gram more is not);
    - ``underfill``: net < max − ``rules.underfill_tolerance_kg`` (exactly max − 0.5 kg is
      still a fair fill);
    - ``unknown_model``: the spec is not in the model table — the mass cannot be judged,
      which is itself worth flagging rather than silently passing.

    A non-finite mass (NaN, ±inf) is not a measurement and raises ``ValueError``.
    """
    if not math.isfinite(net_kg):
        raise ValueError(f"net mass is not a finite number: {net_kg!r}")
    model = _model(spec, models)
    if model is None:
        return FillAssessment.UNKNOWN_MODEL
    net = _exact(net_kg)
    limit = _exact(model.max_fill_kg)
    if net > limit + _exact(rules.overfill_tolerance_kg):
        return FillAssessment.OVERFILL
    if net < limit - _exact(rules.underfill_tolerance_kg):
        return FillAssessment.UNDERFILL
    return FillAssessment.OK


def is_repeat_fill(
    previous_fill_at: datetime | None,
    last_return_at: datetime | None,
    now: datetime,
    rules: Filling,
) -> bool:
    """Is a fill at *now* a repeat fill (DOMAIN.md "Abnormal behaviour")?

    True when the previous fill of the same cylinder was at most
    ``rules.repeat_fill_window_h`` hours before *now* (both ends included, like every
    "within N" window of the platform) and no return scan lies between: a return counts
    only when strictly after the previous fill and not after *now*. A cylinder with no
    previous fill, or whose "previous" fill is dated after *now* (late, buffered data
    arriving out of order), is not a repeat — the out-of-order fill is judged when the
    later one is. All datetimes must be timezone-aware (``ValueError`` otherwise): device
    clocks are UTC epoch milliseconds (docs/ARCHITECTURE.md §5) and a naive time would be a bug.
    """
    require_aware("now", now)
    if previous_fill_at is None:
        return False
    require_aware("previous_fill_at", previous_fill_at)
    if last_return_at is not None:
        require_aware("last_return_at", last_return_at)
        if previous_fill_at < last_return_at <= now:
            return False
    elapsed = now - previous_fill_at
    return timedelta(0) <= elapsed <= timedelta(hours=rules.repeat_fill_window_h)


def checks_failed(
    pre_check: Mapping[str, bool] | None, post_check: Mapping[str, bool] | None
) -> tuple[str, ...]:
    """Names of the failed check items, ``"pre:<item>"`` then ``"post:<item>"``.

    DOMAIN.md "Filling checks": each item is pass/fail and a failed item makes the fill
    ``aborted``. Only an explicit ``true`` passes — a ``null`` or any other value from a
    device is a failure (fail closed: an unrecorded check was not done). Items are sorted
    by name within each group so the same failures always give the same answer, whatever
    order the device sent them in. ``None`` (no checks recorded) yields nothing here;
    whether checks are mandatory is the caller's policy.
    """
    failed: list[str] = []
    for prefix, items in (("pre", pre_check), ("post", post_check)):
        if items is None:
            continue
        failed.extend(f"{prefix}:{name}" for name in sorted(items) if items[name] is not True)
    return tuple(failed)
