"""Settings of the people's work flows: complaints, credit evaluation, messages and notices,
articles, the enterprise data interface (docs/CONFIG.md). Each section is one class here,
registered in ``server.kernel.settings`` (the ``Settings`` struct and ``_SECTIONS``)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from server.kernel.settings.base import Section


class Complaints(Section, frozen=True):
    """Complaints (投诉举报, DOMAIN.md "Complaints"): the answer deadline, the reminder round and
    the text of the answer's SMS (docs/CONFIG.md "[complaints]")."""

    answer_working_days: Annotated[int, Meta(ge=1, le=60)]
    """Working days (Monday to Friday, the city's calendar) to answer a complaint."""
    reminder_interval_s: Annotated[float, Meta(ge=10, le=86400)]
    """How often each server process looks for complaints past their deadline."""
    city_name: Annotated[str, Meta(min_length=1, max_length=20)]
    """The city as the answer's SMS names it (``{city}`` of ``[sms.templates]``)."""
    sms_answer_max_chars: Annotated[int, Meta(ge=10, le=500)]
    """Characters of the answer quoted in the SMS; the whole answer is on the tracking page."""


class Enterprise(Section, frozen=True):
    """The enterprise data interface (政府与企业数据对接, docs/API.md "Enterprise data interface";
    docs/CONFIG.md "[enterprise]"): how many records one request carries and the body that
    many records need."""

    max_batch_rows: Annotated[int, Meta(ge=1, le=100_000)]
    """Records one ``POST /api/v1/ingest/cylinders`` or ``/ingest/fills`` carries at most."""
    max_body_mb: Annotated[int, Meta(ge=1, le=512)]
    """The largest request body of those two routes (their own limit, not ``[http]``'s)."""


class Messages(Section, frozen=True):
    """Messages (系统消息) and notices to sign (通知/文件): the fan-out bound, the attachments and
    the notices' reminder round (docs/CONFIG.md "[messages]")."""

    recipients_max: Annotated[int, Meta(ge=1, le=100_000)]
    """Users one message or notice reaches at most, fanned out in its sending transaction."""
    attachments_max: Annotated[int, Meta(ge=1, le=50)]
    """Files one notice carries."""
    reminder_interval_s: Annotated[float, Meta(ge=10, le=86400)]
    """How often each server process looks for notices past their deadline."""
    city_name: Annotated[str, Meta(min_length=1, max_length=20)]
    """The city as the reminder's SMS names it (``{city}`` of ``[sms.templates]``)."""
