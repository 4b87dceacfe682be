"""Settings of the people's work flows: complaints, credit evaluation, messages and notices,
articles, the enterprise data interface (docs/CONFIG.md). Each section is one class here,
registered in ``server.kernel.settings`` (the ``Settings`` struct and ``_SECTIONS``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal, get_args

from msgspec import Meta

from server.kernel.settings.base import Section, _ordered


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


CreditKind = Literal[
    "denied_attempt",
    "overfill",
    "overstock_day",
    "suspected_illegal_fill",
    "complaint_upheld",
    "rectification_overdue",
    "licence_lapsed",
]
"""The ledger's kinds that the recomputation round derives from facts (bad conduct, each with
its points); the same words as ``server.domain.credit.DERIVED_KINDS`` (a unit test checks).
Good conduct has no fact behind it: a regulator records it by hand with its points."""

CreditPoints = Annotated[float, Meta(ge=0, le=100)]
"""Points one event moves the score by (the kind says which way); at most the whole base."""
CreditCap = Annotated[float, Meta(gt=0, le=1000)]
"""The most one kind may take off (or add) within the window."""
CreditThreshold = Annotated[float, Meta(ge=0, le=1000)]


class Credit(Section, frozen=True):
    """Credit evaluation (信用评价, DOMAIN.md "Credit evaluation"; docs/CONFIG.md "[credit]"):
    the ledger's points and caps, the window, the grading, the recomputation round."""

    interval_s: Annotated[float, Meta(ge=0, le=604800)]
    """The recomputation round's period in the server processes (one runs it); 0: only on
    demand (POST /api/v1/credit/recompute)."""
    window_months: Annotated[int, Meta(ge=1, le=60)]
    """A score counts the ledger's events of this many months up to its day (rolling)."""
    history_months: Annotated[int, Meta(ge=1, le=60)]
    """Monthly snapshots each round writes, the current month included (the history chart)."""
    base: CreditThreshold
    """Every company's score before any event."""
    points: Mapping[CreditKind, CreditPoints]
    """Points per event of each derived kind (every kind named once)."""
    caps: Mapping[str, CreditCap]
    """The most each capped kind counts within the window (kinds not named: no cap)."""
    denied_reasons: Annotated[tuple[Annotated[str, Meta(min_length=1)], ...], Meta(min_length=1)]
    """Refusal reasons of a gun that count as a denied attempt (any one of them)."""
    grading: Literal["thresholds", "rank"]
    """``thresholds``: A/B/C/D by the score; ``rank``: the best ``rank_top`` companies of the
    city are A, the worst ``rank_bottom`` D, the others B or C by ``grade_b``."""
    grade_a: CreditThreshold
    grade_b: CreditThreshold
    grade_c: CreditThreshold
    rank_top: Annotated[int, Meta(ge=0, le=1000)]
    rank_bottom: Annotated[int, Meta(ge=0, le=1000)]
    manual_max_points: Annotated[float, Meta(gt=0, le=100)]
    """The most points one manual event (good or bad conduct) may carry."""
    search_similarity: Annotated[float, Meta(gt=0, le=1)]
    """pg_trgm similarity a company name must reach to match a search by resemblance
    (a name containing the text always matches)."""
    public_results_max: Annotated[int, Meta(ge=1, le=100)]
    """Companies one public search answers at most."""

    def __post_init__(self) -> None:
        missing = sorted(set(get_args(CreditKind)) - set(self.points))
        if missing:
            raise ValueError(f"points: no points for {', '.join(missing)}")
        known = set(get_args(CreditKind)) | {"good_conduct", "bad_conduct"}
        unknown = sorted(set(self.caps) - known)
        if unknown:
            raise ValueError(f"caps: unknown kind {', '.join(unknown)}")
        _ordered(self, "grade_c", "grade_b")
        _ordered(self, "grade_b", "grade_a")


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


