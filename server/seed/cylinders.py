"""The cylinders of the demo city: dates, status, place, model and codes, a million rows fast.

Dates are derived with the same domain functions (`server.domain.dates`) that the importer
and the gun's authorization use, so the demo fleet obeys the configured rules
(docs/CONFIG.md `[dates]`): each cylinder's inspections are simulated from its manufacture
date, some early, some missed (overdue), some extending the design life. Where a cylinder
is (customer, site, vehicle, agency) decides whose it is.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Final

from server.domain.dates import (
    add_years,
    compliance_status,
    derive_next_inspection,
    derive_scrap_date,
)
from server.seed.history import History
from server.seed.names import words
from server.seed.records import Customers, Site
from server.seed.shape import (
    AT_SITES_SHARE,
    BARCODE_PREFIX,
    BARCODE_SPACE,
    CAMPAIGN_SHARE,
    DEFAULT_TARE_KG,
    DEFAULT_WALL_MM,
    EXTENDED_LIFE_SHARE,
    FILL_HISTORY_SHARE,
    FILLED_DAYS_AGO_EMPTY,
    FILLED_DAYS_AGO_FULL,
    FLEET_GROWTH_SKEW,
    FULL_AT_CUSTOMER,
    FULL_AT_SITE,
    FULL_ON_VEHICLE,
    IN_INSPECTION_SHARE,
    INSPECTED_EARLY_SHARE,
    INSPECTION_EARLY_DAYS,
    INSPECTION_MISSED_SHARE,
    LOST_SHARE,
    MANUFACTURERS,
    MAX_SITE_UTILISATION,
    NOT_ACTIVATED_NEW_DAYS,
    NOT_ACTIVATED_OF_NEW,
    OLDEST_BEYOND_SCRAP_YEARS,
    ON_VEHICLE_SHARE,
    ORDINARY_VALVE_SHARE,
    REGISTER_EVENT_SHARE,
    REGISTRATION_DELAY_DAYS,
    RETURNED_DAYS_AGO,
    SCRAPPED_SHARE,
    SPEC_WEIGHTS,
    SUSPENDED_SHARE,
    TAG_PREFIX,
    TAG_SPACE,
    TAG_STRIDE_MAX,
    TARE_KG,
    WALL_MM,
)

if TYPE_CHECKING:
    from server.seed.city import CityBuilder

CYLINDER_COLUMNS: Final = words(
    "id tag stamp barcode owner_company_id medium spec volume_l tare_kg "
    "wall_thickness_mm manufacturer manufacture_date serial_no last_inspection_date "
    "next_inspection_date inspection_count scrap_date valve_type inspection_ring_no "
    "use_registration_no status tag_voided registered_at registered_by_site_id "
    "district_code fill_state location_kind location_site_id location_device_id "
    "location_customer_id last_fill_at last_fill_site_id last_return_at lat lon"
)
_ONE_DAY: Final = timedelta(days=1)


class CylinderGenerator:
    """Generates cylinder rows chunk by chunk, and samples their history (`History`).

    This is the hot loop of the seed (a million iterations), so it is written for speed:
    locals bound once, ``int(rand() * n)`` instead of ``randrange``, dates as ordinals,
    and codes from injective scrambles of the row number instead of retry-until-unique.
    Rows are generated strictly in order from one random stream, so the output depends
    only on the random seed and ``today``.
    """

    def __init__(self, city: CityBuilder, customers: Customers, n: int) -> None:
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
        # Tags and barcodes rise with the row number in irregular steps (row k draws from
        # its own slot [k * stride, (k + 1) * stride)), as codes issued batch by batch do:
        # unique without a retry loop, and appended at the right edge of their unique
        # indexes instead of scattered through them (a 1M seed is several times faster).
        self.tag_stride = max(1, min(TAG_STRIDE_MAX, TAG_SPACE // (n + 2)))
        self.barcode_stride = max(1, min(TAG_STRIDE_MAX, BARCODE_SPACE // (n + 2)))
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
        self.history = History(rng, city.settings, city.clock, city.guns, n, len(self.stations))

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
        history = self.history
        timeline = city.timeline
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
            where: Site | None = None
            k = vi = None
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
                    site = where = sites[bis(site_cum, rand() * site_total)]
                    loc_kind = "site"
                    loc_site = site.id
                    district, lat, lon = site.district, site.lat, site.lon
                    owner_id = site.company_id or self._any_owner()
                    full_share = FULL_AT_SITE
                elif u < p_vehicle:
                    vi = int(rand() * len(vehicles))
                    veh = vehicles[vi]
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
            reg_day = date.fromordinal(
                min(mfg_ord + reg_lo + int(rand() * reg_span), today_ord - 1)
            )
            company = company_by_id[owner_id]
            last_fill_site = None
            if timeline is not None:
                last_fill_at, last_fill_site, last_return_at = timeline.live_state(
                    cid=cid,
                    tag=tag,
                    spec=spec,
                    owner_id=owner_id,
                    tare_kg=tare_kg,
                    status=status,
                    mfg=mfg,
                    last_inspection=last,
                    next_inspection=nxt,
                    scrap=scrap,
                    registered=reg_day,
                    agency=agency,
                    loc_kind=loc_kind,
                    site=where,
                    customer=k,
                    vehicle=vi,
                    full=fill_state == "full",
                )
            elif status == "in_service" and company.fill_stations:
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
                        history.fill_budget
                        and compliance not in ("scrapped", "overdue")
                        and rand() < FILL_HISTORY_SHARE
                    ):
                        last_fill_at = history.fills_until(
                            cid, tag, spec, owner_id, station, fill_day, tare_kg
                        )
                if fill_state == "empty" and loc_kind == "site":
                    last_return_at = days_ago(RETURNED_DAYS_AGO[0], RETURNED_DAYS_AGO[1], rand)
            registered_at = on_day(reg_day, rand)
            if timeline is not None and timeline.register(
                registered_at, cid, tag, agency, owner_id
            ):
                pass  # written with its month of the history
            elif history.register_budget and rand() < REGISTER_EVENT_SHARE:
                history.register(cid, tag, registered_at, agency, owner_id)
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
