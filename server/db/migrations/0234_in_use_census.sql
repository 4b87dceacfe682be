-- The in-use census: in-use-distribution's counts made at each refresh instead of at each
-- request (issue 11 item 4; docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10; docs/BENCHMARKS.md
-- "Reports").
--
-- in-use-distribution counts, per district, the cylinders at a customer's that are in service
-- (status in_service, scrap date not come), of them the ones overdue for inspection, and the
-- distinct customers holding them, and the same over everything in scope (a customer counted
-- once). Over the cylinder census (0226) that is a scan of ~1M rows and a sort of the ~800k in
-- use for the distinct customers, per request: 1.1–1.5 s at 1M × 12 (EXPLAIN at 100k: 0.12 s,
-- the sort spilling to disk). rollup_in_use_mv holds the same counts grouped by what the role
-- scope and the filters read of a cylinder (district_code, owner_company_id: server.kernel.scope's
-- names for cylinders, so the report's WHERE applies unchanged):
--   - per (district, owner): in_use, overdue, and `customers` — the customers all of whose
--     cylinders in use lie in that one (district, owner) pair, so they add up across pairs;
--   - per (district, owner, customer) for a customer whose cylinders in use lie in several
--     pairs (customer_id set, customers 0): the report counts those DISTINCT, over however
--     many pairs are in scope. The bench city has none; a few hundred would change nothing.
-- A few hundred rows instead of a scan: the report adds customers + count(DISTINCT
-- customer_id) per district and in total.
--
-- "Not come" and "overdue" are judged on a day: the view is made for the city day of its
-- refresh (the state's `day`, in the zone the server passes), and a report asked on another
-- day (the minutes after midnight before the next round) reads the census as before
-- (server/db/census.py in_use_day). Refreshed CONCURRENTLY at every round right after the
-- census (server/db/rollup_refresh.py OWN_WATERMARK), under the rollups' advisory lock, so the
-- census cannot change while it is read; the state records the census's snapshot moment
-- (the report's as_of). Nothing happens before the census holds data.

CREATE TABLE rollup_in_use_state (
    name          text PRIMARY KEY CHECK (name = 'in_use'),
    tz            text NOT NULL,     -- the zone `day` is a city day of
    day           date NOT NULL,     -- the day scrap dates and inspection dates are judged on
    census_at     timestamptz,       -- the census snapshot counted (NULL: never made)
    refreshed_at  timestamptz,
    duration_ms   integer
);

CREATE FUNCTION cyl_in_use_day() RETURNS date LANGUAGE sql STABLE AS $$
    SELECT s.day FROM rollup_in_use_state s WHERE s.name = 'in_use'
$$;

CREATE MATERIALIZED VIEW rollup_in_use_mv AS
-- the day as a scalar sub-select, computed once: written as a join to a CTE of the function,
-- the function (a query of the state row) was called for every census row (0.22 of 0.56 s)
WITH per AS (
        SELECT c.district_code, c.owner_company_id, c.location_customer_id AS customer_id,
               count(*) AS in_use,
               count(*) FILTER (WHERE c.next_inspection_date IS NULL
                                   OR c.next_inspection_date < (SELECT cyl_in_use_day()))
                   AS overdue
          FROM cylinder_census c
         WHERE c.location_kind = 'customer' AND c.status = 'in_service'
           AND c.scrap_date > (SELECT cyl_in_use_day())
         GROUP BY 1, 2, 3),
     spread AS (
        SELECT p.customer_id, count(*) > 1 AS several FROM per p
         WHERE p.customer_id IS NOT NULL GROUP BY 1)
SELECT format('%s|%s|%s', p.district_code, p.owner_company_id,
              CASE WHEN s.several THEN p.customer_id END) AS k,
       p.district_code, p.owner_company_id,
       CASE WHEN s.several THEN p.customer_id END AS customer_id,
       sum(p.in_use)::bigint AS in_use, sum(p.overdue)::bigint AS overdue,
       count(*) FILTER (WHERE p.customer_id IS NOT NULL AND NOT s.several) AS customers
  FROM per p LEFT JOIN spread s ON s.customer_id = p.customer_id
 GROUP BY p.district_code, p.owner_company_id, CASE WHEN s.several THEN p.customer_id END
WITH NO DATA;
-- CONCURRENTLY needs a unique index of plain columns over every row: `k` is the grouping key
-- as text (a null district or customer is an empty field)
CREATE UNIQUE INDEX rollup_in_use_mv_k ON rollup_in_use_mv (k);

-- One refresh, as the other own-watermark refreshes (server.db.rollups.refresh_own): the same
-- advisory lock, False when another process holds it and `wait` is false. `tz` is the server's
-- city zone: the view is made for today there.
CREATE FUNCTION cyl_in_use_refresh(upto date, tz text, wait boolean, split date,
                                   refresh_all boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    census timestamptz;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(208798240);
    ELSIF NOT pg_try_advisory_xact_lock(208798240) THEN
        RETURN false;
    END IF;
    census := (SELECT s.census_at FROM rollup_state s WHERE s.name = 'reports');
    IF census IS NULL OR NOT (SELECT ispopulated FROM pg_matviews
                               WHERE matviewname = 'cylinder_census' AND schemaname = 'public') THEN
        RETURN true;  -- no census yet: the report reads `cylinders`
    END IF;
    INSERT INTO rollup_in_use_state AS s (name, tz, day)
    VALUES ('in_use', tz, (now() AT TIME ZONE tz)::date)
    ON CONFLICT (name) DO UPDATE SET tz = EXCLUDED.tz, day = EXCLUDED.day;
    IF (SELECT ispopulated FROM pg_matviews
         WHERE matviewname = 'rollup_in_use_mv' AND schemaname = 'public') THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY rollup_in_use_mv;
    ELSE
        REFRESH MATERIALIZED VIEW rollup_in_use_mv;
    END IF;
    UPDATE rollup_in_use_state s
       SET census_at = census, refreshed_at = now(),
           duration_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::integer
     WHERE s.name = 'in_use';
    RETURN true;
END $$;
