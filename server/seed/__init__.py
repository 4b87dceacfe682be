"""`cylwatch seed`: a synthetic Zhengzhou-like demo city (DOMAIN.md "Scale of one city").

A supervision platform is judged on a city full of cylinders: the live map, the reports,
the big screen and the benchmarks (docs/ARCHITECTURE.md §10 measures lookups at 1M cylinders) all need
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
constants of `server.seed.shape` — they describe a plausible demo, they are not rules of the platform.

The seed is deterministic for a given random seed and ``today``, runs in one transaction
(a failed seed leaves nothing behind), streams rows with COPY in chunks so a
1,000,000-cylinder city fits in memory and in a few minutes, and refuses to seed a
database that already holds cylinders.

The package, one concern a module: `shape` (the demo's proportions), `names` (people,
roads, codes), `records` (what a run knows and reports), `city` (the entry point and the
order of steps), `sites`, `customers`, `devices`, `users`, `cylinders` and `history` (one
kind of row each), `command` (the CLI). Bulk loading is `server.db.bulk`'s.

The city's past (``--history-months``, ``[seed] history_months``): `history_shape` (its
cadences and rates), `timeline` (each cylinder's cycles, planned backwards from its row),
`cycles` (a month planned as packed ints), `emit` (a month's rows of events and fills),
`pgcopy` (the binary COPY format they are written in), `incidents` (alerts, refusal
counts, inspections, complaints), `safety` (household safety inspections, 入户安检: the
companies' delivery workers, records sealed into the chain as the API seals them, answers,
photos and rectifications), `partitions` (past partitions, month-by-month indexes,
bulk-loading defaults) and `past` (the month-by-month writer).
"""

from server.seed.city import seed_city
from server.seed.command import add_commands, run_seed
from server.seed.records import AlreadySeeded, SeedSummary
from server.seed.users import DEMO_USERS, DemoUser, format_demo_users

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
