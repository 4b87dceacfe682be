"""The complaints' rules (server.domain.complaints): moves, who makes them, working days,
tickets, the phone number in a contact, the SMS excerpt."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from server.domain.complaints import (
    ACTIONS,
    TICKET_ALPHABET,
    TICKET_LENGTH,
    Assignment,
    TransitionRefused,
    add_working_days,
    answer_deadline,
    contact_phone,
    format_ticket,
    is_overdue,
    may_act,
    next_state,
    normalize_ticket,
    sms_excerpt,
)
from server.domain.statuses import COMPLAINT_STATES
from server.kernel.settings import load_settings

MIGRATION = Path(__file__).resolve().parents[2] / "server/db/migrations/0140_complaints.sql"

ALLOWED = {
    ("new", "assign", False): "assigned",
    ("assigned", "assign", False): "assigned",
    ("assigned", "answer", False): "answered",
    ("answered", "close", False): "closed",
    ("answered", "close", True): "closed",
    ("new", "close", True): "closed",
    ("assigned", "close", True): "closed",
}


@pytest.mark.parametrize("state", COMPLAINT_STATES)
@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("with_answer", [False, True])
def test_every_move_of_every_state(state: str, action: str, with_answer: bool) -> None:
    expected = ALLOWED.get((state, action, with_answer))
    if expected is None and action != "close":
        expected = ALLOWED.get((state, action, not with_answer))  # only close reads it
    if expected is None:
        with pytest.raises(TransitionRefused) as refused:
            next_state(state, action, with_answer=with_answer)
        assert refused.value.state == state and refused.value.action == action
        assert str(refused.value).startswith("state: ")
    else:
        assert next_state(state, action, with_answer=with_answer) == expected


def test_unknown_states_and_actions_are_errors_not_refusals() -> None:
    with pytest.raises(ValueError, match="state"):
        next_state("handled", "assign")
    with pytest.raises(ValueError, match="action"):
        next_state("new", "reopen")


def test_who_may_act() -> None:
    to_company = Assignment(company_id=7)
    to_officer = Assignment(user_id=42)
    for role in ("admin", "regulator"):
        assert may_act("assign", role, user_id=1, company_id=None, assigned=to_company)
        assert may_act("close", role, user_id=1, company_id=None, assigned=to_company)
    for role in ("officer", "company_admin", "station_operator", "inspector"):
        assert not may_act("assign", role, user_id=42, company_id=7, assigned=to_company)
        assert not may_act("close", role, user_id=42, company_id=7, assigned=to_company)
    assert may_act("answer", "company_admin", user_id=9, company_id=7, assigned=to_company)
    assert not may_act("answer", "company_admin", user_id=9, company_id=8, assigned=to_company)
    assert not may_act("answer", "company_admin", user_id=9, company_id=7, assigned=to_officer)
    assert may_act("answer", "officer", user_id=42, company_id=None, assigned=to_officer)
    assert not may_act("answer", "officer", user_id=43, company_id=None, assigned=to_officer)
    assert not may_act("answer", "regulator", user_id=1, company_id=None, assigned=to_company)
    assert may_act("answer", "admin", user_id=1, company_id=None, assigned=Assignment())
    assert not may_act("answer", "station_operator", user_id=42, company_id=7, assigned=to_officer)


@pytest.mark.parametrize(
    ("start", "days", "expected"),
    [
        ("2026-03-02", 5, "2026-03-09"),  # Monday → next Monday
        ("2026-03-06", 1, "2026-03-09"),  # Friday → Monday
        ("2026-03-07", 5, "2026-03-13"),  # Saturday → Friday
        ("2026-03-08", 1, "2026-03-09"),  # Sunday → Monday
        ("2026-03-04", 0, "2026-03-04"),
        ("2026-03-04", 10, "2026-03-18"),
    ],
)
def test_working_days(start: str, days: int, expected: str) -> None:
    got = add_working_days(dt.date.fromisoformat(start), days)
    assert got == dt.date.fromisoformat(expected) and (days == 0 or got.weekday() < 5)


def test_the_deadline_counts_from_the_city_day() -> None:
    s = load_settings(environ={})
    # 2026-03-06 Friday 17:00 UTC is Saturday 01:00 in Asia/Shanghai: counted from Saturday
    filed = dt.datetime(2026, 3, 6, 17, 0, tzinfo=dt.UTC)
    assert s.alerts.timezone == "Asia/Shanghai" and s.complaints.answer_working_days == 5
    assert answer_deadline(filed, s.complaints, s.alerts) == dt.date(2026, 3, 13)
    with pytest.raises(ValueError):
        answer_deadline(dt.datetime(2026, 3, 6, 17, 0), s.complaints, s.alerts)


def test_overdue_only_while_the_answer_is_due() -> None:
    day = dt.date(2026, 3, 10)
    assert is_overdue("new", dt.date(2026, 3, 9), day)
    assert is_overdue("assigned", dt.date(2026, 3, 9), day)
    assert not is_overdue("assigned", dt.date(2026, 3, 10), day)  # the deadline day itself
    assert not is_overdue("answered", dt.date(2026, 3, 1), day)
    assert not is_overdue("new", None, day)


def test_tickets() -> None:
    assert len(TICKET_ALPHABET) == len(set(TICKET_ALPHABET)) == 32
    assert not set("01IO") & set(TICKET_ALPHABET)
    assert TICKET_LENGTH == 12
    assert normalize_ticket("abcd-efgh-jk23") == "ABCDEFGHJK23"
    assert normalize_ticket(" ABCD EFGH JK23 ") == "ABCDEFGHJK23"
    assert normalize_ticket("ABCD-EFGH-JK2") is None  # 11
    assert normalize_ticket("ABCD-EFGH-JK230") is None  # 13
    assert normalize_ticket("ABCD-EFGH-JK2O") is None  # O is not in the alphabet
    assert normalize_ticket("") is None
    assert format_ticket("ABCDEFGHJK23") == "ABCD-EFGH-JK23"
    # the database generates from the same alphabet (migration 0140)
    assert f"'{TICKET_ALPHABET}'" in MIGRATION.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("contact", "phone"),
    [
        ("13800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("(0371) 6555 1234", "037165551234"),
        ("张先生 13800138000", "13800138000"),
        ("王女士，电话+86 139-0000-1111，晚上联系", "13900001111"),
        ("wang@example.org", None),
        ("匿名", None),
        ("", None),
        (None, None),
        ("1234", None),
        ("订单 1380013800012345", None),
    ],
)
def test_the_phone_number_in_a_contact(contact: str | None, phone: str | None) -> None:
    assert contact_phone(contact) == phone


def test_sms_excerpt() -> None:
    assert sms_excerpt("已处理", 60) == "已处理"
    assert sms_excerpt("a\n  b", 60) == "a b"
    cut = sms_excerpt("很" * 100, 60)
    assert len(cut) == 60 and cut.endswith("…")
