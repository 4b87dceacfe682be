"""`cylwatch seed`: a synthetic Zhengzhou-like demo city (DOMAIN.md "Scale of one city").

A supervision platform is judged on a city full of cylinders: the live map, the reports,
the big screen and the benchmarks (DESIGN §10 measures lookups at 1M cylinders) all need
one. Real archives are personal data, so the platform ships a generator instead: districts
from ``config/districts.geojson``, gas companies with their licences, filling stations,
stores, warehouses and inspection agencies placed inside the district polygons, real-name
customers (identity numbers masked, as the real system stores them), guns, handhelds and
delivery vehicles, and cylinders whose dates spread the way a real fleet's do — most in
date, some due for inspection, some overdue, some near or past their scrap date. Those
dates are derived with the same domain functions (:mod:`server.domain.dates`) that the
importer and the gun's authorization use, so the demo city obeys the configured rules.

Sizes come from ``[seed]`` in the settings or from flags; the *shape* of the synthetic
data (shares of overdue cylinders, model mix, tare weights …) is set by the module-level
constants below — they describe a plausible demo, they are not rules of the platform.

The seed is deterministic for a given random seed and ``today``, runs in one transaction
(a failed seed leaves nothing behind), streams rows with COPY in chunks so a
1,000,000-cylinder city fits in memory and in a few minutes, and refuses to seed a
database that already holds cylinders.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import logging
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import asyncpg
import orjson
from tqdm import tqdm

from server.db.migrate import migrate
from server.db.pool import connect
from server.domain.dates import (
    add_years,
    compliance_status,
    derive_next_inspection,
    derive_scrap_date,
)
from server.domain.events import EventKind, epcis_for
from server.domain.filling import assess_fill
from server.kernel.districts import District, load_districts
from server.kernel.passwords import hash_password
from server.kernel.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "DEMO_USERS",
    "AlreadySeeded",
    "DemoUser",
    "SeedSummary",
    "add_commands",
    "format_demo_users",
    "run_seed",
    "seed_city",
]

# ------------------------------------------------------------------ demo-data shape
# Shares are of all cylinders unless said otherwise. They make the demo look like a real
# fleet (DOMAIN.md "Scale"); none of them is a rule the platform enforces.

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
_TAG_SPACE: Final = 16**_TAG_DIGITS
BARCODE_PREFIX: Final = "4101"
"""QR / barcode numbers: 16 digits, the city's region prefix and a 12-digit number."""
_BARCODE_SPACE: Final = 10**12
TAG_STRIDE_MAX: Final = 1000

CHUNK_ROWS: Final = 50_000
"""Rows per COPY: big enough to amortise round trips, small enough to keep memory flat."""
INDEX_BUILD_MEMORY: Final = "256MB"
GENERATE_AHEAD: Final = 2
"""Chunks generated ahead of the one being stored (memory vs. overlap)."""
ADVISORY_LOCK: Final = 0x0C71_5EED
"""pg advisory lock held while seeding, so two seeds cannot interleave."""

# ------------------------------------------------------------------ names

SURNAMES: Final = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
    "苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史"
)
GIVEN_CHARS: Final = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚红华玉海鹏辉宇浩欣婷雪琳晨博峰亮斌俊飞"
    "凯旭晓燕丹玲萍梅颖倩佳帅龙阳健文波宁彬鑫淑珍兰春国建志振卫东英秀桂喜福瑞成晶慧"
)


def _words(text: str) -> tuple[str, ...]:
    """Space-separated word lists keep the name tables below readable."""
    return tuple(text.split())


DISHES: Final = _words(
    "烩面馆 胡辣汤 羊肉汤馆 蒸菜馆 饺子馆 火锅店 小吃店 面馆 快餐店 烧饼铺 大排档 酒家"
)
BUSINESS_WORDS: Final = _words("宏达 金源 豫丰 华瑞 鑫盛 永安 恒通 中兴 瑞祥 福源 盛世 正大")
INDUSTRIAL_KINDS: Final = _words("食品厂 机械厂 餐饮管理有限公司 酒店 职工食堂 印染厂")
NAMED_COMPANIES: Final[tuple[tuple[str, str, float], ...]] = (
    ("郑州华润燃气股份有限公司", "华润燃气", 18.0),
    ("中国石化销售股份有限公司河南郑州石油分公司", "中石化", 11.0),
    ("郑州新奥燃气有限公司", "新奥燃气", 10.0),
    ("中国石油天然气股份有限公司河南郑州销售分公司", "中石油", 8.0),
    ("郑州港华燃气有限公司", "港华燃气", 6.0),
    ("河南中原液化石油气有限公司", "中原液化气", 5.0),
)
"""(name, short name, market weight) of the large companies; smaller ones are generated."""
GENERATED_COMPANY_WORDS: Final = _words(
    "金盾 豫通 安泰 恒源 中州 嵩山 黄河 绿城 商都 瑞丰 永兴 顺达 "
    "华源 兴隆 光明 平安 安顺 东方 长城 正阳 祥和 天然 民生 康泰"
)
INSPECTION_AGENCIES: Final = (
    "郑州市特种设备检验检测研究院气瓶检验站",
    "河南省锅炉压力容器检验技术科学研究院郑州气瓶检验站",
    "郑州安平气瓶检测有限公司",
    "郑州市中原气瓶检验站",
)
ROADS: Final[dict[str, tuple[str, ...]]] = {
    "410102": _words("中原路 建设路 桐柏路 伏牛路 嵩山路 西站路 棉纺路 华山路"),
    "410103": _words("大学路 航海路 长江路 嵩山南路 淮河路 兴华街 京广路"),
    "410104": _words("紫荆山路 商城路 城东路 南关街 东大街 陇海东路 航海东路"),
    "410105": _words("花园路 经三路 农业路 文化路 北环路 金水路 东风路 纬五路"),
    "410108": _words("天河路 开元路 长兴路 英才街 江山路 清华园路 弘湖路"),
    "410106": _words("济源路 中心路 工业路 新安路 峡窝路"),
    "410171": _words("第八大街 经北三路 航海东路 第十五大街 经南八路 朝凤路"),
    "410172": _words("科学大道 长椿路 莲花街 西三环 瑞达路 合欢街"),
}
GENERIC_ROADS: Final = _words("人民路 解放路 建设路 幸福路 团结路 和平路")
PHONE_PREFIXES: Final = _words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "166 176 177 178 180 181 182 183 185 186 187 188 189 198 199"
)
ID_REGION_CODES_ELSEWHERE: Final = _words(
    "410122 410181 410182 410183 410184 410185 410302 410402 410702 411302 411502 411702"
)
"""Identity-number regions of customers born outside the city (elsewhere in Henan)."""
PLATE_CHARS: Final = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
PRE_CHECK_ITEMS: Final = _words(
    "markings residual_pressure valve_intact no_damage in_date own_cylinder"
)
POST_CHECK_ITEMS: Final = _words("net_weight no_leak seals_intact label_attached")


# ------------------------------------------------------------------ demo users


@dataclass(frozen=True)
class DemoUser:
    """A demo login; printed by ``cylwatch seed`` and ``cylwatch demo``.

    ``binding`` says what the account is attached to: ``company`` (the first company),
    ``station`` (that company's first filling station), ``agency`` (the first inspection
    agency) or nothing. ``districts`` scopes regulators and officers.
    """

    username: str
    password: str
    role: str
    description: str
    display_name: str
    districts: tuple[str, ...] = ()
    binding: str | None = None


DEMO_USERS: Final[tuple[DemoUser, ...]] = (
    DemoUser("admin", "admin-demo-2026", "admin", "platform administrator", "系统管理员"),
    DemoUser(
        "regulator",
        "regulator-demo-2026",
        "regulator",
        "city-wide regulator (市局)",
        "市局监管员",
    ),
    DemoUser(
        "jinshui",
        "jinshui-demo-2026",
        "regulator",
        "district regulator, 金水区 only",
        "金水区监管员",
        districts=("410105",),
    ),
    DemoUser(
        "officer",
        "officer-demo-2026",
        "officer",
        "field officer, 金水区 + 二七区 (phone view /m)",
        "执法队员",
        districts=("410105", "410103"),
    ),
    DemoUser(
        "company",
        "company-demo-2026",
        "company_admin",
        "company admin of ZZ-G001 (郑州华润燃气)",
        "华润燃气管理员",
        binding="company",
    ),
    DemoUser(
        "station",
        "station-demo-2026",
        "station_operator",
        "operator at ZZ-G001's first filling station",
        "充装站操作员",
        binding="station",
    ),
    DemoUser(
        "inspector",
        "inspector-demo-2026",
        "inspector",
        "inspector at the first inspection agency (检验站)",
        "检验员",
        binding="agency",
    ),
)


