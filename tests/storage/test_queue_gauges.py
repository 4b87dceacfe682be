"""The queue gauges of ``/metrics`` (server/db/queue_gauges.py): a queued SMS shows in the
depth and the age of the oldest, and the scrape shows the figures of the last read."""

from __future__ import annotations

from typing import Any

import asyncpg

from server.db.queue_gauges import QueueGauges


async def test_a_waiting_sms_shows_in_depth_and_age(pool: asyncpg.Pool) -> None:
    gauges = QueueGauges()
    assert "cylwatch_queue_gauges_age_seconds NaN" in gauges.render()  # never read yet
    await gauges.refresh(pool)
    before = gauges.depth["sms"]
    row_id = await pool.fetchval(
        """INSERT INTO sms_outbox (idem_key, phone, kind, body, created_at)
           VALUES ('gauge-test', '13600000000', 'notice', 'x', now() - interval '1 hour')
           RETURNING id"""
    )
    try:
        await gauges.refresh(pool)
        assert gauges.depth["sms"] == before + 1
        age = gauges.oldest_s["sms"]
        assert age is not None and age >= 3600
        text = gauges.render()
        assert f'cylwatch_queue_depth{{queue="sms"}} {before + 1}' in text
        assert "# TYPE cylwatch_queue_oldest_age_seconds gauge" in text
        assert "cylwatch_queue_gauges_age_seconds 0" in text
    finally:
        await pool.execute("DELETE FROM sms_outbox WHERE id = $1", row_id)
    await gauges.refresh(pool)
    assert gauges.depth["sms"] == before


async def test_the_scrape_carries_the_gauges_and_the_scheduler(client: Any) -> None:
    text = await (await client.get("/metrics")).text()
    for line in (
        "# TYPE cylwatch_queue_depth gauge",
        'cylwatch_queue_depth{queue="upstream_outbox"}',
        'cylwatch_report_runs{state="failed"}',
        "# TYPE cylwatch_report_scheduler_runs_done_total counter",
        "# TYPE cylwatch_http_requests_total counter",
    ):
        assert line in text, line


def test_scheduler_counters_count_a_round() -> None:
    from server.api.report_scheduler import Round, SchedulerCounters

    counters = SchedulerCounters()
    assert "cylwatch_report_scheduler_last_round_timestamp_seconds NaN" in counters.render()
    counters.count(Round(done=[1, 2], failed=[3]))
    counters.count(Round())
    text = counters.render()
    assert "cylwatch_report_scheduler_rounds_total 2" in text
    assert "cylwatch_report_scheduler_claims_total 3" in text
    assert "cylwatch_report_scheduler_runs_done_total 2" in text
    assert "cylwatch_report_scheduler_runs_failed_total 1" in text
