"""The inspection list's rule (server.domain.site_risk): a site's score is the weighted sum of
its factors' counts, each within its cap; the list is the sites above 0, highest first, ties
by code; each site's reasons are its factors with facts, heaviest first, in words."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import get_args

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.site_risk import (
    FACTORS,
    cap,
    list_size,
    points,
    rank,
    reasons,
    score,
    score_terms,
    sentence,
    window_first_day,
)
from server.kernel.settings import Risk, load_settings
from server.kernel.settings.work import RiskFactor

CFG = load_settings(environ={}).risk


def cfg(**over: object) -> Risk:
    raw = msgspec.structs.asdict(CFG)
    raw.update(over)
    return msgspec.convert(raw, Risk)


def test_factors_are_the_settings_words() -> None:
    assert set(FACTORS) == set(get_args(RiskFactor))
    assert set(CFG.weights) == set(FACTORS)


def test_a_missing_weight_is_refused() -> None:
    weights = dict(CFG.weights)
    del weights["complaint"]
    with pytest.raises(ValueError, match="complaint"):
        cfg(weights=weights)


def test_score_is_the_weighted_sum_within_caps() -> None:
    c = cfg(
        weights=dict.fromkeys(FACTORS, 1.0) | {"overstock_day": 4.0, "complaint": 5.0},
        caps={"denied_attempt": 30},
    )
    counts = {"denied_attempt": 45, "overstock_day": 3, "complaint": 2}
    # 30 (capped) + 3 × 4 + 2 × 5
    assert score(counts, c) == Decimal(52)
    assert points("denied_attempt", 45, c) == Decimal(30)
    assert cap("denied_attempt", c) == 30
    assert cap("complaint", c) is None


def test_decimal_weights_add_exactly() -> None:
    c = cfg(weights=dict.fromkeys(FACTORS, 0.1), caps={})
    assert score(dict.fromkeys(FACTORS, 1), c) == Decimal("0.6")


def test_a_site_with_no_facts_scores_zero_and_is_not_listed() -> None:
    assert score({}, CFG) == 0
    assert rank([(1, "S1", {})], CFG) == []


def test_a_zero_weight_factor_is_a_reason_but_adds_nothing() -> None:
    c = cfg(weights=dict(CFG.weights) | {"open_alert": 0.0})
    counts = {"open_alert": 3}
    assert score(counts, c) == 0
    (r,) = reasons(counts, c)
    assert r.factor == "open_alert" and r.count == 3 and r.points == 0


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        points("overfill", -1, CFG)


def test_reasons_heaviest_first_with_words_in_both_languages() -> None:
    counts = {"denied_attempt": 2, "overstock_day": 5, "complaint": 1}
    rs = reasons(counts, CFG)
    assert [r.factor for r in rs] == ["overstock_day", "complaint", "denied_attempt"]
    by = {r.factor: r for r in rs}
    assert (
        by["overstock_day"].text_en
        == "over its permitted full-cylinder storage on 5 days of the last 30"
    )
    assert by["overstock_day"].text == "近30天中有5天重瓶超量存放"
    assert by["complaint"].text_en.startswith("1 complaint about")
    assert by["denied_attempt"].text_en.startswith("2 fill attempts refused")


def test_a_capped_reason_says_what_the_score_counted() -> None:
    (r,) = reasons({"denied_attempt": 45}, CFG)
    assert (r.count, r.counted) == (45, 30)
    assert r.text_en.endswith("(the score counts 30)")
    assert "45" in r.text and "30" in r.text


@pytest.mark.parametrize("factor", FACTORS)
def test_every_factor_has_a_sentence(factor: str) -> None:
    one, many = sentence(factor, 1, 30, "en"), sentence(factor, 7, 30, "en")
    assert "1" in one and "7" in many and one != many
    assert "7" in sentence(factor, 7, 30, "zh-CN")
    assert sentence(factor, 7, 30, "fr") == many


def test_the_list_highest_first_ties_by_code() -> None:
    sites = [
        (1, "S-B", {"complaint": 1}),  # 5
        (2, "S-A", {"complaint": 1}),  # 5
        (3, "S-C", {"overstock_day": 2}),  # 8
        (4, "S-D", {}),  # 0
    ]
    assert [s.key for s in rank(sites, CFG)] == [3, 2, 1]


def test_window_counts_today() -> None:
    day = dt.date(2025, 3, 1)
    assert window_first_day(day, cfg(window_days=1)) == day
    assert window_first_day(day, cfg(window_days=30)) == dt.date(2025, 1, 31)


def test_list_size() -> None:
    assert list_size(None, CFG) == CFG.list_default
    assert list_size(CFG.list_max, CFG) == CFG.list_max
    for bad in (0, CFG.list_max + 1):
        with pytest.raises(ValueError):
            list_size(bad, CFG)


def test_score_terms_are_what_score_adds() -> None:
    counts = dict(zip(FACTORS, range(5, 5 + len(FACTORS)), strict=True))
    total = sum(
        (
            w * (n if c is None else min(n, c))
            for (f, w, c), n in zip(score_terms(CFG), (counts[f] for f in FACTORS), strict=True)
        ),
        Decimal(0),
    )
    assert total == score(counts, CFG)


counts_st = st.fixed_dictionaries({f: st.integers(0, 200) for f in FACTORS})


@given(counts_st, counts_st)
def test_more_of_any_factor_never_ranks_lower(a: dict[str, int], b: dict[str, int]) -> None:
    """Monotone: a site with at least as many facts of every factor scores at least as high."""
    more = {f: max(a[f], b[f]) for f in FACTORS}
    assert score(more, CFG) >= score(a, CFG)
    assert score(more, CFG) >= score(b, CFG)


@given(st.lists(counts_st, min_size=1, max_size=12))
def test_the_list_is_sorted_and_explained(sites: list[dict[str, int]]) -> None:
    ranked = rank([(i, f"S{i:03d}", c) for i, c in enumerate(sites)], CFG)
    scores = [s.score for s in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(s > 0 for s in scores)
    for s in ranked:
        assert sum((r.points for r in s.reasons), Decimal(0)) == s.score
        assert {r.factor for r in s.reasons} == {f for f, n in sites[s.key].items() if n > 0}


def test_the_page_and_the_phone_are_for_the_list_readers() -> None:
    """The nav entry of /inspection-list and the phone's tab follow READ_ROLES (the API's)."""
    from dashboard.render import NAV
    from server.api.site_risk import ROLES
    from server.domain.site_risk import READ_ROLES

    (item,) = [n for n in NAV if n.key == "inspection_list"]
    assert set(item.roles) == set(READ_ROLES) == set(ROLES)
    assert item.group == "work"
