"""The live inbox: PostgreSQL notifications of new messages, notices, reads and receipts, put on
this process's bus for the ``inbox`` websocket channel and Web Push (docs/WEBSOCKET.md
"Channels"; docs/ARCHITECTURE.md §11).

Why PostgreSQL and not the bus: a message is written by whatever code holds a connection —
an API handler, the notices' reminder round, a scheduled report — inside its own transaction
(`server.db.messages`). ``pg_notify`` in that transaction is delivered only when it commits,
and to every process that listens, so a message is announced exactly when it exists, by
whichever process wrote it, and never for a rolled-back one. Every server process listens
itself, so these events do not cross Redis: they are stamped with :data:`ORIGIN`, which the
bridge does not forward (it forwards only its own process's events).

One dedicated connection LISTENs (a pooled one would be handed to other work). When it is
lost, the listener logs it and connects again with the bridge's backoff
(``[realtime] bridge_reconnect_min_s`` → ``bridge_reconnect_max_s``); notifications sent
meanwhile are lost for live views only — the inbox rows are in the database, and a page's
socket reconnecting gets its counts again in the subscription's snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import asyncpg
import orjson

from realtime.bridge import bridge_channel
from realtime.protocol import dumps
from realtime.push import PushSender, Target
from server.db.messages import NOTIFY_CHANNEL, recipients_of
from server.domain.messages import CHANNEL_INBOX
from server.kernel.events import Bus, Event
from server.kernel.settings import Settings

__all__ = ["ORIGIN", "InboxListener", "inbox_event", "inbox_notification", "push_inbox"]

log = logging.getLogger(__name__)

ORIGIN: Final = "postgres-notify"
"""The origin of inbox events: every process hears PostgreSQL itself, so none is bridged."""
PUSH_DEDUPE_PREFIX: Final = "cylwatch:push:inbox:"


def inbox_event(row: dict[str, Any], users: list[int]) -> Event:
    """The bus event of one inbox row for *users* (`realtime.hub.InboxGroup` routes it)."""
    return Event(CHANNEL_INBOX, {"users": users, "row": row}, origin=ORIGIN)


class InboxListener:
    """LISTEN on the inbox channel and publish each notification on the bus."""

    def __init__(self, settings: Settings, bus: Bus, pool: asyncpg.Pool) -> None:
        self.settings = settings
        self.bus = bus
        self.pool = pool
        self.received = 0
        self.bad = 0
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lookups: set[asyncio.Task[None]] = set()
        self._lost = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="inbox-listener")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for task in list(self._lookups):
            task.cancel()
        await asyncio.gather(*self._lookups, return_exceptions=True)

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.received += 1
        try:
            data = orjson.loads(payload)
            row = data["row"]
            if not isinstance(row, dict):
                raise TypeError("row")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            self.bad += 1
            log.warning("inbox: ignoring a malformed notification (%s): %.80r", exc, payload)
            return
        users = data.get("users")
        if isinstance(users, list):
            self.bus.publish(inbox_event(row, users))
            return
        # too many recipients to name: read them (off the notification callback)
        task = asyncio.get_running_loop().create_task(self._lookup(row, data.get("source")))
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _lookup(self, row: dict[str, Any], source: Any) -> None:
        try:
            users = await recipients_of(self.pool, source)
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            ValueError,
            TypeError,
        ) as exc:
            log.warning("inbox: recipients of %r not read (%s): not announced live", source, exc)
            return
        self.bus.publish(inbox_event(row, users))

    async def _run(self) -> None:
        rt = self.settings.realtime
        url = self.settings.services.database_url
        delay = rt.bridge_reconnect_min_s
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(url, timeout=self.settings.services.connect_timeout_s)
                self._lost.clear()
                conn.add_termination_listener(lambda _c: self._lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self.listening.set()
                delay = rt.bridge_reconnect_min_s
                await self._lost.wait()
                log.warning("inbox: the listening connection to PostgreSQL was lost; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning(
                    "inbox: cannot listen to PostgreSQL (%s); live inbox rows stop until it is"
                    " back; retrying in %.1f s",
                    exc,
                    delay,
                )
            finally:
                self.listening.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(
                            conn.close(), self.settings.services.connect_timeout_s
                        )
            await asyncio.sleep(delay)
            delay = min(delay * 2, rt.bridge_reconnect_max_s)


# ------------------------------------------------------------------ Web Push


def inbox_notification(row: dict[str, Any]) -> bytes:
    """What the service worker shows for a new message or notice: its subject, who sent it,
    and the page that opens it."""
    kind, ident = row.get("kind"), row.get("id")
    url = f"/notices/{ident}" if kind == "notice" else f"/messages?open={ident}"
    return dumps(
        {
            "title": str(row.get("title") or row.get("subject") or ""),
            "body": str(row.get("from") or ""),
            "tag": f"{kind}-{ident}",
            "url": url,
            "inbox": {"kind": kind, "id": ident},
        }
    )


async def push_inbox(sender: PushSender, event: Event) -> None:
    """A new message or notice to its recipients' own push subscriptions, by exactly one
    server process (every process hears the notification: a Redis ``SET NX`` decides)."""
    row, users = event.data["row"], event.data.get("users") or []
    # message ids are per database: platforms (and test runs) sharing a Redis must not
    # take each other's keys, so the key carries the bridge's channel (database included)
    where = bridge_channel(sender.settings)
    key = f"{PUSH_DEDUPE_PREFIX}{where}:{row.get('kind')}:{row.get('id')}"
    ttl = sender.settings.realtime.push_dedupe_ttl_s
    if not users or not await sender.redis.set(key, b"1", nx=True, ex=ttl):
        sender.skipped += 1
        return
    rows = await sender.pool.fetch(
        """SELECT s.id, s.endpoint, s.p256dh, s.auth FROM push_subscriptions s
             JOIN users u ON u.id = s.user_id
            WHERE u.active AND s.user_id = ANY($1::bigint[])""",
        list(users),
    )
    if rows:
        targets = [Target(r["id"], r["endpoint"], r["p256dh"], r["auth"]) for r in rows]
        await sender.send_all(targets, inbox_notification(row), key)
