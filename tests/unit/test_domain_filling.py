"""Fill mass, repeat fills and fill checks (DOMAIN.md "Models", "Filling checks")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from server.domain import FillAssessment, assess_fill, checks_failed, is_repeat_fill, max_fill_kg
from server.kernel.settings import CylinderModel, load_settings

SETTINGS = load_settings(environ={})
MODELS = SETTINGS.models
RULES = SETTINGS.filling
NOW = datetime(2025, 6, 15, 10, 0, tzinfo=UTC)
H = timedelta(hours=1)
CST = timezone(timedelta(hours=8))


def test_default_rules_are_domain_md() -> None:
    assert RULES.overfill_tolerance_kg == 0.0
    assert RULES.underfill_tolerance_kg == 0.5
    assert RULES.repeat_fill_window_h == 24


# ------------------------------------------------------------------ models


@pytest.mark.parametrize(
    ("spec", "kg"),
    [
        ("YSP4.7", 2.0),
        ("YSP12", 5.0),
        ("YSP26.2", 11.0),
        ("YSP35.5", 14.9),
        ("YSP118", 49.5),
        ("YSP118-II", 49.5),
    ],
)
def test_max_fill_kg_domain_table(spec: str, kg: float) -> None:
    assert max_fill_kg(spec, MODELS) == kg


def test_max_fill_kg_unknown_and_normalised() -> None:
    assert max_fill_kg("YSP50", MODELS) is None
    assert max_fill_kg("", MODELS) is None
    assert max_fill_kg(" ysp35.5 ", MODELS) == 14.9
    assert max_fill_kg("ysp118-ii", MODELS) == 49.5


# ------------------------------------------------------------------ assess_fill


def test_fill_at_exactly_max_is_not_overfill() -> None:
    assert assess_fill("YSP35.5", 14.9, MODELS, RULES) is FillAssessment.OK


def test_overfill_just_above_max() -> None:
    assert assess_fill("YSP35.5", 14.91, MODELS, RULES) is FillAssessment.OVERFILL
    assert assess_fill("YSP35.5", 14.901, MODELS, RULES) is FillAssessment.OVERFILL
    assert assess_fill("YSP35.5", 20.0, MODELS, RULES) is FillAssessment.OVERFILL


def test_fill_at_exactly_max_minus_tolerance_is_not_underfill() -> None:
    assert assess_fill("YSP35.5", 14.4, MODELS, RULES) is FillAssessment.OK


def test_underfill_just_below() -> None:
    assert assess_fill("YSP35.5", 14.39, MODELS, RULES) is FillAssessment.UNDERFILL
    assert assess_fill("YSP35.5", 0.0, MODELS, RULES) is FillAssessment.UNDERFILL
    assert assess_fill("YSP35.5", -1.0, MODELS, RULES) is FillAssessment.UNDERFILL


@pytest.mark.parametrize("model", list(MODELS.values()), ids=lambda m: m.spec)
def test_every_model_at_its_edges(model: CylinderModel) -> None:
    top = model.max_fill_kg + RULES.overfill_tolerance_kg
    bottom = model.max_fill_kg - RULES.underfill_tolerance_kg
    assert assess_fill(model.spec, top, MODELS, RULES) is FillAssessment.OK
    assert assess_fill(model.spec, bottom, MODELS, RULES) is FillAssessment.OK
    assert assess_fill(model.spec, round(top + 0.01, 2), MODELS, RULES) is FillAssessment.OVERFILL
    assert (
        assess_fill(model.spec, round(bottom - 0.01, 2), MODELS, RULES) is FillAssessment.UNDERFILL
    )


def test_unknown_model() -> None:
    assert assess_fill("YSP50", 14.9, MODELS, RULES) is FillAssessment.UNKNOWN_MODEL
    assert assess_fill("YSP35.5", 14.9, {}, RULES) is FillAssessment.UNKNOWN_MODEL


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_mass_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        assess_fill("YSP35.5", bad, MODELS, RULES)


def test_assessment_values() -> None:
    assert [a.value for a in FillAssessment] == ["ok", "overfill", "underfill", "unknown_model"]


def test_changed_overfill_tolerance_changes_assessment() -> None:
    # 14.9 + 0.1 is 15.000000000000002 in binary floats; the edge must still be exact
    loose = msgspec.structs.replace(RULES, overfill_tolerance_kg=0.1)
    assert assess_fill("YSP35.5", 15.0, MODELS, RULES) is FillAssessment.OVERFILL
    assert assess_fill("YSP35.5", 15.0, MODELS, loose) is FillAssessment.OK
    assert assess_fill("YSP35.5", 15.01, MODELS, loose) is FillAssessment.OVERFILL


def test_changed_underfill_tolerance_changes_assessment() -> None:
    loose = msgspec.structs.replace(RULES, underfill_tolerance_kg=1.0)
    assert assess_fill("YSP35.5", 14.0, MODELS, RULES) is FillAssessment.UNDERFILL
    assert assess_fill("YSP35.5", 13.9, MODELS, loose) is FillAssessment.OK
    assert assess_fill("YSP35.5", 13.89, MODELS, loose) is FillAssessment.UNDERFILL
    tight = msgspec.structs.replace(RULES, underfill_tolerance_kg=0.1)
    assert assess_fill("YSP35.5", 14.8, MODELS, tight) is FillAssessment.OK
    assert assess_fill("YSP35.5", 14.79, MODELS, tight) is FillAssessment.UNDERFILL


def test_changed_model_table_changes_assessment() -> None:
    models = dict(MODELS)
    models["YSP35.5"] = msgspec.structs.replace(MODELS["YSP35.5"], max_fill_kg=15.0)
    assert assess_fill("YSP35.5", 14.95, MODELS, RULES) is FillAssessment.OVERFILL
    assert assess_fill("YSP35.5", 14.95, models, RULES) is FillAssessment.OK
    assert max_fill_kg("YSP35.5", models) == 15.0


@hsettings(database=None, deadline=None)
@given(st.sampled_from(list(MODELS)), st.floats(0, 100, allow_nan=False))
def test_assessment_is_monotonic(spec: str, net: float) -> None:
    result = assess_fill(spec, net, MODELS, RULES)
    limit = MODELS[spec].max_fill_kg
    if result is FillAssessment.OVERFILL:
        assert net > limit
    if result is FillAssessment.UNDERFILL:
        assert net < limit
    assert result is not FillAssessment.UNKNOWN_MODEL


# ------------------------------------------------------------------ repeat fill


def test_no_previous_fill() -> None:
    assert not is_repeat_fill(None, None, NOW, RULES)
    assert not is_repeat_fill(None, NOW - H, NOW, RULES)


def test_repeat_without_return() -> None:
    assert is_repeat_fill(NOW - H, None, NOW, RULES)
    assert is_repeat_fill(NOW - timedelta(minutes=1), None, NOW, RULES)


def test_same_instant_is_repeat() -> None:
    assert is_repeat_fill(NOW, None, NOW, RULES)


def test_window_edge() -> None:
    window = timedelta(hours=RULES.repeat_fill_window_h)
    assert is_repeat_fill(NOW - window, None, NOW, RULES)  # exactly 24 h: still within
    assert not is_repeat_fill(NOW - window - timedelta(microseconds=1), None, NOW, RULES)
    assert not is_repeat_fill(NOW - window - timedelta(seconds=1), None, NOW, RULES)
    assert is_repeat_fill(NOW - window + timedelta(seconds=1), None, NOW, RULES)


def test_return_between_clears_repeat() -> None:
    previous = NOW - 5 * H
    assert not is_repeat_fill(previous, previous + H, NOW, RULES)
    assert not is_repeat_fill(previous, previous + timedelta(microseconds=1), NOW, RULES)
    assert not is_repeat_fill(previous, NOW, NOW, RULES)  # returned the moment it is filled


def test_return_not_between_does_not_clear() -> None:
    previous = NOW - 5 * H
    assert is_repeat_fill(previous, previous - H, NOW, RULES)  # returned before the last fill
    assert is_repeat_fill(previous, previous, NOW, RULES)  # not strictly after the fill
    assert is_repeat_fill(previous, NOW + H, NOW, RULES)  # a return after this fill


def test_previous_fill_after_now_is_not_a_repeat() -> None:
    # late (buffered) data arriving out of order: judged when the later fill is
    assert not is_repeat_fill(NOW + H, None, NOW, RULES)


def test_mixed_zones_compare_as_instants() -> None:
    previous_cst = (NOW - 23 * H).astimezone(CST)
    assert is_repeat_fill(previous_cst, None, NOW, RULES)
    assert not is_repeat_fill((NOW - 25 * H).astimezone(CST), None, NOW, RULES)
    # a return in another zone, strictly between
    assert not is_repeat_fill(NOW - 5 * H, (NOW - 4 * H).astimezone(CST), NOW, RULES)


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2025, 6, 15, 10, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_repeat_fill(NOW - H, None, naive, RULES)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_repeat_fill(naive, None, NOW, RULES)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_repeat_fill(NOW - H, naive, NOW, RULES)


def test_changed_window_changes_repeat() -> None:
    previous = NOW - 30 * H
    assert not is_repeat_fill(previous, None, NOW, RULES)
    wider = msgspec.structs.replace(RULES, repeat_fill_window_h=48)
    assert is_repeat_fill(previous, None, NOW, wider)
    narrow = msgspec.structs.replace(RULES, repeat_fill_window_h=1)
    assert not is_repeat_fill(NOW - 2 * H, None, NOW, narrow)


# ------------------------------------------------------------------ checks


def test_no_checks_recorded() -> None:
    assert checks_failed(None, None) == ()
    assert checks_failed({}, {}) == ()


def test_all_pass() -> None:
    pre = {"markings": True, "residual_pressure": True, "valve": True}
    post = {"leak": True, "seal": True, "label": True}
    assert checks_failed(pre, post) == ()


def test_failed_items_prefixed_pre_then_post_sorted() -> None:
    pre = {"valve": False, "markings": True, "damage": False}
    post = {"seal": False, "leak": False, "label": True}
    assert checks_failed(pre, post) == ("pre:damage", "pre:valve", "post:leak", "post:seal")
    assert checks_failed(pre, None) == ("pre:damage", "pre:valve")
    assert checks_failed(None, post) == ("post:leak", "post:seal")


def test_same_failures_any_order_same_answer() -> None:
    a = checks_failed({"b": False, "a": False}, None)
    b = checks_failed({"a": False, "b": False}, None)
    assert a == b == ("pre:a", "pre:b")


def test_non_true_values_fail_closed() -> None:
    weird: dict[str, object] = {"null": None, "zero": 0, "text": "yes", "one": 1, "ok": True}
    assert checks_failed(weird, None) == (  # type: ignore[arg-type]
        "pre:null",
        "pre:one",
        "pre:text",
        "pre:zero",
    )