class Safety(Section, frozen=True):
    """Safety inspections at the customer (入户安检, DOMAIN.md "Safety inspection at the
    customer"; docs/CONFIG.md "[safety]"): the rectification deadline's fallback, the overdue
    round, what one submission may carry, the SMS's city."""

    rectification_days: Annotated[int, Meta(ge=0, le=365)]
    """Days to rectify a failed item whose catalogue item names no deadline of its own."""
    round_interval_s: Annotated[float, Meta(ge=10, le=86400)]
    """How often each server process looks for rectifications past their deadline."""
    photos_max: Annotated[int, Meta(ge=1, le=100)]
    """Photos one inspection carries at most (each within ``[uploads] image_max_mb``)."""
    city_name: Annotated[str, Meta(min_length=1, max_length=20)]
    """The city as the rectification SMS names it (``{city}`` of ``[sms.templates]``)."""
    regulator_life_months: Annotated[int, Meta(ge=6, le=120)]
    """A regulator's (减压阀) service life: ``{regulator_life_months}`` in catalogue texts
    (DOMAIN.md: local rules say 24 months to 5 years)."""
    hose_life_months: Annotated[int, Meta(ge=6, le=60)]
    """A hose's replacement interval: ``{hose_life_months}`` in catalogue texts (DOMAIN.md:
    18 months to 2 years locally)."""


class Reports(Section, frozen=True):
    """Reports on screen and on a schedule (docs/CONFIG.md "[reports]"; docs/API.md "Reports"):
    the periods a request may ask for, the rollups' refresh and the scheduled runs."""

    default_range_days: Annotated[int, Meta(ge=1, le=366)]
    """Days of an activity report when ``from`` is omitted: a month on screen."""
    range_max_days: Annotated[int, Meta(ge=1, le=36600)]
    """Longest period one request may ask for; longer is a 400, not a scan."""
    drill_page_size_max: Annotated[int, Meta(ge=1, le=10_000)]
    """Rows of one drill-down page at most (the export streams every row)."""
    rollup_refresh_s: Annotated[float, Meta(ge=0, le=86400)]
    """How often a server process refreshes the report rollups (0: never, e.g. a replica)."""
    schedule_interval_s: Annotated[float, Meta(ge=0, le=86400)]
    """How often a server process looks for scheduled reports due (0: never)."""
    schedule_keep_runs: Annotated[int, Meta(ge=1, le=10_000)]
    """Runs (and their files) kept per schedule; older ones are removed."""
    schedule_stale_s: Annotated[float, Meta(ge=10, le=86400)]
    """A run claimed this long ago and not finished was lost with its process: claim it again."""
    schedule_max_attempts: Annotated[int, Meta(ge=1, le=100)]
    """Attempts at one period's run before it stays failed (shown on the page)."""
    schedules_per_user: Annotated[int, Meta(ge=1, le=1000)]
    """Schedules one person may keep."""
    unreturned_days: Annotated[int, Meta(ge=1, le=3660)]
    """Days after delivery a cylinder at a closed account's is listed as not returned
    (DOMAIN.md "Circulation checks": 180; the ``recovery-rate`` report)."""


RiskFactor = Literal[
    "denied_attempt",
    "overfill",
    "overstock_day",
    "open_alert",
    "overdue_cylinder",
    "complaint",
]
"""What ranks a site on the officer's inspection list; the same words as
``server.domain.site_risk.FACTORS`` (a unit test checks)."""

RiskWeight = Annotated[float, Meta(ge=0, le=1000)]
"""Points one counted fact adds to a site's risk score (0: the factor is shown, not scored)."""
RiskCap = Annotated[int, Meta(ge=1, le=1_000_000)]
"""The most facts of one factor a site's score counts within the window."""


class Risk(Section, frozen=True):
    """The officer's daily inspection list (docs/CONFIG.md "[risk]"; docs/API.md "Inspection
    list"): sites ranked by the weighted facts of a recent window."""

    window_days: Annotated[int, Meta(ge=1, le=366)]
    """City days, today included, whose facts rank a site."""
    weights: Mapping[RiskFactor, RiskWeight]
    """Points per counted fact of each factor (every factor named once)."""
    caps: Mapping[RiskFactor, RiskCap]
    """The most facts of a factor the score counts (factors not named: no cap)."""
    list_default: Annotated[int, Meta(ge=1, le=1000)]
    """Sites one list shows when ``limit`` is omitted."""
    list_max: Annotated[int, Meta(ge=1, le=10_000)]
    """The most sites one list (or its export) may ask for."""

    def __post_init__(self) -> None:
        missing = sorted(set(get_args(RiskFactor)) - set(self.weights))
        if missing:
            raise ValueError(f"weights: no weight for {', '.join(missing)}")
        _ordered(self, "list_default", "list_max")