def format_demo_users(users: Sequence[DemoUser] = DEMO_USERS) -> str:
    """The demo logins as an aligned text table (for the console)."""
    rows = [("username", "password", "role", "scope")]
    rows += [(u.username, u.password, u.role, u.description) for u in users]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows
    )


# ------------------------------------------------------------------ results


class AlreadySeeded(RuntimeError):
    """The database already holds cylinders; seeding again would duplicate the city."""

    def __init__(self, cylinders: int) -> None:
        self.cylinders = cylinders
        super().__init__(
            f"database already seeded: {cylinders:,} cylinders; use --if-empty or a fresh database"
        )


@dataclass
class SeedSummary:
    """What a seed wrote (counts of rows), and how long it took."""

    districts: int = 0
    companies: int = 0
    filling_stations: int = 0
    stores: int = 0
    warehouses: int = 0
    inspection_agencies: int = 0
    entrustments: int = 0
    customers: int = 0
    guns: int = 0
    handhelds: int = 0
    vehicles: int = 0
    cylinders: int = 0
    users: int = 0
    events: int = 0
    fills: int = 0
    seconds: float = 0.0
    compliance: dict[str, int] = field(default_factory=dict)
    """Cylinders by compliance status on the seed's ``today`` (DESIGN §4)."""
    statuses: dict[str, int] = field(default_factory=dict)
    """Cylinders by record status (in_service, scrapped, lost …)."""

    def lines(self) -> list[str]:
        """A human summary, one fact per line."""
        return [
            f"districts {self.districts}, companies {self.companies}, "
            f"entrustments {self.entrustments}",
            f"sites: {self.filling_stations} filling stations, {self.stores} stores, "
            f"{self.warehouses} warehouses, {self.inspection_agencies} inspection agencies",
            f"customers {self.customers:,}; devices: {self.guns} guns, "
            f"{self.handhelds} handhelds, {self.vehicles} vehicles",
            f"cylinders {self.cylinders:,}: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(self.compliance.items())),
            "record status: " + ", ".join(f"{k} {v:,}" for k, v in sorted(self.statuses.items())),
            f"history: {self.events:,} events, {self.fills:,} fills; "
            f"{self.users} demo users created",
            f"took {self.seconds:.1f} s",
        ]


# ------------------------------------------------------------------ plumbing


@dataclass
class _Site:
    id: int
    code: str
    name: str
    kind: str
    company_id: int | None
    district: str
    lat: float
    lon: float
    capacity: int = 0


@dataclass
class _Company:
    id: int
    code: str
    name: str
    short: str
    weight: float
    stations: list[_Site] = field(default_factory=list)
    fill_stations: list[_Site] = field(default_factory=list)
    """Stations that may fill this company's cylinders: its own, else its filler's."""
    depots: list[_Site] = field(default_factory=list)


@dataclass
class _Vehicle:
    id: int
    device_id: str
    company_id: int
    district: str
    lat: float
    lon: float


class _Decimals:
    """Interned ``Decimal`` values in hundredths: asyncpg encodes a Decimal for a numeric
    column about twice as fast as a float, and reusing the objects saves building 3M."""

    def __init__(self) -> None:
        self._cache: dict[int, Decimal] = {}

    def __call__(self, value: float) -> Decimal:
        cents = round(value * 100)
        d = self._cache.get(cents)
        if d is None:
            d = self._cache[cents] = Decimal(cents).scaleb(-2)
        return d


class _Clock:
    """Timestamps of the seeded history, all strictly before the start of ``today``.

    Anchoring on local midnight (``[alerts] timezone``) keeps the seed deterministic for a
    given day and never puts a fill or registration in the future. Times fall within the
    configured opening hours. Day bases and second offsets are precomputed: the seed asks
    for a few million timestamps and building each from scratch dominated its profile.
    """

    def __init__(self, today: date, settings: Settings) -> None:
        zone = ZoneInfo(settings.alerts.timezone)
        self.today = today
        self.today_ord = today.toordinal()
        self.midnight = datetime(today.year, today.month, today.day, tzinfo=zone).astimezone(UTC)
        self.open_s = settings.alerts.opening_hour_start * 3600
        self.span_s = max(settings.alerts.opening_hour_end * 3600 - self.open_s, 3600)
        self._opening = timedelta(seconds=self.open_s)
        self._bases: dict[int, datetime] = {}
        self._seconds = [timedelta(seconds=s) for s in range(self.span_s)]

    def on_day(self, day: date, rand: Callable[[], float]) -> datetime:
        """A moment during opening hours on *day* (which must be before today)."""
        days_ago = self.today_ord - day.toordinal()
        base = self._bases.get(days_ago)
        if base is None:
            base = self._bases[days_ago] = self.midnight - timedelta(days=days_ago) + self._opening
        return base + self._seconds[int(rand() * self.span_s)]

    def days_ago(self, lo: int, hi: int, rand: Callable[[], float]) -> datetime:
        """A moment during opening hours between *hi* and *lo* days before today (lo ≥ 1)."""
        return self.on_day(
            date.fromordinal(self.today_ord - lo - int(rand() * (hi - lo + 1))), rand
        )


def _weights_for(codes: Sequence[str], table: dict[str, float]) -> list[float]:
    return [table.get(c, OTHER_DISTRICT_WEIGHT) for c in codes]


def _pick(seq: Sequence[str], rand: Callable[[], float]) -> str:
    """``random.choice`` without its overhead (the seed calls it millions of times)."""
    return seq[int(rand() * len(seq))]


def _between(lo: int, hi: int, rand: Callable[[], float]) -> int:
    """``random.randint(lo, hi)`` without its overhead."""
    return lo + int(rand() * (hi - lo + 1))


def _person_name(rng: random.Random) -> str:
    rand = rng.random
    given = _pick(GIVEN_CHARS, rand)
    if rand() < TWO_CHARACTER_GIVEN_NAME_SHARE:
        given += _pick(GIVEN_CHARS, rand)
    return _pick(SURNAMES, rand) + given


def _phone(rng: random.Random) -> str:
    rand = rng.random
    return f"{_pick(PHONE_PREFIXES, rand)}{int(rand() * 100_000_000):08d}"


def _address(district: District, rng: random.Random) -> str:
    rand = rng.random
    road = _pick(ROADS.get(district.code, GENERIC_ROADS), rand)
    return f"郑州市{district.name}{road}{_between(1, 300, rand)}号"


def _home_address(district: District, rng: random.Random) -> str:
    rand = rng.random
    return (
        f"{_address(district, rng)}{_between(1, 30, rand)}号楼{_between(1, 4, rand)}单元"
        f"{_between(1, 28, rand)}{_between(1, 4, rand):02d}"
    )


def _masked_id(region: str, rng: random.Random) -> str:
    """A resident identity number as the platform stores it: region, 8 stars, last four.

    The full 18-character number is never generated, so it can never leak into the demo.
    """
    rand = rng.random
    check = "X" if rand() < 1 / 11 else str(int(rand() * 10))
    return f"{region}********{int(rand() * 1000):03d}{check}"


def _masked_credit_code(region: str, rng: random.Random, individual: bool) -> str:
    """A business's unified social credit code (统一社会信用代码), masked like an id."""
    rand = rng.random
    prefix = "92" if individual else "91"
    return f"{prefix}{region}********{_pick(PLATE_CHARS, rand)}{_pick(PLATE_CHARS, rand)}"


def _plate(rng: random.Random) -> str:
    rand = rng.random
    return "豫A·" + "".join(_pick(PLATE_CHARS, rand) for _ in range(5))


async def _reserve_ids(conn: asyncpg.Connection, table: str, n: int) -> int:
    """Reserve *n* consecutive ids of *table*'s serial and return the first.

    Rows are then COPYed with explicit ids, so the seed knows every id without a
    RETURNING round trip. The seeded tables are locked for the transaction, so no one
    else draws from these sequences meanwhile.
    """
    seq = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", table)
    first = int(await conn.fetchval("SELECT nextval($1::regclass)", seq))
    if n > 1:
        await conn.execute("SELECT setval($1::regclass, $2)", seq, first + n - 1)
    return first


