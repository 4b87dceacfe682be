"""The audit page names every action and target type it suggests, in both languages
(dashboard/pages/audit.py: a suggestion without a string would show its key)."""

from __future__ import annotations

import pytest

from dashboard.i18n import strings
from dashboard.pages.audit import ACTIONS, ENTITIES

pytestmark = pytest.mark.no_services


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_suggested_action_and_target_type_has_a_label(lang: str) -> None:
    table = strings(lang)
    missing = [f"audit.action.{a}" for a in ACTIONS if f"audit.action.{a}" not in table]
    missing += [f"audit.entity.{e}" for e in ENTITIES if f"audit.entity.{e}" not in table]
    assert not missing


def test_suggestions_are_well_formed_filters() -> None:
    from server.api.audit_log import ACTION_RE, ENTITY_RE

    assert all(ACTION_RE.match(a) for a in ACTIONS)
    assert all(ENTITY_RE.match(e) for e in ENTITIES)
    assert len(set(ACTIONS)) == len(ACTIONS) and len(set(ENTITIES)) == len(ENTITIES)


def test_every_action_the_code_writes_is_suggested() -> None:
    """An action passed to ``audit()`` as a literal anywhere in the product is in ACTIONS
    (with its label, above): a new write does not leave the audit page's list behind."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    written: set[str] = set()
    for package in ("server", "realtime", "big_screen", "dashboard", "ingest"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or len(node.args) < 3:
                    continue
                func = node.func
                name = getattr(func, "id", None) or getattr(func, "attr", None)
                action = node.args[2]
                if name == "audit" and isinstance(action, ast.Constant):
                    written.add(str(action.value))
    assert written, "no audit() call found: the scan is broken"
    assert sorted(written - set(ACTIONS)) == []
