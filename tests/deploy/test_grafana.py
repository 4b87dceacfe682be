"""The Grafana dashboard (deploy/grafana/cylwatch.json, docs/DEPLOY.md "What to monitor") plots
only metrics the code exposes: a renamed or removed metric fails here, not on an operator's
empty panel. The names are those of a real ``/metrics`` scrape of the test app, plus the
sources a test app does not run — an ingest worker's (``ingest.metrics``) and the outbound
senders' (``server.outbound``), which run only when ``[sms]`` / ``[upstream]`` are enabled."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "cylwatch.json"
_TYPE = re.compile(r"^# TYPE (\S+) (\w+)$", re.M)
_NAME = re.compile(r"\bcylwatch_[a-z0-9_]+\b")
ROWS = {
    "Ingest",
    "Fill authorization",
    "Websocket",
    "Queues",
    "Scheduled reports",
    "Read replica",
    "HTTP",
}


def exposed_names(text: str) -> set[str]:
    """Every series name a Prometheus text exposes (a summary's ``_count``/``_sum`` too)."""
    names = set()
    for name, kind in _TYPE.findall(text):
        names.add(name)
        if kind in ("summary", "histogram"):
            names |= {f"{name}_count", f"{name}_sum"}
    return names


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def unknown_names(exprs: list[str], names: set[str]) -> list[str]:
    return sorted({n for e in exprs for n in _NAME.findall(e)} - names)


def _offline_sources() -> str:
    from ingest.metrics import Metrics, render_prometheus
    from server.outbound.sms_sender import sms_counters
    from server.outbound.upstream import upstream_counters

    return (
        render_prometheus([Metrics("probe")])
        + sms_counters().render()
        + upstream_counters().render()
    )


def test_the_dashboard_is_importable() -> None:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    assert {p["title"] for p in board["panels"] if p["type"] == "row"} == ROWS
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["targets"], panel["title"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))


async def test_every_metric_on_the_dashboard_is_exposed(client: Any) -> None:
    r = await client.get("/metrics")  # the test client is on loopback
    assert r.status == 200
    names = exposed_names(await r.text() + _offline_sources())
    for area in ("cylwatch_queue_depth", "cylwatch_report_scheduler_runs_done_total"):
        assert area in names  # the scrape itself carries the new areas
    assert "cylwatch_http_requests_total" in names
    exprs = dashboard_exprs()
    assert len(exprs) > 20
    assert unknown_names(exprs, names) == []


@pytest.mark.parametrize("renamed", ["cylwatch_ingest_stored_totals", "cylwatch_queue_depths"])
def test_a_renamed_metric_would_fail(renamed: str) -> None:
    names = exposed_names(_offline_sources()) | {"cylwatch_queue_depth"}
    assert unknown_names([f"rate({renamed}[5m])"], names) == [renamed]
    assert unknown_names(["sum(cylwatch_ingest_stored_total)"], names) == []