async def _drop_secondary_indexes(conn: asyncpg.Connection, table: str) -> list[str]:
    """Drop *table*'s plain indexes (not unique, not backing a constraint); return their
    definitions for rebuilding. Whatever indexes later migrations add are kept this way.

    Inside the seed's transaction, so a failed seed gets its indexes back on rollback;
    readers of *table* wait for the seed to commit (it is empty until then anyway).
    """
    rows = await conn.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
             FROM pg_index i
            WHERE i.indrelid = $1::regclass AND NOT i.indisunique AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
            ORDER BY i.indexrelid""",
        table,
    )
    for row in rows:
        await conn.execute(f"DROP INDEX {row['name']}")
    return [row["definition"] for row in rows]


def _chunks(rows: Sequence[tuple[Any, ...]], size: int) -> Iterator[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# ------------------------------------------------------------------ the seed


async def seed_city(
    conn: asyncpg.Connection,
    settings: Settings,
    *,
    cylinders: int,
    companies: int | None = None,
    stations: int | None = None,
    stores: int | None = None,
    customers: int | None = None,
    vehicles: int | None = None,
    random_seed: int | None = None,
    today: date | None = None,
    progress: bool = True,
    districts_path: Path | None = None,
) -> SeedSummary:
    """Build the demo city in the (migrated, empty) database behind *conn*.

    Counts not given come from ``settings.seed``; ``customers`` defaults to the configured
    number scaled down for a city smaller than ``settings.seed.cylinders`` (a 3,000-cylinder
    test city does not need 200,000 households) and never above it. Everything happens in
    one transaction; :class:`AlreadySeeded` is raised, and nothing written, when cylinders
    already exist.
    """
    started = time.perf_counter()
    cfg = settings.seed
    n_companies = cfg.companies if companies is None else companies
    n_stations = cfg.filling_stations if stations is None else stations
    n_stores = cfg.stores if stores is None else stores
    n_vehicles = cfg.vehicles if vehicles is None else vehicles
    if customers is None:
        scale = cylinders / cfg.cylinders if cfg.cylinders else 1.0
        n_customers = max(1, min(cfg.customers, round(cfg.customers * scale)))
    else:
        n_customers = customers
    if min(n_companies, n_stations, n_customers) < 1 or min(cylinders, n_stores, n_vehicles) < 0:
        raise ValueError(
            "a city needs at least 1 company, filling station and customer, "
            "and no negative count of cylinders, stores or vehicles"
        )
    seed = cfg.random_seed if random_seed is None else random_seed
    day = today or date.today()
    districts = load_districts(districts_path)
    specs = [s for s in SPEC_WEIGHTS if s in settings.models] or sorted(settings.models)
    if not specs:
        raise ValueError("no cylinder models configured ([models.*] in the settings)")

    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ADVISORY_LOCK)
        existing = int(await conn.fetchval("SELECT count(*) FROM cylinders"))
        if existing:
            raise AlreadySeeded(existing)
        await conn.execute(
            "LOCK TABLE companies, sites, entrustments, customers, devices, cylinders "
            "IN SHARE ROW EXCLUSIVE MODE"
        )
        # index rebuilds at the end sort a million keys: give them room (this transaction only)
        await conn.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
        builder = _CityBuilder(conn, settings, districts, specs, random.Random(seed), day, progress)
        summary = await builder.build(
            n_companies=n_companies,
            n_stations=n_stations,
            n_stores=n_stores,
            n_customers=n_customers,
            n_vehicles=n_vehicles,
            n_cylinders=cylinders,
        )
    # fresh statistics, or the planner guesses at a million rows it has never seen
    for table in ("companies", "sites", "customers", "devices", "cylinders", "events", "fills"):
        await conn.execute(f"ANALYZE {table}")
    summary.seconds = time.perf_counter() - started
    return summary


class _CityBuilder:
    """One seed run: holds the random stream and what earlier steps created."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        settings: Settings,
        districts: list[District],
        specs: list[str],
        rng: random.Random,
        today: date,
        progress: bool,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.districts = districts
        self.by_code = {d.code: d for d in districts}
        self.specs = specs
        self.rng = rng
        self.today = today
        self.clock = _Clock(today, settings)
        self.progress = progress and sys.stderr.isatty()
        self.summary = SeedSummary()
        self.companies: list[_Company] = []
        self.company_by_id: dict[int, _Company] = {}
        self.sites: list[_Site] = []
        self.agencies: list[_Site] = []
        self.vehicles: list[_Vehicle] = []
        self.guns: dict[int, list[str]] = {}
        self.company_cum: list[float] = []
        self.account_seq: dict[int, int] = {}
        self.dec = _Decimals()
        codes = [d.code for d in districts]
        self.home_weights = list(itertools.accumulate(_weights_for(codes, DISTRICT_WEIGHTS)))
        self.station_weights = list(
            itertools.accumulate(_weights_for(codes, STATION_DISTRICT_WEIGHTS))
        )

    def _district(self, cum_weights: list[float]) -> District:
        return self.rng.choices(self.districts, cum_weights=cum_weights)[0]

    async def build(
        self,
        *,
        n_companies: int,
        n_stations: int,
        n_stores: int,
        n_customers: int,
        n_vehicles: int,
        n_cylinders: int,
    ) -> SeedSummary:
        await self._districts()
        await self._companies(n_companies)
        await self._sites(n_stations, n_stores)
        await self._entrustments()
        customers = await self._customers(n_customers)
        await self._devices(n_vehicles)
        await self._users()
        await self._cylinders(n_cylinders, customers)
        return self.summary

    # -- master data -------------------------------------------------------------

    async def _districts(self) -> None:
        """Upsert the configured districts (a re-seed after editing the file updates them)."""
        await self.conn.executemany(
            """INSERT INTO districts (code, name, name_en, boundary)
               VALUES ($1, $2, $3, $4::text::jsonb)
               ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name,
                   name_en = EXCLUDED.name_en, boundary = EXCLUDED.boundary""",
            [
                (d.code, d.name, d.name_en, orjson.dumps(d.geometry).decode())
                for d in self.districts
            ],
        )
        self.summary.districts = len(self.districts)

    async def _companies(self, n: int) -> None:
        rng = self.rng
        names: list[tuple[str, str, float]] = list(NAMED_COMPANIES[:n])
        words = list(GENERATED_COMPANY_WORDS)
        rng.shuffle(words)
        for i in range(len(names), n):
            word = words[i % len(words)] + ("" if i < len(words) else str(i // len(words) + 1))
            names.append((f"郑州市{word}液化气有限公司", f"{word}液化气", 4.0 / (1 + i) ** 0.5))
        licence_days = self.settings.alerts.licence_expiring_days
        # the smallest companies carry the licence problems; ZZ-G001 (the demo company) never
        suspended = n - 1 if n >= 3 else -1
        expiring = (
            set(range(max(1, n - 1 - COMPANIES_LICENCE_EXPIRING), n - 1)) if n >= 3 else set()
        )
        first = await _reserve_ids(self.conn, "companies", n)
        rows = []
        for i, (name, short, weight) in enumerate(names):
            d = self._district(self.home_weights)
            status = "valid"
            if i == suspended:
                expiry = self.today - timedelta(days=rng.randint(*LICENCE_EXPIRED_DAYS))
                status = "suspended"
            elif i in expiring:
                expiry = self.today + timedelta(days=rng.randint(3, max(3, licence_days - 2)))
            else:
                expiry = self.today + timedelta(
                    days=rng.randint(licence_days + 60, LICENCE_LEFT_DAYS_MAX)
                )
            issued = expiry.year - LICENCE_TERM_YEARS
            company = _Company(first + i, f"ZZ-G{i + 1:03d}", name, short, weight)
            self.companies.append(company)
            rows.append(
                (
                    company.id,
                    company.code,
                    name,
                    d.code,
                    f"豫{issued}01{i + 1:04d}G",
                    expiry,
                    status,
                    _person_name(rng),
                    _phone(rng),
                    _address(d, rng),
                )
            )
        await self.conn.copy_records_to_table(
            "companies",
            records=rows,
            columns=_words(
                "id code name district_code licence_no licence_expiry licence_status "
                "contact_name contact_phone address"
            ),
        )
        self.company_by_id = {c.id: c for c in self.companies}
        self.company_cum = list(itertools.accumulate(c.weight for c in self.companies))
        self.summary.companies = n

    async def _sites(self, n_stations: int, n_stores: int) -> None:
        rng = self.rng
        alerts = self.settings.alerts
        companies = self.companies
        fillers = companies[: max(1, len(companies) - ENTRUSTING_COMPANIES)]
        # every filling company gets one station, the rest go by market weight
        owners = [fillers[i % len(fillers)] for i in range(min(n_stations, len(fillers)))]
        owners += rng.choices(
            fillers, weights=[c.weight for c in fillers], k=n_stations - len(owners)
        )
        store_owners = rng.choices(companies, weights=[c.weight for c in companies], k=n_stores)
        n_warehouses = max(1, n_stations // WAREHOUSE_PER_STATIONS)
        warehouse_owners = fillers[:n_warehouses]
        plan: list[tuple[str, _Company | None]] = (
            [("filling_station", c) for c in owners]
            + [("store", c) for c in store_owners]
            + [("warehouse", c) for c in warehouse_owners]
            + [("inspection_agency", None) for _ in INSPECTION_AGENCIES]
        )
        first = await _reserve_ids(self.conn, "sites", len(plan))
        counters: Counter[str] = Counter()
        prefixes = {
            "filling_station": "S",
            "store": "D",
            "warehouse": "W",
            "inspection_agency": "J",
        }
        default_storage = {
            "filling_station": alerts.default_storage_filling_station,
            "store": alerts.default_storage_store,
            "warehouse": alerts.default_storage_warehouse,
            "inspection_agency": 0,
        }
        # licence trouble goes to the last stations; the demo operator's station stays valid
        station_ids = list(range(n_stations))
        suspended = set(station_ids[-STATIONS_SUSPENDED:]) if n_stations > 2 else set()
        expiring = (
            set(
                station_ids[-(STATIONS_SUSPENDED + STATIONS_LICENCE_EXPIRING) : -STATIONS_SUSPENDED]
            )
            if n_stations > STATIONS_SUSPENDED + STATIONS_LICENCE_EXPIRING + 1
            else set()
        )
        rows = []
        for i, (kind, company) in enumerate(plan):
            counters[kind] += 1
            k = counters[kind]
            d = self._district(self.station_weights if kind != "store" else self.home_weights)
            lat, lon = d.random_point(rng)
            road = rng.choice(ROADS.get(d.code, GENERIC_ROADS))
            permitted: int | None = None
            licence_no = expiry = None
            status = "valid"
            if kind == "filling_station":
                assert company is not None
                name = f"{company.short}{road}充装站"
                licence_no = f"TS4241{k:03d}-"
                idx = k - 1
                if idx in suspended:
                    status = "suspended"
                    expiry = self.today + timedelta(days=rng.randint(90, 700))
                elif idx in expiring:
                    expiry = self.today + timedelta(
                        days=rng.randint(3, max(3, alerts.licence_expiring_days - 2))
                    )
                else:
                    expiry = self.today + timedelta(
                        days=rng.randint(alerts.licence_expiring_days + 60, LICENCE_LEFT_DAYS_MAX)
                    )
                licence_no += str(expiry.year)
            elif kind == "store":
                assert company is not None
                name = f"{company.short}{road}供应站"
            elif kind == "warehouse":
                assert company is not None
                name = f"{company.short}{d.name}储配库"
            else:
                name = INSPECTION_AGENCIES[k - 1]
            if kind != "inspection_agency" and rng.random() < PERMITTED_STORAGE_SET_SHARE:
                permitted = int(default_storage[kind] * rng.choice(PERMITTED_STORAGE_FACTORS))
            site = _Site(
                first + i,
                f"ZZ-{prefixes[kind]}{k:03d}",
                name,
                kind,
                None if company is None else company.id,
                d.code,
                lat,
                lon,
                permitted if permitted is not None else default_storage[kind],
            )
            self.sites.append(site)
            if company is not None and kind == "filling_station":
                company.stations.append(site)
            if company is not None and kind in ("filling_station", "warehouse"):
                company.depots.append(site)
            if kind == "inspection_agency":
                self.agencies.append(site)
            rows.append(
                (
                    site.id,
                    site.code,
                    name,
                    kind,
                    site.company_id,
                    d.code,
                    _address(d, rng),
                    lat,
                    lon,
                    permitted,
                    licence_no,
                    expiry,
                    status,
                )
            )
        await self.conn.copy_records_to_table(
            "sites",
            records=rows,
            columns=_words(
                "id code name kind company_id district_code address lat lon "
                "permitted_full_storage licence_no licence_expiry licence_status"
            ),
        )
        self.summary.filling_stations = counters["filling_station"]
        self.summary.stores = counters["store"]
        self.summary.warehouses = counters["warehouse"]
        self.summary.inspection_agencies = counters["inspection_agency"]

    async def _entrustments(self) -> None:
        """Companies without a station have a larger one fill for them (委托充装)."""
        rng = self.rng
        fillers = [c for c in self.companies if c.stations]
        rows = []
        for c in self.companies:
            if c.stations:
                c.fill_stations = c.stations
                continue
            filler = rng.choices(fillers, weights=[f.weight for f in fillers])[0]
            c.fill_stations = filler.stations
            valid_from = self.today - timedelta(days=rng.randint(60, 900))
            valid_to = self.today + timedelta(days=rng.randint(90, 700))
            rows.append((c.id, filler.id, valid_from, valid_to))
        if rows:
            await self.conn.copy_records_to_table(
                "entrustments",
                records=rows,
                columns=["owner_company_id", "filler_company_id", "valid_from", "valid_to"],
            )
        self.summary.entrustments = len(rows)

    async def _customers(self, n: int) -> _Customers:
        """Real-name accounts (实名制), spread over the districts by population."""
        out = _Customers()
        await self._copy_generated(
            "customers",
            _CUSTOMER_COLUMNS,
            n,
            lambda first, row, count: self._customer_rows(out, first, row, count),
        )
        out.finish()
        self.summary.customers = n
        return out

    def _customer_rows(
        self, out: _Customers, first_id: int, first_row: int, count: int
    ) -> list[tuple[Any, ...]]:
        rng = self.rng
        rand = rng.random
        companies = self.companies
        company_cum = self.company_cum
        company_total = company_cum[-1]
        kinds = list(CUSTOMER_KIND_SHARES)
        kind_cum = list(itertools.accumulate(CUSTOMER_KIND_SHARES.values()))
        kind_weight = CYLINDERS_PER_CUSTOMER_WEIGHT
        span_days = CUSTOMER_YEARS * 365
        start_ord = self.today.toordinal() - span_days
        local_regions = [d.code for d in self.districts]
        bis = bisect.bisect
        # districts first, then their points in one vectorized batch per district
        where = rng.choices(self.districts, cum_weights=self.home_weights, k=count)
        points: dict[str, Iterator[tuple[float, float]]] = {
            d.code: iter(d.random_points(rng, k)) for d, k in Counter(where).items()
        }
        rows: list[tuple[Any, ...]] = []
        for i, d in enumerate(where):
            company = companies[bis(company_cum, rand() * company_total)]
            kind = kinds[bis(kind_cum, rand() * kind_cum[-1])]
            lat, lon = next(points[d.code])
            seq = self.account_seq[company.id] = self.account_seq.get(company.id, 0) + 1
            if kind == "resident":
                name = _person_name(rng)
                regions = local_regions if rand() < LOCAL_BORN_SHARE else ID_REGION_CODES_ELSEWHERE
                masked = _masked_id(regions[int(rand() * len(regions))], rng)
                address = _home_address(d, rng)
            elif kind == "restaurant":
                name = f"{_pick(SURNAMES, rand)}记{_pick(DISHES, rand)}"
                masked = _masked_credit_code(d.code, rng, individual=True)
                address = _address(d, rng)
            else:
                name = f"郑州{_pick(BUSINESS_WORDS, rand)}{_pick(INDUSTRIAL_KINDS, rand)}"
                masked = _masked_credit_code(d.code, rng, individual=False)
                address = _address(d, rng)
            opened = date.fromordinal(
                start_ord + int((span_days - 1) * rand() ** CUSTOMER_GROWTH_SKEW)
            )
            cid = first_id + i
            out.add(cid, company.id, d.code, lat, lon, kind_weight[kind])
            rows.append(
                (
                    cid,
                    company.id,
                    f"{company.code}-{seq:07d}",
                    name,
                    masked,
                    _phone(rng),
                    address,
                    d.code,
                    lat,
                    lon,
                    kind,
                    opened,
                )
            )
        return rows

    async def _devices(self, n_vehicles: int) -> None:
        """Guns per station, handhelds per station and store, vehicles per company.

        Valves need no rows: a valve is addressed by its cylinder's tag (DESIGN §5).
        """
        rng = self.rng
        # (device_id, kind, company_id, site_id, name, plate_no, lat, lon)
        plan: list[tuple[str, str, int | None, int | None, str, str | None, float, float]] = []
        handhelds = {"filling_station": HANDHELDS_PER_STATION, "store": HANDHELDS_PER_STORE}
        for site in self.sites:
            if site.kind == "filling_station":
                guns = [
                    f"GUN-{site.code}-{g}" for g in range(1, rng.randint(*GUNS_PER_STATION) + 1)
                ]
                self.guns[site.id] = guns
                plan += [
                    (
                        gun,
                        "gun",
                        site.company_id,
                        site.id,
                        f"{site.name}{g}号枪",
                        None,
                        site.lat,
                        site.lon,
                    )
                    for g, gun in enumerate(guns, start=1)
                ]
            if site.kind in handhelds:
                plan += [
                    (
                        f"HH-{site.code}-{h}",
                        "handheld",
                        site.company_id,
                        site.id,
                        f"{site.name}手持终端{h}",
                        None,
                        site.lat,
                        site.lon,
                    )
                    for h in range(1, rng.randint(*handhelds[site.kind]) + 1)
                ]
        # vehicles belong to companies with a depot (station or warehouse) and start out
        # somewhere on their rounds
        operators = [c for c in self.companies if c.depots] or self.companies
        owners = rng.choices(operators, weights=[c.weight for c in operators], k=n_vehicles)
        per_company: Counter[int] = Counter()
        vehicles: list[tuple[int, str]] = []
        for company in owners:
            per_company[company.id] += 1
            depot = rng.choice(company.depots).id if company.depots else None
            d = self._district(self.home_weights)
            lat, lon = d.random_point(rng)
            vehicles.append((len(plan), d.code))
            plan.append(
                (
                    f"VEH-{company.code}-{per_company[company.id]:03d}",
                    "vehicle",
                    company.id,
                    depot,
                    f"{company.short}配送车",
                    _plate(rng),
                    lat,
                    lon,
                )
            )
        first = await _reserve_ids(self.conn, "devices", len(plan))
        await self.conn.copy_records_to_table(
            "devices",
            records=[(first + i, *row) for i, row in enumerate(plan)],
            columns=_words("id device_id kind company_id site_id name plate_no lat lon"),
        )
        for i, district in vehicles:
            device_id, _, company_id, _, _, _, lat, lon = plan[i]
            assert company_id is not None
            self.vehicles.append(_Vehicle(first + i, device_id, company_id, district, lat, lon))
        counts = Counter(row[1] for row in plan)
        self.summary.guns = counts["gun"]
        self.summary.handhelds = counts["handheld"]
        self.summary.vehicles = counts["vehicle"]

    async def _users(self) -> None:
        """The demo logins of :data:`DEMO_USERS`; existing usernames are left alone."""
        company = self.companies[0]
        station = (
            company.stations[0]
            if company.stations
            else next(s for s in self.sites if s.kind == "filling_station")
        )
        agency = self.agencies[0]
        known = [d.code for d in self.districts]
        created = 0
        for u in DEMO_USERS:
            districts = [c for c in u.districts if c in self.by_code]
            if u.districts and len(districts) < len(u.districts):
                districts = known[: len(u.districts)]  # a city configured without these codes
            company_id = site_id = None
            if u.binding == "company":
                company_id = company.id
            elif u.binding == "station":
                company_id, site_id = station.company_id, station.id
            elif u.binding == "agency":
                site_id = agency.id
            status = await self.conn.execute(
                """INSERT INTO users (username, password_hash, display_name, role, company_id,
                                      site_id, districts)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (username) DO NOTHING""",
                u.username,
                hash_password(self.settings.auth, u.password),
                u.display_name,
                u.role,
                company_id,
                site_id,
                districts,
            )
            created += status.endswith(" 1")
        self.summary.users = created

    # -- cylinders -----------------------------------------------------------------

    async def _copy_generated(
        self,
        table: str,
        columns: Sequence[str],
        n: int,
        make_rows: Callable[[int, int, int], list[tuple[Any, ...]]],
    ) -> None:
        """COPY *n* generated rows into *table* in chunks, generating ahead in a thread.

        PostgreSQL spends most of a chunk's time on foreign-key checks and index
        maintenance in its own process; a worker thread generating the next chunk
        meanwhile cuts the wall time on two cores. One worker, chunks in order: the rows
        are exactly those of a sequential run. ``make_rows(first_id, first_row, count)``
        must use ids from the block reserved here.

        The table's plain (non-unique) indexes are dropped for the load and rebuilt from
        their own definitions afterwards: sorting a million keys once is far cheaper than
        scattering them into live B-trees. Unique and constraint indexes stay, so
        uniqueness is checked as rows arrive.
        """
        first = await _reserve_ids(self.conn, table, n) if n else 0
        starts = list(range(0, n, CHUNK_ROWS))
        rebuild = await _drop_secondary_indexes(self.conn, table)
        loop = asyncio.get_running_loop()
        with (
            tqdm(total=n, desc=table, unit="row", disable=not self.progress) as bar,
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed") as worker,
        ):

            def submit(start: int) -> asyncio.Future[list[tuple[Any, ...]]]:
                size = min(CHUNK_ROWS, n - start)
                return loop.run_in_executor(worker, make_rows, first + start, start, size)

            # at most GENERATE_AHEAD chunks wait in memory, so a 1M seed stays flat
            ahead = deque(submit(start) for start in starts[:GENERATE_AHEAD])
            queued = len(ahead)
            while ahead:
                rows = await ahead.popleft()
                if queued < len(starts):
                    ahead.append(submit(starts[queued]))
                    queued += 1
                await self.conn.copy_records_to_table(table, records=rows, columns=columns)
                bar.update(len(rows))
        if rebuild:
            log.info("rebuilding %d indexes of %s", len(rebuild), table)
        for definition in rebuild:
            await self.conn.execute(definition)

    async def _cylinders(self, n: int, customers: _Customers) -> None:
        gen = _CylinderGenerator(self, customers, n)
        await self._copy_generated("cylinders", _CYLINDER_COLUMNS, n, gen.rows)
        await self._history(gen)
        self.summary.cylinders = n
        self.summary.compliance = dict(gen.compliance)
        self.summary.statuses = dict(gen.statuses)

    async def _history(self, gen: _CylinderGenerator) -> None:
        """Register and fill events, and fills, so the trajectory pages are not empty.

        Inserted through ``unnest`` rather than COPY: the jsonb columns use a text codec
        (server/db/pool.py) that binary COPY cannot carry.
        """
        for chunk in _chunks(gen.events, CHUNK_ROWS):
            await self.conn.execute(
                """INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition,
                                       site_id, company_id, device_id, operator, lat, lon,
                                       district_code, details)
                   SELECT ts, msg_id, cylinder_id, tag, kind, biz_step, disposition, site_id,
                          company_id, device_id, operator, lat, lon, district_code, details::jsonb
                   FROM unnest($1::timestamptz[], $2::text[], $3::bigint[], $4::text[],
                               $5::text[], $6::text[], $7::text[], $8::bigint[], $9::bigint[],
                               $10::text[], $11::text[], $12::float8[], $13::float8[],
                               $14::text[], $15::text[])
                        AS t(ts, msg_id, cylinder_id, tag, kind, biz_step, disposition, site_id,
                             company_id, device_id, operator, lat, lon, district_code, details)""",
                *[list(col) for col in zip(*chunk, strict=True)],
            )
        for chunk in _chunks(gen.fills, CHUNK_ROWS):
            await self.conn.execute(
                """INSERT INTO fills (ts, msg_id, ts_start, gun_id, station_id, company_id,
                                      district_code, cylinder_id, tag, spec, net_kg, tare_kg,
                                      gross_kg, result, assessment, operator, pre_check,
                                      post_check)
                   SELECT ts, msg_id, ts_start, gun_id, station_id, company_id, district_code,
                          cylinder_id, tag, spec, net_kg, tare_kg, gross_kg, result, assessment,
                          operator, pre_check::jsonb, post_check::jsonb
                   FROM unnest($1::timestamptz[], $2::text[], $3::timestamptz[], $4::text[],
                               $5::bigint[], $6::bigint[], $7::text[], $8::bigint[], $9::text[],
                               $10::text[], $11::numeric[], $12::numeric[], $13::numeric[],
                               $14::text[], $15::text[], $16::text[], $17::text[], $18::text[])
                        AS t(ts, msg_id, ts_start, gun_id, station_id, company_id, district_code,
                             cylinder_id, tag, spec, net_kg, tare_kg, gross_kg, result,
                             assessment, operator, pre_check, post_check)""",
                *[list(col) for col in zip(*chunk, strict=True)],
            )
        self.summary.events = len(gen.events)
        self.summary.fills = len(gen.fills)


class _Customers:
    """Column arrays of the seeded customers, for placing cylinders at them."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.company_ids: list[int] = []
        self.districts: list[str] = []
        self.lats: list[float] = []
        self.lons: list[float] = []
        self._weights: list[float] = []
        self.cum_weights: list[float] = []

    def add(
        self, cid: int, company_id: int, district: str, lat: float, lon: float, weight: float
    ) -> None:
        self.ids.append(cid)
        self.company_ids.append(company_id)
        self.districts.append(district)
        self.lats.append(lat)
        self.lons.append(lon)
        self._weights.append(weight)

    def finish(self) -> None:
        self.cum_weights = list(itertools.accumulate(self._weights))
        self._weights = []


_CUSTOMER_COLUMNS: Final = _words(
    "id company_id account_no name id_number_masked phone address district_code lat lon "
    "kind opened_on"
)
_CYLINDER_COLUMNS: Final = _words(
    "id tag stamp barcode owner_company_id medium spec volume_l tare_kg "
    "wall_thickness_mm manufacturer manufacture_date serial_no last_inspection_date "
    "next_inspection_date inspection_count scrap_date valve_type inspection_ring_no "
    "use_registration_no status tag_voided registered_at registered_by_site_id "
    "district_code fill_state location_kind location_site_id location_device_id "
    "location_customer_id last_fill_at last_fill_site_id last_return_at lat lon"
)


class _CylinderGenerator:
    """Generates cylinder rows chunk by chunk, plus the sampled history.

    This is the hot loop of the seed (a million iterations), so it is written for speed:
    locals bound once, ``int(rand() * n)`` instead of ``randrange``, dates as ordinals,
    and codes from injective scrambles of the row number instead of retry-until-unique.
    Rows are generated strictly in order from one random stream, so the output depends
    only on the random seed and ``today``.
    """

    def __init__(self, city: _CityBuilder, customers: _Customers, n: int) -> None:
        self.city = city
        self.customers = customers
        self.rng = city.rng
        rng = self.rng
        rules = city.settings.dates
        self.rules = rules
        today = city.today
        self.today = today
        self.n = n
        self.dec = city.dec
        self.compliance: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.events: list[tuple[Any, ...]] = []
        self.fills: list[tuple[Any, ...]] = []
        self.fill_seq = 0
        # Tags and barcodes rise with the row number in irregular steps (row k draws from
        # its own slot [k * stride, (k + 1) * stride)), as codes issued batch by batch do:
        # unique without a retry loop, and appended at the right edge of their unique
        # indexes instead of scattered through them (a 1M seed is several times faster).
        self.tag_stride = max(1, min(TAG_STRIDE_MAX, _TAG_SPACE // (n + 2)))
        self.barcode_stride = max(1, min(TAG_STRIDE_MAX, _BARCODE_SPACE // (n + 2)))
        # the stamp (钢印号) is the manufacturer's: a scramble (multiplier coprime to 10⁸)
        self.stamp_mult = 48_271
        self.stamp_off = rng.randrange(10**8)
        # manufacture-date ranges (ordinals) of each life class, all from the configured rules
        design_floor = add_years(today, -rules.design_life_years).toordinal()
        absolute_floor = add_years(today, -rules.absolute_scrap_age_years).toordinal()
        oldest = add_years(
            today, -(rules.absolute_scrap_age_years + OLDEST_BEYOND_SCRAP_YEARS)
        ).toordinal()
        campaign = add_years(today, -rules.inspection_interval_years).toordinal()
        self.mfg_range = {
            "normal": (design_floor + 1, today.toordinal()),
            "extended": (absolute_floor + 1, design_floor),
            "scrapped": (oldest, design_floor - 30),
            "campaign": (campaign, campaign + rules.inspection_due_days),
        }
        self.early_window = timedelta(days=INSPECTION_EARLY_DAYS)
        self.days = [timedelta(days=d) for d in range(INSPECTION_EARLY_DAYS + 1)]
        # models
        models = city.settings.models
        self.specs = city.specs
        self.spec_cum = list(itertools.accumulate(SPEC_WEIGHTS.get(s, 1.0) for s in self.specs))
        self.volume = {s: self.dec(models[s].volume_l) for s in self.specs}
        self.max_fill = {s: models[s].max_fill_kg for s in self.specs}
        self.tare = {s: TARE_KG.get(s, DEFAULT_TARE_KG) for s in self.specs}
        self.wall = {s: WALL_MM.get(s, DEFAULT_WALL_MM) for s in self.specs}
        self.mfr = [(m[0], m[1]) for m in MANUFACTURERS]
        self.mfr_cum = list(itertools.accumulate(m[2] for m in MANUFACTURERS))
        # placement: sites by capacity, customers by kind weight, vehicles evenly
        self.stock_sites = [s for s in city.sites if s.kind != "inspection_agency"]
        self.site_cum = list(itertools.accumulate(max(s.capacity, 1) for s in self.stock_sites))
        capacity = sum(s.capacity for s in self.stock_sites)
        site_share = min(AT_SITES_SHARE, capacity * MAX_SITE_UTILISATION / max(n, 1))
        self.p_site = site_share if self.stock_sites else 0.0
        self.p_vehicle = self.p_site + (ON_VEHICLE_SHARE if city.vehicles else 0.0)
        self.stations = [s for s in city.sites if s.kind == "filling_station"]
        self.company_cum = list(itertools.accumulate(c.weight for c in city.companies))
        self.register_budget = min(REGISTER_EVENTS_MAX, round(n * REGISTER_EVENT_SHARE) or 1)
        self.fill_budget = min(FILL_HISTORY_MAX, round(n * FILL_HISTORY_SHARE) or 1)
        self.operators = [_person_name(rng) for _ in range(max(8, len(self.stations) * 2))]
        self.register_kind = epcis_for(EventKind.register)
        self.fill_kind = epcis_for(EventKind.fill)

    # ---- dates

    def _dates(self, klass: str) -> tuple[date, date | None, date, int, date]:
        """(manufacture, last inspection, next inspection, inspections, scrap date).

        Simulates the cylinder's inspections from manufacture: each falls due
        ``inspection_interval_years`` after the previous one (derive_next_inspection); some
        are done up to INSPECTION_EARLY_DAYS early; the latest one that fell due may have
        been missed (the cylinder is then overdue). For an "extended" cylinder, the
        inspection at its design life extends the scrap date to the absolute scrap age
        (derive_scrap_date); if that one was missed it is past its scrap date yet in service.
        """
        rand = self.rng.random
        rules = self.rules
        today = self.today
        lo, hi = self.mfg_range[klass]
        if klass == "normal":  # a growing fleet: more young cylinders than old ones
            mfg = date.fromordinal(hi - int((hi - lo) * rand() ** FLEET_GROWTH_SKEW))
        else:
            mfg = date.fromordinal(lo + int(rand() * max(hi - lo, 1)))
        horizon = today
        if klass == "scrapped":
            horizon = min(today, add_years(mfg, rules.design_life_years))
        design_window = add_years(mfg, rules.design_life_years) - self.early_window
        interval = rules.inspection_interval_years
        scrap = derive_scrap_date(mfg, rules)
        last: date | None = None
        count = 0
        due = derive_next_inspection(mfg, None, rules)
        extended = False
        days = self.days
        while True:
            when = due
            if rand() < INSPECTED_EARLY_SHARE:
                when = due - days[1 + int(rand() * INSPECTION_EARLY_DAYS)]
            if when > horizon:
                break
            # the inspection at the design life is the one that may extend it
            extends = klass == "extended" and not extended and due >= design_window
            if when >= scrap and not extends:
                break
            if (
                due <= horizon
                and klass != "scrapped"
                and add_years(when, interval) > horizon
                and rand() < INSPECTION_MISSED_SHARE
            ):
                break  # missed: overdue since `due`
            last = when
            count += 1
            if extends:
                scrap = derive_scrap_date(
                    mfg, rules, add_years(mfg, rules.absolute_scrap_age_years)
                )
                extended = True
            due = derive_next_inspection(mfg, last, rules)
        return mfg, last, due, count, scrap

    # ---- rows

    def rows(self, first_id: int, first_row: int, count: int) -> list[tuple[Any, ...]]:
        """Rows ``first_row .. first_row + count - 1`` of the seed, with ids from *first_id*.

        Codes (tag, stamp, barcode …) derive from the row number, not the id, so the same
        seed gives the same codes whatever ids the database hands out.
        """
        rng = self.rng
        rand = rng.random
        city = self.city
        today = self.today
        today_ord = today.toordinal()
        yesterday = date.fromordinal(today_ord - 1)
        rules = self.rules
        on_day = city.clock.on_day
        days_ago = city.clock.days_ago
        dec = self.dec
        cust = self.customers
        specs, spec_cum, spec_total = self.specs, self.spec_cum, self.spec_cum[-1]
        mfr, mfr_cum, mfr_total = self.mfr, self.mfr_cum, self.mfr_cum[-1]
        sites, site_cum = self.stock_sites, self.site_cum
        site_total = site_cum[-1] if site_cum else 0
        cust_cum, cust_total = cust.cum_weights, cust.cum_weights[-1]
        agencies = city.agencies
        vehicles = city.vehicles
        stations = self.stations
        company_by_id = city.company_by_id
        p_site, p_vehicle = self.p_site, self.p_vehicle
        tare, wall, volume = self.tare, self.wall, self.volume
        tag_stride, barcode_stride = self.tag_stride, self.barcode_stride
        stamp_mult, stamp_off = self.stamp_mult, self.stamp_off
        compliance_counts, status_counts = self.compliance, self.statuses
        full_lo, full_span = (
            FILLED_DAYS_AGO_FULL[0],
            FILLED_DAYS_AGO_FULL[1] - FILLED_DAYS_AGO_FULL[0] + 1,
        )
        empty_lo, empty_span = (
            FILLED_DAYS_AGO_EMPTY[0],
            FILLED_DAYS_AGO_EMPTY[1] - FILLED_DAYS_AGO_EMPTY[0] + 1,
        )
        reg_lo = REGISTRATION_DELAY_DAYS[0]
        reg_span = REGISTRATION_DELAY_DAYS[1] - REGISTRATION_DELAY_DAYS[0] + 1
        p_extended = SCRAPPED_SHARE + EXTENDED_LIFE_SHARE
        p_campaign = p_extended + CAMPAIGN_SHARE
        p_suspended = LOST_SHARE + SUSPENDED_SHARE
        p_in_inspection = p_suspended + IN_INSPECTION_SHARE
        bis = bisect.bisect
        out: list[tuple[Any, ...]] = []
        for row in range(first_row, first_row + count):
            cid = first_id + row - first_row
            seq = row + 1
            # ---- life class and dates
            r = rand()
            if r < SCRAPPED_SHARE:
                klass = "scrapped"
            elif r < p_extended:
                klass = "extended"
            elif r < p_campaign:
                klass = "campaign"
            else:
                klass = "normal"
            mfg, last, nxt, n_insp, scrap = self._dates(klass)
            mfg_ord = mfg.toordinal()
            # ---- record status
            status = "in_service"
            if klass == "scrapped":
                status = "scrapped"
            else:
                r = rand()
                if r < LOST_SHARE:
                    status = "lost"
                elif r < p_suspended:
                    status = "suspended"
                elif r < p_in_inspection:
                    status = "in_inspection"
                elif today_ord - mfg_ord < NOT_ACTIVATED_NEW_DAYS and rand() < NOT_ACTIVATED_OF_NEW:
                    status = "not_activated"
            # ---- where it is, and so whose it is
            agency = agencies[int(rand() * len(agencies))]
            loc_site = loc_device = loc_customer = None
            last_fill_at = last_return_at = None
            fill_state = "empty"
            if status in ("scrapped", "in_inspection"):
                loc_kind = "site"
                loc_site = agency.id
                district, lat, lon = agency.district, agency.lat, agency.lon
                owner_id = self._any_owner()
            elif status in ("not_activated", "suspended") and stations:
                loc_kind = "site"
                site = stations[int(rand() * len(stations))]
                loc_site = site.id
                district, lat, lon = site.district, site.lat, site.lon
                owner_id = site.company_id or self._any_owner()
            else:
                u = rand()
                if u < p_site:
                    site = sites[bis(site_cum, rand() * site_total)]
                    loc_kind = "site"
                    loc_site = site.id
                    district, lat, lon = site.district, site.lat, site.lon
                    owner_id = site.company_id or self._any_owner()
                    full_share = FULL_AT_SITE
                elif u < p_vehicle:
                    veh = vehicles[int(rand() * len(vehicles))]
                    loc_kind = "vehicle"
                    loc_device = veh.id
                    district, lat, lon = veh.district, veh.lat, veh.lon
                    owner_id = veh.company_id
                    full_share = FULL_ON_VEHICLE
                else:
                    k = bis(cust_cum, rand() * cust_total)
                    loc_kind = "customer"
                    loc_customer = cust.ids[k]
                    district, lat, lon = cust.districts[k], cust.lats[k], cust.lons[k]
                    owner_id = cust.company_ids[k]
                    full_share = FULL_AT_CUSTOMER
                if status == "lost":
                    loc_kind = "unknown"  # last seen at the place drawn above
                    loc_site = loc_device = loc_customer = None
                elif rand() < full_share:
                    fill_state = "full"
            # ---- model and make
            spec = specs[bis(spec_cum, rand() * spec_total)]
            tare_lo, tare_hi = tare[spec]
            tare_kg = dec(tare_lo + (tare_hi - tare_lo) * rand())
            wall_lo, wall_hi = wall[spec]
            mname, mprefix = mfr[bis(mfr_cum, rand() * mfr_total)]
            compliance = compliance_status(status, nxt, scrap, today, rules).value
            compliance_counts[compliance] += 1
            status_counts[status] += 1
            tag = f"{TAG_PREFIX}{seq * tag_stride + int(rand() * tag_stride):09X}"
            # ---- live state: last fill and return
            company = company_by_id[owner_id]
            last_fill_site = None
            if status == "in_service" and company.fill_stations:
                if fill_state == "full":
                    back = full_lo + int(rand() * full_span)
                else:
                    back = empty_lo + int(rand() * empty_span)
                # an overdue or expired cylinder was last filled while it was still in date
                fill_day = min(date.fromordinal(today_ord - back), yesterday, nxt, scrap - _ONE_DAY)
                if fill_day > mfg:
                    fill_sites = company.fill_stations
                    station = fill_sites[int(rand() * len(fill_sites))]
                    last_fill_site = station.id
                    last_fill_at = on_day(fill_day, rand)
                    if (
                        self.fill_budget
                        and compliance not in ("scrapped", "overdue")
                        and rand() < FILL_HISTORY_SHARE
                    ):
                        last_fill_at = self._fill_history(
                            cid, tag, spec, owner_id, station, fill_day, tare_kg
                        )
                if fill_state == "empty" and loc_kind == "site":
                    last_return_at = days_ago(RETURNED_DAYS_AGO[0], RETURNED_DAYS_AGO[1], rand)
            reg_day = date.fromordinal(
                min(mfg_ord + reg_lo + int(rand() * reg_span), today_ord - 1)
            )
            registered_at = on_day(reg_day, rand)
            if self.register_budget and rand() < REGISTER_EVENT_SHARE:
                self._register_event(cid, tag, registered_at, agency, owner_id)
            out.append(
                (
                    cid,
                    tag,
                    f"ZZ{(seq * stamp_mult + stamp_off) % 100_000_000:08d}",
                    f"{BARCODE_PREFIX}{seq * barcode_stride + int(rand() * barcode_stride):012d}",
                    owner_id,
                    "LPG",
                    spec,
                    volume[spec],
                    tare_kg,
                    dec(wall_lo + (wall_hi - wall_lo) * rand()),
                    mname,
                    mfg,
                    f"{mprefix}{mfg.year}{seq:07d}",
                    last,
                    nxt,
                    n_insp,
                    scrap,
                    "ordinary" if rand() < ORDINARY_VALVE_SHARE else "smart",
                    None if last is None else f"{agency.code[3:]}-{last.year}-{seq:07d}",
                    f"瓶豫A{seq:08d}",
                    status,
                    status == "scrapped",
                    registered_at,
                    agency.id,
                    district,
                    fill_state,
                    loc_kind,
                    loc_site,
                    loc_device,
                    loc_customer,
                    last_fill_at,
                    last_fill_site,
                    last_return_at,
                    lat,
                    lon,
                )
            )
        return out

    def _any_owner(self) -> int:
        """Owner of a cylinder away from its company (at an agency): by market weight."""
        cum = self.company_cum
        return self.city.companies[bisect.bisect(cum, self.rng.random() * cum[-1])].id

    def _register_event(
        self, cid: int, tag: str, ts: datetime, agency: _Site, owner_id: int
    ) -> None:
        self.register_budget -= 1
        self.events.append(
            (
                ts,
                f"seed-reg-{cid}",
                cid,
                tag,
                EventKind.register.value,
                self.register_kind.biz_step,
                self.register_kind.disposition,
                agency.id,
                owner_id,
                None,
                None,
                agency.lat,
                agency.lon,
                agency.district,
                '{"source": "seed"}',
            )
        )

    def _fill_history(
        self,
        cid: int,
        tag: str,
        spec: str,
        owner_id: int,
        station: _Site,
        fill_day: date,
        tare_kg: Decimal,
    ) -> datetime:
        """One or two fills within HISTORY_DAYS, the last on *fill_day*; returns its time."""
        self.fill_budget -= 1
        rng = self.rng
        settings = self.city.settings
        clock = self.city.clock
        days_back = (self.today - fill_day).days
        days = [min(days_back, HISTORY_DAYS)]
        if rng.random() < SECOND_FILL_SHARE and days[0] + FILL_SPACING_DAYS <= HISTORY_DAYS:
            days.append(rng.randint(days[0] + FILL_SPACING_DAYS, HISTORY_DAYS))
        guns = self.city.guns.get(station.id) or [f"GUN-{station.code}-1"]
        latest: datetime | None = None
        max_fill = self.max_fill[spec]
        for back in days:
            ts = clock.on_day(self.today - timedelta(days=back), rng.random)
            latest = ts if latest is None or ts > latest else latest
            r = rng.random()
            if r < OVERFILL_SHARE:
                net = max_fill + rng.uniform(*OVERFILL_BY_KG)
            elif r < OVERFILL_SHARE + UNDERFILL_SHARE:
                net = max_fill - rng.uniform(*UNDERFILL_BY_KG)
            else:
                net = max_fill - rng.uniform(*FAIR_FILL_SHORT_KG)
            net = round(net, 2)
            assessment = assess_fill(spec, net, settings.models, settings.filling).value
            self.fill_seq += 1
            msg_id = f"seed-fill-{self.fill_seq}"
            gun = guns[int(rng.random() * len(guns))]
            operator = self.operators[int(rng.random() * len(self.operators))]
            details = orjson.dumps(
                {"source": "seed", "net_kg": net, "result": "completed", "assessment": assessment}
            ).decode()
            self.fills.append(
                (
                    ts,
                    msg_id,
                    ts - timedelta(seconds=rng.randint(*FILL_DURATION_S)),
                    gun,
                    station.id,
                    station.company_id,
                    station.district,
                    cid,
                    tag,
                    spec,
                    Decimal(f"{net:.2f}"),
                    tare_kg,
                    tare_kg + Decimal(f"{net:.2f}"),
                    "completed",
                    assessment,
                    operator,
                    _PRE_CHECK_JSON,
                    _POST_CHECK_JSON,
                )
            )
            self.events.append(
                (
                    ts,
                    msg_id,
                    cid,
                    tag,
                    EventKind.fill.value,
                    self.fill_kind.biz_step,
                    self.fill_kind.disposition,
                    station.id,
                    owner_id,
                    gun,
                    operator,
                    station.lat,
                    station.lon,
                    station.district,
                    details,
                )
            )
        assert latest is not None
        return latest


_ONE_DAY: Final = timedelta(days=1)
_PRE_CHECK_JSON: Final = orjson.dumps(dict.fromkeys(PRE_CHECK_ITEMS, True)).decode()
_POST_CHECK_JSON: Final = orjson.dumps(dict.fromkeys(POST_CHECK_ITEMS, True)).decode()


# ------------------------------------------------------------------ command


def _count(text: str) -> int:
    """argparse type: a count, refused before anything is touched when negative."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``cylwatch seed``."""
    p = sub.add_parser(
        "seed",
        help="build the synthetic Zhengzhou-like demo city",
        description=(
            "Create a synthetic demo city: districts from config/districts.geojson, gas\n"
            "companies, filling stations, stores, customers, devices and cylinders with a\n"
            "realistic spread of inspection and scrap dates, plus demo logins. Migrates the\n"
            "database first. Sizes default to [seed] in the settings."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--cylinders", type=_count, metavar="N", help="cylinders (default [seed] cylinders)"
    )
    p.add_argument("--companies", type=_count, metavar="N", help="gas companies")
    p.add_argument("--stations", type=_count, metavar="N", help="filling stations")
    p.add_argument("--stores", type=_count, metavar="N", help="stores (供应站)")
    p.add_argument(
        "--customers",
        type=_count,
        metavar="N",
        help="real-name customers (default [seed] customers, scaled down for a smaller city)",
    )
    p.add_argument("--vehicles", type=_count, metavar="N", help="delivery vehicles")
    p.add_argument("--random-seed", type=int, metavar="N", help="random seed (default [seed])")
    p.add_argument(
        "--if-empty",
        action="store_true",
        help="do nothing (exit 0) if the database already holds cylinders",
    )
    p.add_argument("--database-url", metavar="URL", help="override [services] database_url")
    p.set_defaults(func=run_seed)


async def run_seed(args: argparse.Namespace, settings: Settings) -> int:
    """`cylwatch seed`: migrate, then seed unless already seeded; print the demo logins."""
    dsn = getattr(args, "database_url", None) or settings.services.database_url
    cylinders = settings.seed.cylinders if args.cylinders is None else args.cylinders
    await migrate(settings, dsn)
    conn = await connect(settings, dsn)
    try:
        existing = int(await conn.fetchval("SELECT count(*) FROM cylinders"))
        if existing and args.if_empty:
            print(f"database already seeded ({existing:,} cylinders); nothing to do")
            return 0
        try:
            summary = await seed_city(
                conn,
                settings,
                cylinders=cylinders,
                companies=args.companies,
                stations=args.stations,
                stores=args.stores,
                customers=args.customers,
                vehicles=args.vehicles,
                random_seed=args.random_seed,
            )
        except AlreadySeeded as exc:
            if args.if_empty:  # seeded by someone else between our check and our lock
                print(f"database already seeded ({exc.cylinders:,} cylinders); nothing to do")
                return 0
            print(f"cylwatch seed: {exc}", file=sys.stderr)
            return 1
        except (ValueError, OSError) as exc:  # bad counts, unreadable districts file
            print(f"cylwatch seed: {exc}", file=sys.stderr)
            return 2
        except asyncpg.UniqueViolationError as exc:
            print(
                "cylwatch seed: the database already holds master data that clashes with the "
                f"demo city ({exc.constraint_name}); use a fresh database",
                file=sys.stderr,
            )
            return 1
    finally:
        await conn.close()
    print("seeded the demo city:")
    for line in summary.lines():
        print(f"  {line}")
    if not getattr(args, "quiet_logins", False):  # `cylwatch demo` prints them after the URLs
        print("demo logins:")
        print(format_demo_users())
    return 0
