"""The shape of the demo city: shares, ranges and sizes that make it look like a real fleet.

Shares are of all cylinders unless said otherwise. They describe a plausible demo
(DOMAIN.md "Scale of one city"); none of them is a rule the platform enforces — the rules
(inspection intervals, scrap ages, fill limits) come from the settings (docs/CONFIG.md) and
the domain, which the seed obeys like every other writer.
"""

from __future__ import annotations

from typing import Final

SPEC_WEIGHTS: Final[dict[str, float]] = {
    "YSP35.5": 75.0,  # the household "15 kg" cylinder
    "YSP12": 12.0,
    "YSP118": 5.0,  # restaurants, canteens, small industry
    "YSP4.7": 3.0,
    "YSP26.2": 3.0,
    "YSP118-II": 2.0,
}
TARE_KG: Final[dict[str, tuple[float, float]]] = {
    "YSP4.7": (3.2, 4.2),
    "YSP12": (5.6, 6.8),
    "YSP26.2": (11.0, 13.2),
    "YSP35.5": (14.0, 17.0),
    "YSP118": (46.0, 52.0),
    "YSP118-II": (47.0, 53.5),
}
"""Plausible tare weight ranges by model (kg): the "15 kg" YSP35.5 weighs 14–17 kg empty."""
WALL_MM: Final[dict[str, tuple[float, float]]] = {
    "YSP4.7": (2.0, 2.5),
    "YSP12": (2.3, 2.8),
    "YSP26.2": (2.5, 3.0),
    "YSP35.5": (2.6, 3.2),
    "YSP118": (3.0, 3.6),
    "YSP118-II": (3.2, 3.8),
}
DEFAULT_TARE_KG: Final = (10.0, 20.0)  # a model configured locally but unknown here
DEFAULT_WALL_MM: Final = (2.5, 3.5)

MANUFACTURERS: Final[tuple[tuple[str, str, float], ...]] = (
    ("浙江金盾压力容器有限公司", "JD", 22.0),
    ("宁波明欣化工机械有限责任公司", "MX", 18.0),
    ("山东华建铝业集团压力容器有限公司", "HJ", 10.0),
    ("河南省宏达压力容器有限公司", "HD", 14.0),
    ("新乡市平原液化气钢瓶厂", "PY", 12.0),
    ("江苏民生重工有限公司", "MS", 9.0),
    ("洛阳天亿钢瓶有限公司", "TY", 8.0),
    ("河北百工高压容器有限公司", "BG", 7.0),
)

SCRAPPED_SHARE: Final = 0.015
"""Cylinders already scrapped (报废) and kept in the archive; their tags are voided."""
EXTENDED_LIFE_SHARE: Final = 0.06
"""In-service cylinders past their design life whose inspection extended it (to ≤ 12 y)."""
INSPECTION_MISSED_SHARE: Final = 0.1
"""Of cylinders whose latest periodic inspection has fallen due, the share that missed it
(→ about 4 % overdue overall, and a few past their design life still in service)."""
INSPECTED_EARLY_SHARE: Final = 0.3
INSPECTION_EARLY_DAYS: Final = 60
"""INSPECTED_EARLY_SHARE of inspections happen up to this many days before the due date
(the cylinder happened to be at the agency); the rest on the due date itself."""
CAMPAIGN_SHARE: Final = 0.03
"""Cylinders from a bulk purchase exactly one inspection interval ago (a city-wide
smart-valve replacement drive), whose first inspections are falling due now: the
"inspection due" list a regulator opens is never empty."""
FLEET_GROWTH_SKEW: Final = 1.3
"""> 1 makes young cylinders commoner than old ones (the fleet keeps growing), which also
keeps the share nearing its design life near 2 %."""
REGISTRATION_DELAY_DAYS: Final = (7, 120)
"""Days from manufacture to registration (建档) at an inspection agency."""
OLDEST_BEYOND_SCRAP_YEARS: Final = 1
"""The archive reaches back this many years beyond the absolute scrap age."""

LOST_SHARE: Final = 0.003
SUSPENDED_SHARE: Final = 0.002
IN_INSPECTION_SHARE: Final = 0.005
NOT_ACTIVATED_NEW_DAYS: Final = 120
NOT_ACTIVATED_OF_NEW: Final = 0.1
"""Of cylinders made in the last NOT_ACTIVATED_NEW_DAYS, the share not yet activated."""
ORDINARY_VALVE_SHARE: Final = 0.04

AT_SITES_SHARE: Final = 0.18
"""In-service cylinders at stations, stores and warehouses (the rest are with customers)."""
MAX_SITE_UTILISATION: Final = 0.6
"""Never stock sites above this share of their permitted full storage on average, so the
demo does not open with an overstock alert at every store."""
ON_VEHICLE_SHARE: Final = 0.01
FILLED_DAYS_AGO_FULL: Final = (1, 35)
"""A full cylinder was filled this many days ago (each is filled about once a month)."""
FILLED_DAYS_AGO_EMPTY: Final = (20, 70)
RETURNED_DAYS_AGO: Final = (1, 10)
"""An empty cylinder at a site came back from a customer this many days ago."""
FULL_AT_CUSTOMER: Final = 0.85
FULL_AT_SITE: Final = 0.5
FULL_ON_VEHICLE: Final = 0.8
CUSTOMER_YEARS: Final = 8
"""Real-name accounts were opened over this many years (growing towards today)."""
CUSTOMER_GROWTH_SKEW: Final = 0.7
"""< 1 puts more accounts near today (the real-name system kept signing people up)."""
TWO_CHARACTER_GIVEN_NAME_SHARE: Final = 0.7
LOCAL_BORN_SHARE: Final = 0.7
"""Residents whose identity number carries a district code of this city."""
CUSTOMER_KIND_SHARES: Final[dict[str, float]] = {
    "resident": 0.9,
    "restaurant": 0.08,
    "industrial": 0.02,
}
CYLINDERS_PER_CUSTOMER_WEIGHT: Final[dict[str, float]] = {
    "resident": 1.0,
    "restaurant": 6.0,
    "industrial": 15.0,
}
"""Relative number of cylinders a customer of each kind holds."""

