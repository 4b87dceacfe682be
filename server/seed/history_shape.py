"""The shape of the seeded history: cadences, delays and the rates of what goes wrong.

Like `server.seed.shape`, these numbers describe a plausible demo city (DOMAIN.md "Scale of
one city": each cylinder is filled about once a month), not rules of the platform: the
rules — inspection intervals, scrap ages, fill limits, who may fill what — come from the
settings and the domain (`assess_fill`, `authorize_fill`), which the history obeys like a
gun does. Rates come in pairs ``(normal, bad)``: the "bad" companies and stations are the
few where a regulator should find the anomalies concentrated, so that every report ranks
something (docs/ARCHITECTURE.md §4).
"""

from __future__ import annotations

from typing import Final

# ---- the cycle: fill → dispatch → deliver → (use) → return → fill

CADENCE_DAYS: Final = (22, 34)
"""A cylinder in service comes back for a fill every this many days (its own cadence):
about once a month, and never twice within the repeat-fill window."""
CADENCE_JITTER_DAYS: Final = 3
"""Each fill of a cylinder moves up to this many days around its cadence."""
OTHER_STATION_SHARE: Final = 0.1
"""Fills at another station allowed to fill the cylinder than its usual one."""
ENTRUSTED_FILL_SHARE: Final = 0.2
"""For a company with stations of its own that also entrusts another company's (委托充装),
the share of its fills done at the entrusted stations."""
DELIVERY_DAYS: Final = 3
"""A filled cylinder is dispatched and delivered 1 to this many days after its fill."""
RETURN_DAYS: Final = 4
"""An empty cylinder comes back 1 to this many days before its next fill."""
INSPECTION_GAP_DAYS: Final = 4
"""A fill due this few days before a periodic inspection waits until the day after it (the
cylinder is at the agency, not at a customer)."""
SCRAP_LAST_FILL_DAYS: Final = (8, 40)
"""A cylinder scrapped during the history had its last fill this many days before."""
FILL_DURATION_S: Final = (60, 240)
ABORTED_BEFORE_S: Final = (300, 1500)
"""An aborted attempt comes this long before the completed fill that follows it."""
FAIR_SHORT_CENTS: Final = 45
"""A fair fill is 0 to 0.45 kg below the model's maximum (judged by assess_fill all the same)."""
UNDERFILL_CENTS: Final = (60, 150)
"""An underfill is this many centigrams short of the maximum (the tolerance is 0.5 kg) …"""
UNDERFILL_MAX_SHARE: Final = 0.4
"""… but never more than this share of the model's maximum."""
OVERFILL_CENTS: Final = (5, 40)

# ---- who is "bad"

BAD_COMPANIES: Final = 3
"""Companies whose stations and sales carry most of the anomalies (never the demo company)."""
BAD_STATIONS_ELSEWHERE: Final = 2
"""Stations of other companies that misbehave as well (never the demo operator's)."""

# ---- rates: (normal, bad)

OVERFILL_RATE: Final = (0.001, 0.025)
"""Per fill. A normal station's post-fill check catches it (aborted, then a fair refill); a
bad station lets it leave."""
UNDERFILL_RATE: Final = (0.01, 0.08)
CHECK_FAIL_RATE: Final = (0.003, 0.02)
"""Per fill: a failed pre- or post-fill check item aborts an attempt before the fill."""
NOT_OWNER_RATE: Final = (0.001, 0.03)
"""Per fill at the station: an attempt at another company's cylinder (串瓶), refused."""
UNKNOWN_TAG_RATE: Final = (0.0003, 0.006)
"""Per fill at the station: an attempt at a tag no cylinder carries (黑瓶), refused."""
OVERDUE_ATTEMPTS: Final = ((0, 1), (1, 3))
"""Refused attempts at a returned cylinder past its inspection or scrap date."""
LICENCE_ATTEMPTS: Final = (5, 15)
"""Refused attempts at a station in the days after its licence was suspended."""
ANONYMOUS_SALE_RATE: Final = (0.02, 0.15)
"""Per delivery, by owner: sold over the counter to nobody on the real-name register."""
OUT_OF_REGION_RATE: Final = (0.0002, 0.004)
"""Per delivery, by owner: delivered outside the city (区域外流)."""
OVERSTOCK_EPISODES: Final = (0.02, 1.0)
"""Per site and month: spells of full cylinders above the permitted storage."""
OVERSTOCK_DAYS: Final = (1, 4)
OVERSTOCK_PEAK: Final = (1.05, 1.6)
"""Peak full cylinders of a spell, as a multiple of the site's permitted storage."""
OVERSTOCK_CHECKS_PER_DAY: Final = (4, 30)
COMPLAINTS_PER_THOUSAND: Final = 0.25
"""Complaints per month per 1,000 cylinders of a company (bad companies: × COMPLAINT_BAD)."""
COMPLAINT_BAD: Final = 5.0
COMPLAINT_UPHELD: Final = (0.3, 0.6)
COMPLAINT_STAGE_HOURS: Final = (2, 60)
"""Hours between a complaint's moves (filed → assigned → answered → closed)."""
COMPLAINT_KIND_SHARES: Final = {"complaint": 0.7, "report": 0.2, "fault": 0.1}
COMPLAINT_SOURCE_SHARES: Final = {"qr": 0.6, "mobile": 0.2, "phone": 0.2}
COMPLAINT_LEFT_OPEN: Final = 0.08
"""Of complaints older than their deadline, the share still not answered (overdue)."""

