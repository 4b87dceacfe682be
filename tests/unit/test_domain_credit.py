"""Credit evaluation's rules (DOMAIN.md "Credit evaluation"; server.domain.credit): the default
numbers, caps that are never exceeded, grades monotone in the score, grading by rank, the
rolling window and the monthly snapshots' days."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import get_args

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.domain.authorization import Reason
from server.domain.credit import (
    DERIVED_KINDS,
    GRADES,
    KINDS,
    MANUAL_KINDS,
    KindTotal,
    event_points,
    grade_all,
    grade_by_rank,
    grade_by_thresholds,
    ranks,
    score,
    snapshot_days,
    window_start,
)
from server.kernel.settings import ConfigError, load_settings
from server.kernel.settings.work import CreditKind

CFG = load_settings(environ={}).credit
RANKED = msgspec.structs.replace(CFG, grading="rank")
D = Decimal


def test_defaults_are_domain_md() -> None:
    assert CFG.base == 100 and CFG.window_months == 12
    assert dict(CFG.points) == {
        "denied_attempt": 0.5,
        "overfill": 1.0,
        "overstock_day": 2.0,
        "suspected_illegal_fill": 5.0,
        "complaint_upheld": 3.0,
        "rectification_overdue": 1.0,
        "licence_lapsed": 10.0,
    }
    assert dict(CFG.caps) == {"denied_attempt": 20.0, "overfill": 15.0}
    assert (CFG.grade_a, CFG.grade_b, CFG.grade_c) == (90, 75, 60)
    assert set(CFG.denied_reasons) == {"not_owner", "overdue_inspection", "scrapped"}


def test_vocabularies_agree() -> None:
    assert set(get_args(CreditKind)) == set(DERIVED_KINDS)
    assert set(DERIVED_KINDS) | set(MANUAL_KINDS) == set(KINDS)
    assert set(CFG.denied_reasons) <= {r.value for r in Reason}
    assert GRADES == ("A", "B", "C", "D")


def test_event_points_are_signed_and_manual_kinds_have_none() -> None:
    assert event_points("denied_attempt", 3, CFG) == D("-1.5")
    assert event_points("licence_lapsed", 1, CFG) == D("-10")
    with pytest.raises(ValueError, match="a person"):
        event_points("good_conduct", 1, CFG)


def test_forty_one_refusals_hit_the_cap_exactly() -> None:
    s = score({"denied_attempt": KindTotal(41, event_points("denied_attempt", 41, CFG))}, CFG)
    line = next(x for x in s.lines if x.kind == "denied_attempt")
    assert line.raw == D("-20.5") and line.points == D("-20") and line.cap == D("20")
    assert s.score == D("80")
    assert line.as_dict()["capped"] is True
    assert [x.kind for x in s.lines] == list(KINDS)  # every kind, zeros included


def test_a_worked_example() -> None:
    totals = {
        "denied_attempt": KindTotal(10, D("-5")),
        "overfill": KindTotal(20, D("-20")),  # capped at 15
        "overstock_day": KindTotal(2, D("-4")),
        "complaint_upheld": KindTotal(1, D("-3")),
        "good_conduct": KindTotal(1, D("2.5")),
    }
    s = score(totals, CFG)
    assert s.score == D("100") - 5 - 15 - 4 - 3 + D("2.5")
    assert grade_by_thresholds(s.score, CFG) == "B"


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        score({"speeding": KindTotal(1, D("-1"))}, CFG)


@pytest.mark.parametrize(
    ("value", "grade"),
    [
        (100, "A"),
        (90, "A"),
        (89.99, "B"),
        (75, "B"),
        (74.5, "C"),
        (60, "C"),
        (59.99, "D"),
        (-40, "D"),
    ],
)
def test_threshold_grades(value: float, grade: str) -> None:
    assert grade_by_thresholds(D(str(value)), CFG) == grade


kinds = st.sampled_from(KINDS)
points = st.decimals(min_value=-500, max_value=500, places=2, allow_nan=False)


@st.composite
def ledgers(draw: st.DrawFn) -> dict[str, KindTotal]:
    out = {}
    for kind in draw(st.lists(kinds, unique=True)):
        magnitude = abs(draw(points))
        signed = magnitude if kind == "good_conduct" else -magnitude
        out[kind] = KindTotal(draw(st.integers(0, 10_000)), signed)
    return out


@given(ledgers())
@settings(max_examples=300)
def test_caps_are_never_exceeded(totals: dict[str, KindTotal]) -> None:
    s = score(totals, CFG)
    for line in s.lines:
        assert abs(line.points) <= abs(line.raw)
        if line.cap is not None:
            assert abs(line.points) <= line.cap
            assert line.points == line.raw or abs(line.points) == line.cap
        else:
            assert line.points == line.raw
    assert s.score == D(str(CFG.base)) + sum((x.points for x in s.lines), D(0))


@given(st.lists(st.decimals(-200, 200, places=2, allow_nan=False), min_size=1, max_size=40))
@settings(max_examples=300)
def test_grades_are_monotone_in_the_score(values: list[Decimal]) -> None:
    """Whatever the grading, a higher score never gets a worse grade (A best)."""
    scores = dict(enumerate(values))
    for cfg in (CFG, RANKED):
        grades = grade_all(scores, cfg)
        for i, a in scores.items():
            for j, b in scores.items():
                if a > b:
                    assert GRADES.index(grades[i]) <= GRADES.index(grades[j]), (cfg.grading, a, b)
                if a == b:
                    assert grades[i] == grades[j]


@given(
    st.lists(st.decimals(0, 120, places=1, allow_nan=False), min_size=1, max_size=30),
    st.integers(0, 5),
    st.integers(0, 5),
)
def test_rank_grading_gives_the_best_a_and_the_worst_d(
    values: list[Decimal], top: int, bottom: int
) -> None:
    cfg = msgspec.structs.replace(RANKED, rank_top=top, rank_bottom=bottom)
    scores = dict(enumerate(values))
    grades = grade_by_rank(scores, cfg)
    rank = ranks(scores)
    for key, value in scores.items():
        better = sum(1 for v in values if v > value)
        if better < top:
            assert grades[key] == "A"
        elif grades[key] == "A":
            raise AssertionError("an A outside the top")
        if grades[key] == "D":
            assert sum(1 for v in values if v < value) < bottom
        assert rank[key] == better + 1
    # distinct scores: exactly min(top, n) A's
    if len(set(values)) == len(values):
        assert sum(1 for g in grades.values() if g == "A") == min(top, len(values))


def test_rank_grading_by_example() -> None:
    scores = {"a": D(99), "b": D(98), "c": D(80), "d": D(70), "e": D(65), "f": D(40)}
    assert grade_by_rank(scores, RANKED) == {
        "a": "A",
        "b": "A",
        "c": "B",  # ≥ grade_b
        "d": "C",
        "e": "D",
        "f": "D",
    }
    assert ranks({"x": D(5), "y": D(7), "z": D(7)}) == {"x": 3, "y": 1, "z": 1}
    # a city of one company: it is the best (A), not also the worst
    assert grade_by_rank({"only": D(10)}, RANKED) == {"only": "A"}


@pytest.mark.parametrize(
    ("as_of", "first"),
    [
        (dt.date(2025, 6, 15), dt.date(2024, 6, 16)),
        (dt.date(2025, 3, 31), dt.date(2024, 4, 1)),
        (dt.date(2024, 2, 29), dt.date(2023, 3, 1)),
        (dt.date(2025, 1, 1), dt.date(2024, 1, 2)),
    ],
)
def test_the_window_is_the_last_twelve_months(as_of: dt.date, first: dt.date) -> None:
    assert window_start(as_of, CFG) == first


@given(st.dates(dt.date(2001, 1, 1), dt.date(2099, 12, 31)), st.integers(1, 60))
def test_the_window_spans_its_months(as_of: dt.date, months: int) -> None:
    cfg = msgspec.structs.replace(CFG, window_months=months)
    first = window_start(as_of, cfg)
    assert first <= as_of
    span = (as_of - first).days + 1
    assert months * 28 <= span <= months * 31 + 1


def test_snapshot_days() -> None:
    cfg = msgspec.structs.replace(CFG, history_months=3)
    assert snapshot_days(dt.date(2025, 1, 20), cfg) == [
        (dt.date(2024, 11, 1), dt.date(2024, 11, 30)),
        (dt.date(2024, 12, 1), dt.date(2024, 12, 31)),
        (dt.date(2025, 1, 1), dt.date(2025, 1, 20)),
    ]
    assert len(snapshot_days(dt.date(2025, 1, 20), CFG)) == CFG.history_months


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[credit.points]\noverfill = -1\n", "credit.points"),
        ("[credit.caps]\nspeeding = 3\n", "credit.caps: unknown kind speeding"),
        ("[credit]\ngrade_c = 80\n", "credit.grade_c: 80.0 is above grade_b"),
        ("[credit]\ngrading = 'curve'\n", "credit.grading: must be one of thresholds, rank"),
    ],
)
def test_bad_credit_settings_are_refused(tmp_path: object, toml: str, message: str) -> None:
    from pathlib import Path

    f = Path(str(tmp_path)) / "city.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(f, environ={})


def test_every_derived_kind_needs_its_points() -> None:
    """An override file merges into the defaults, so only a changed default can drop a kind."""
    from server.kernel.settings.work import Credit

    raw = msgspec.to_builtins(CFG)
    raw["points"].pop("overstock_day")
    with pytest.raises(msgspec.ValidationError, match="points: no points for overstock_day"):
        msgspec.convert(raw, Credit)