DISTRICT_WEIGHTS: Final[dict[str, float]] = {
    "410105": 22.0,  # 金水区
    "410102": 14.0,  # 中原区
    "410103": 14.0,  # 二七区
    "410104": 11.0,  # 管城回族区
    "410108": 8.0,  # 惠济区
    "410171": 9.0,  # 经开区
    "410172": 8.0,  # 高新区
    "410106": 3.0,  # 上街区
    "410182": 4.0,  # 荥阳市 (county-level city: town centres, villages)
    "410184": 4.0,  # 新郑市
    "410122": 3.0,  # 中牟县
}
"""Where people live (customers and stores). Districts not listed weigh 5."""
STATION_DISTRICT_WEIGHTS: Final[dict[str, float]] = {
    "410108": 20.0,
    "410171": 20.0,
    "410172": 15.0,
    "410103": 15.0,
    "410102": 10.0,
    "410104": 10.0,
    "410105": 4.0,
    "410106": 6.0,
    "410182": 8.0,
    "410184": 8.0,
    "410122": 8.0,
}
"""Filling stations sit on the outskirts, away from dense housing."""
OTHER_DISTRICT_WEIGHT: Final = 5.0

LICENCE_TERM_YEARS: Final = 5
"""Validity of a licence (燃气经营许可证 / 气瓶充装许可证) from issue to expiry."""
LICENCE_LEFT_DAYS_MAX: Final = 4 * 365
LICENCE_EXPIRED_DAYS: Final = (5, 60)
"""How long ago the suspended company's licence ran out."""
ENTRUSTING_COMPANIES: Final = 3
"""The smallest companies run no filling station and entrust a larger one (委托充装)."""
COMPANIES_LICENCE_EXPIRING: Final = 2
STATIONS_LICENCE_EXPIRING: Final = 3
STATIONS_SUSPENDED: Final = 1
WAREHOUSE_PER_STATIONS: Final = 25
PERMITTED_STORAGE_SET_SHARE: Final = 0.15
"""Sites with their own permitted full storage (the rest use the per-kind default)."""
PERMITTED_STORAGE_FACTORS: Final = (0.5, 0.8, 1.5, 2.0)
"""A site's own permitted storage, as a multiple of its kind's default."""
GUNS_PER_STATION: Final = (2, 6)
HANDHELDS_PER_STATION: Final = (1, 3)
HANDHELDS_PER_STORE: Final = (1, 2)

REGISTER_EVENT_SHARE: Final = 0.02
REGISTER_EVENTS_MAX: Final = 20_000
FILL_HISTORY_SHARE: Final = 0.02
"""Of cylinders in service, in date and recently filled, the share with seeded fills."""
FILL_HISTORY_MAX: Final = 10_000
HISTORY_DAYS: Final = 30
SECOND_FILL_SHARE: Final = 0.3
FILL_SPACING_DAYS: Final = 7
"""Seeded fills of one cylinder lie this far apart: never a repeat fill (DOMAIN.md)."""
FILL_DURATION_S: Final = (60, 240)
UNDERFILL_SHARE: Final = 0.03
OVERFILL_SHARE: Final = 0.005
OVERFILL_BY_KG: Final = (0.05, 0.4)
UNDERFILL_BY_KG: Final = (0.6, 1.5)
FAIR_FILL_SHORT_KG: Final = (0.0, 0.45)
"""A fair fill is this much below the model's maximum (judged by assess_fill all the same)."""

TAG_PREFIX: Final = "E280"
"""RFID tag numbers: "E" and 12 hex digits, like the TID of an EPC Gen2 chip (E280…)."""
_TAG_DIGITS: Final = 9
TAG_SPACE: Final = 16**_TAG_DIGITS
BARCODE_PREFIX: Final = "4101"
"""QR / barcode numbers: 16 digits, the city's region prefix and a 12-digit number."""
BARCODE_SPACE: Final = 10**12
TAG_STRIDE_MAX: Final = 1000

CHUNK_ROWS: Final = 50_000
"""Rows per COPY: big enough to amortise round trips, small enough to keep memory flat."""
INDEX_BUILD_MEMORY: Final = "1GB"
"""maintenance_work_mem of the seed's transaction: a month of a 1M-cylinder city's history
is ~4M events, whose text indexes sort in memory at this size instead of on disk."""
GENERATE_AHEAD: Final = 2
"""Chunks generated ahead of the one being stored (memory vs. overlap)."""
ADVISORY_LOCK: Final = 0x0C71_5EED
"""pg advisory lock held while seeding, so two seeds cannot interleave."""
