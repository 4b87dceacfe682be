"""Real-name customers (实名制) of the demo city: households, restaurants and factories.

Spread over the districts by population (shape.py DISTRICT_WEIGHTS), each with an account
at a company chosen by market weight. Identity and credit codes are generated already
masked (`server.seed.names`), as the real system stores them.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter
from collections.abc import Iterator
from datetime import date
from typing import TYPE_CHECKING, Any, Final

from server.seed.names import (
    BUSINESS_WORDS,
    DISHES,
    ID_REGION_CODES_ELSEWHERE,
    INDUSTRIAL_KINDS,
    SURNAMES,
    home_address,
    masked_credit_code,
    masked_id,
    person_name,
    phone_number,
    pick,
    street_address,
    words,
)
from server.seed.records import Customers
from server.seed.shape import (
    CUSTOMER_GROWTH_SKEW,
    CUSTOMER_KIND_SHARES,
    CUSTOMER_YEARS,
    CYLINDERS_PER_CUSTOMER_WEIGHT,
    LOCAL_BORN_SHARE,
)

if TYPE_CHECKING:
    from server.seed.city import CityBuilder

CUSTOMER_COLUMNS: Final = words(
    "id company_id account_no name id_number_masked phone address district_code lat lon "
    "kind opened_on"
)


async def add_customers(city: CityBuilder, n: int) -> Customers:
    """Real-name accounts (实名制), spread over the districts by population."""
    out = Customers()
    await city.copy_generated(
        "customers",
        CUSTOMER_COLUMNS,
        n,
        lambda first, row, count: customer_rows(city, out, first, row, count),
    )
    out.finish()
    city.summary.customers = n
    return out


def customer_rows(
    city: CityBuilder, out: Customers, first_id: int, first_row: int, count: int
) -> list[tuple[Any, ...]]:
    """Rows ``first_row … first_row + count - 1`` (runs in the COPY's worker thread)."""
    rng = city.rng
    rand = rng.random
    companies = city.companies
    company_cum = city.company_cum
    company_total = company_cum[-1]
    kinds = list(CUSTOMER_KIND_SHARES)
    kind_cum = list(itertools.accumulate(CUSTOMER_KIND_SHARES.values()))
    kind_weight = CYLINDERS_PER_CUSTOMER_WEIGHT
    span_days = CUSTOMER_YEARS * 365
    start_ord = city.today.toordinal() - span_days
    local_regions = [d.code for d in city.districts]
    bis = bisect.bisect
    # districts first, then their points in one vectorized batch per district
    where = rng.choices(city.districts, cum_weights=city.home_weights, k=count)
    points: dict[str, Iterator[tuple[float, float]]] = {
        d.code: iter(d.random_points(rng, k)) for d, k in Counter(where).items()
    }
    rows: list[tuple[Any, ...]] = []
    for i, d in enumerate(where):
        company = companies[bis(company_cum, rand() * company_total)]
        kind = kinds[bis(kind_cum, rand() * kind_cum[-1])]
        lat, lon = next(points[d.code])
        seq = city.account_seq[company.id] = city.account_seq.get(company.id, 0) + 1
        if kind == "resident":
            name = person_name(rng)
            regions = local_regions if rand() < LOCAL_BORN_SHARE else ID_REGION_CODES_ELSEWHERE
            masked = masked_id(regions[int(rand() * len(regions))], rng)
            address = home_address(d, rng)
        elif kind == "restaurant":
            name = f"{pick(SURNAMES, rand)}记{pick(DISHES, rand)}"
            masked = masked_credit_code(d.code, rng, individual=True)
            address = street_address(d, rng)
        else:
            name = f"郑州{pick(BUSINESS_WORDS, rand)}{pick(INDUSTRIAL_KINDS, rand)}"
            masked = masked_credit_code(d.code, rng, individual=False)
            address = street_address(d, rng)
        opened = date.fromordinal(start_ord + int((span_days - 1) * rand() ** CUSTOMER_GROWTH_SKEW))
        cid = first_id + i
        out.add(cid, company.id, d.code, lat, lon, kind_weight[kind], opened.toordinal(), kind)
        rows.append(
            (
                cid,
                company.id,
                f"{company.code}-{seq:07d}",
                name,
                masked,
                phone_number(rng),
                address,
                d.code,
                lat,
                lon,
                kind,
                opened,
            )
        )
    return rows
