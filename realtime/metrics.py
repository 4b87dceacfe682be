"""The live path's counters on ``/metrics`` (Prometheus text), so that no loss is only a log line.

Every place a live row can be lost between a process's bus and a websocket client counts it
(docs/WEBSOCKET.md "Slow clients" and "Resync"): the Redis bridge's publisher (events not
sent: queue full or Redis unreachable, the must-deliver ones apart), its subscriber
(subscriptions lost, events of other processes that never arrived, resyncs asked), and the
websocket queues (frames superseded, thrown away with a client closed as too slow or ended,
1013 closes). A separate ingest process shows the publisher's part on its own ``/metrics``
(`publisher_lines`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from realtime.bridge import RedisBridge, RedisPublisher
    from realtime.hub import Hub

_P = "cylwatch_realtime_"


def _metric(name: str, help_: str, value: float, labels: str = "") -> list[str]:
    kind = "counter" if name.endswith("_total") else "gauge"
    return [
        f"# HELP {_P}{name} {help_}",
        f"# TYPE {_P}{name} {kind}",
        f"{_P}{name}{labels} {value}",
    ]


def _labelled(name: str, help_: str, kind: str, values: dict[str, float], label: str) -> list[str]:
    lines = [f"# HELP {_P}{name} {help_}", f"# TYPE {_P}{name} {kind}"]
    lines += [f'{_P}{name}{{{label}="{k}"}} {v}' for k, v in values.items()]
    return lines


def publisher_lines(publisher: RedisPublisher) -> str:
    """The publisher's figures: what this process sent to Redis and what it could not."""
    lines = _metric(
        "bridge_published_total", "Live events this process sent to Redis.", publisher.published
    )
    lines += _labelled(
        "bridge_publish_dropped_total",
        "Live events this process never sent to Redis (queue full or Redis unreachable),"
        " by whether a newer event supersedes them.",
        "counter",
        {
            "droppable": publisher.dropped - publisher.dropped_must,
            "must_deliver": publisher.dropped_must,
        },
        "kind",
    )
    lines += _metric(
        "bridge_publish_queue", "Live events waiting to be sent to Redis.", publisher.queued
    )
    return "\n".join(lines) + "\n"


def render(hub: Hub, bridge: RedisBridge) -> str:
    """Everything of a server process: its publisher, its subscriber, its websockets."""
    lines = [
        *_metric(
            "bridge_received_total", "Messages this process read from Redis.", bridge.received
        ),
        *_metric(
            "bridge_delivered_total",
            "Events of other processes put on this process's bus.",
            bridge.delivered,
        ),
        *_metric("bridge_bad_messages_total", "Malformed messages ignored.", bridge.bad_messages),
        *_metric(
            "bridge_disconnects_total",
            "Times this process's Redis subscription was lost (events meanwhile are lost).",
            bridge.disconnects,
        ),
        *_metric(
            "bridge_gap_events_total",
            "Events of other processes that never arrived (gaps in their sequence numbers).",
            bridge.gaps,
        ),
        *_metric(
            "resync_rounds_total",
            "Resync rounds: a notice and a fresh snapshot for every subscription of a group.",
            hub.resyncs.rounds,
        ),
        *_metric(
            "resync_notices_total", "Resync notices sent to subscriptions.", hub.resyncs.notices
        ),
        *_metric(
            "resync_failed_total",
            "Resync rounds whose snapshot could not be read (the notice was sent).",
            hub.resyncs.failed,
        ),
        *_labelled(
            "ws_dropped_frames_total",
            "Websocket frames not delivered, by reason (docs/WEBSOCKET.md 'Slow clients').",
            "counter",
            {
                "superseded": hub.drops.superseded,
                "slow_client": hub.drops.slow_client,
                "ended": hub.drops.ended,
            },
            "reason",
        ),
        *_metric(
            "ws_slow_closes_total", "Clients closed with 1013 (too slow).", hub.drops.slow_closes
        ),
        *_metric("ws_frames_sent_total", "Websocket frames written.", hub.drops.sent),
        *_metric("ws_connections", "Open websockets.", len(hub.connections)),
    ]
    return "\n".join(lines) + "\n" + publisher_lines(bridge.publisher)