# ---- household safety inspections (入户安检; DOMAIN.md "Safety inspection at the customer")

SAFETY_YEARLY_COVERAGE: Final = (0.95, 0.5)
"""Share of a company's real-name households inspected in a year (local rules: once a year);
the bad companies skip half of theirs."""
SAFETY_AT_DELIVERY_SHARE: Final = 0.4
"""Of the inspections, the share done by the delivery worker when bringing a cylinder (送气
入户安检); the rest are visits of their own on a day of the year."""
SAFETY_ITEM_RATES: Final[dict[str, tuple[float, float, float]]] = {
    "cylinder_valid": (0.004, 0.02, 0.0),
    "cylinder_upright": (0.003, 0.01, 0.0),
    "cylinder_distance": (0.02, 0.06, 0.0),
    "valve_no_leak": (0.003, 0.012, 0.0),
    "regulator_ok": (0.03, 0.08, 0.0),
    "hose_type": (0.015, 0.05, 0.0),
    "hose_condition": (0.07, 0.18, 0.0),
    "cooker_ok": (0.04, 0.08, 0.02),
    "no_mixed_gas": (0.002, 0.01, 0.7),
    "placement_ok": (0.01, 0.04, 0.0),
    "gas_alarm": (0.1, 0.3, 0.0),
    "gas_alarm_shutoff": (0.08, 0.25, 0.0),
    "storage_limit": (0.03, 0.12, 0.1),
    "safety_notice": (0.0, 0.01, 0.0),
}
"""Per catalogue item code (migrations 0200/0211): (fail, fail at a bad company, not
applicable). Aged hoses and missing gas alarms are the hazards inspectors find most; a
household without piped gas answers "not mixed" with n/a. About a quarter of the records
fail an item at a normal company, about half at a bad one."""
SAFETY_OTHER_ITEM_RATE: Final = (0.01, 0.03, 0.0)
"""An item an admin added to a catalogue (a code not above)."""
SAFETY_RECTIFIED: Final = (0.93, 0.6)
"""Of the failed items, the share whose rectification a re-check closes (if its day has come)."""
SAFETY_ON_TIME: Final = (0.85, 0.45)
"""Of those closed, the share closed by their deadline; the rest 1 to SAFETY_LATE_DAYS after."""
SAFETY_LATE_DAYS: Final = 20
SAFETY_RECEIVED_S: Final = (5, 900)
"""The phone uploads a record this many seconds after it is signed (or when back online)."""
CUSTOMERS_PER_DELIVERY_WORKER: Final = 1500
"""Households one delivery worker (送气工) of a company serves: about six inspections a
working day at one a year each. Each worker is a station_operator account of the company."""

# ---- alerts of the history

ALERT_OPEN_DAYS: Final = 3
"""Alerts of the last days are still open or acknowledged; older ones were resolved."""
ALERT_RESOLVE_HOURS: Final = (1, 48)

# ---- places outside the city (区域外流): neighbouring cities' centres

OUTSIDE_PLACES: Final[tuple[tuple[float, float], ...]] = (
    (34.797, 114.307),  # 开封
    (35.303, 113.926),  # 新乡
    (34.036, 113.852),  # 许昌
    (34.620, 112.454),  # 洛阳
    (35.216, 113.242),  # 焦作
    (33.766, 113.193),  # 平顶山
)
"""(lat, lon); sightings scatter OUTSIDE_SPREAD_DEG around them (and are checked to lie
outside the configured districts)."""
OUTSIDE_SPREAD_DEG: Final = 0.05
OUTSIDE_POINTS: Final = 64

# ---- the master data the history needs

ENTRUSTING_WITH_STATIONS: Final = 2
"""Companies with stations of their own that also entrust another company's stations."""
ENTRUSTMENT_AGE_DAYS: Final = (30, 900)
"""An entrustment began this long before the history does."""
ENTRUSTMENT_LEFT_DAYS: Final = (90, 700)
SUSPENDED_DAYS_AGO: Final = (20, 60)
"""When the suspended station lost its licence (fills there stop; attempts are refused)."""
SUSPENSION_REASON: Final = "年度监督检查不合格，暂停充装许可"

# ---- bulk loading

HISTORY_CHUNK_ROWS: Final = 25_000
"""Rows per COPY of the history (events and fills): ~4 MB of binary COPY data."""
HISTORY_AHEAD: Final = 6
"""Chunks generated ahead of the COPY; more while a month's indexes are built …"""
HISTORY_AHEAD_INDEXING: Final = 96
"""… so that the generating thread never waits while PostgreSQL sorts (~400 MB at most)."""
INDEX_EVERY_CHUNKS: Final = 6
"""One queued partition index is built after this many COPYs of the next month."""
REBUILD_MIN_ROWS: Final = 400_000
"""Above this many history rows, the indexes of events and fills are dropped and rebuilt
month by month (sorting a month once beats scattering it into live B-trees)."""
