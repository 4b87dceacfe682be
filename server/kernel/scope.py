"""Role scoping in SQL (docs/ARCHITECTURE.md §7): every query that returns rows adds the caller's scope
to its WHERE clause, so rows outside the scope are never read, counted or exported.

Usage::

    q = Sql()
    where = [scope_where(principal, "cylinders", "c", q)]
    if tag: where.append(f"c.tag = {q.add(tag)}")
    rows = await pool.fetch(f"SELECT ... FROM cylinders c WHERE {' AND '.join(where)}", *q.params)

`scope_where` returns "FALSE" for an entity a role may not read at all; handlers that want a
403 instead call `can_read` first.

Who sees what:

| entity     | admin | regulator / officer      | company_admin  | station_operator | inspector |
|------------|-------|--------------------------|----------------|------------------|-----------|
| cylinders  | all   | in their districts       | owned          | owned by company | all       |
| customers  | all   | in their districts       | own company    | own company      | —         |
| fills      | all   | in their districts       | own company    | own station      | —         |
| alerts     | all   | in their districts       | own company    | own station      | —         |
| sites      | all   | in their districts       | own company    | own company      | all       |
| companies  | all   | all                      | own            | own              | all       |
| devices    | all   | at sites in districts    | own company    | own station      | —         |
| events     | all   | in their districts       | own company    | own company      | all       |
| positions  | all   | in their districts       | own company    | own company      | —         |
| users      | all   | self                     | own company    | self             | self      |
| safety_inspections | all | in their districts   | own company    | own company      | —         |

``positions`` are where things are: live vehicle and cylinder positions, the coordinates of
a cylinder and of its trajectory's events (a delivery's are a customer's door). Inspection
agencies inspect cylinders brought to them and have no use for them (docs/SECURITY.md
"Privacy"); the API blanks them for roles that may not read them.

Regulators with no districts are city-wide; officers always have districts.
"""

from __future__ import annotations

from typing import Any

from server.kernel.principal import Principal

ENTITIES = (
    "cylinders",
    "customers",
    "fills",
    "alerts",
    "sites",
    "companies",
    "devices",
    "events",
    "users",
    "inspections",
    "positions",
    "safety_inspections",
)


class Sql:
    """Collects positional parameters for asyncpg ($1, $2, ...)."""

    def __init__(self, *initial: Any) -> None:
        self.params: list[Any] = list(initial)

    def add(self, value: Any) -> str:
        self.params.append(value)
        return f"${len(self.params)}"


# For each entity: the column expressing district, company and station/site of a row.
_COLUMNS: dict[str, dict[str, str | None]] = {
    "cylinders": {"district": "district_code", "company": "owner_company_id", "site": None},
    "customers": {"district": "district_code", "company": "company_id", "site": None},
    "fills": {"district": "district_code", "company": "company_id", "site": "station_id"},
    "alerts": {"district": "district_code", "company": "company_id", "site": "site_id"},
    "sites": {"district": "district_code", "company": "company_id", "site": "id"},
    "companies": {"district": None, "company": "id", "site": None},
    "devices": {"district": None, "company": "company_id", "site": "site_id"},
    "events": {"district": "district_code", "company": "company_id", "site": "site_id"},
    "users": {"district": None, "company": "company_id", "site": None},
    "inspections": {"district": None, "company": None, "site": "agency_site_id"},
    "positions": {"district": "district_code", "company": "company_id", "site": None},
    # the customer's company and district at the time (also of safety_rectifications rows)
    "safety_inspections": {"district": "district_code", "company": "company_id", "site": None},
}

# Entities each role may not read at all.
_DENIED: dict[str, frozenset[str]] = {
    "inspector": frozenset(
        {"customers", "fills", "alerts", "devices", "positions", "safety_inspections"}
    ),
}


def can_read(p: Principal, entity: str) -> bool:
    return entity not in _DENIED.get(p.role, frozenset())


def scope_where(p: Principal, entity: str, alias: str, q: Sql) -> str:
    """A SQL boolean expression limiting *alias* (a row of *entity*) to what *p* may see."""
    if entity not in _COLUMNS:
        raise KeyError(f"unknown entity {entity}")
    if not can_read(p, entity):
        return "FALSE"
    cols = _COLUMNS[entity]
    a = f"{alias}." if alias else ""
    role = p.role
    if role == "admin":
        return "TRUE"
    if role == "users":  # pragma: no cover - not a role
        return "FALSE"
    if entity == "users":
        if role == "company_admin":
            return f"{a}company_id = {q.add(p.company_id)}"
        return f"{a}id = {q.add(p.user_id)}"
    if role in ("regulator", "officer"):
        if entity == "companies":
            return "TRUE"
        if p.city_wide:
            return "TRUE"
        if entity == "devices":
            return f"{a}site_id IN (SELECT id FROM sites WHERE district_code = ANY({q.add(list(p.districts))}))"
        if entity == "inspections":
            return (
                f"{a}cylinder_id IN (SELECT id FROM cylinders WHERE district_code = ANY("
                f"{q.add(list(p.districts))}))"
            )
        return f"{a}{cols['district']} = ANY({q.add(list(p.districts))})"
    if role == "inspector":
        if entity == "inspections":
            return f"{a}agency_site_id = {q.add(p.site_id)}"
        return "TRUE"  # cylinders, sites, companies, events: agencies inspect any cylinder
    if role == "company_admin":
        if entity == "inspections":
            return (
                f"{a}cylinder_id IN (SELECT id FROM cylinders WHERE owner_company_id = "
                f"{q.add(p.company_id)})"
            )
        return f"{a}{cols['company']} = {q.add(p.company_id)}"
    if role == "station_operator":
        if entity in ("fills", "alerts", "devices"):
            return f"{a}{cols['site']} = {q.add(p.site_id)}"
        if entity == "inspections":
            return (
                f"{a}cylinder_id IN (SELECT id FROM cylinders WHERE owner_company_id = "
                f"{q.add(p.company_id)})"
            )
        return f"{a}{cols['company']} = {q.add(p.company_id)}"
    return "FALSE"


def may_write_company_data(p: Principal, company_id: int | None) -> bool:
    """Company master data (sites, customers, devices, cylinders' archive fields)."""
    if p.role == "admin":
        return True
    if p.role == "company_admin":
        return company_id is not None and company_id == p.company_id
    return False
