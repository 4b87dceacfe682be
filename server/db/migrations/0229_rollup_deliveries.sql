-- The deliveries rollup: sales (销售) and real-name-progress (实名制进度) over any period without
-- counting a period of raw delivery scans per request (issue 11; docs/ARCHITECTURE.md §9
-- "Reports"; DESIGN §10; docs/BENCHMARKS.md "Reports").
--
-- Both reports count the trajectory's `deliver` events per bucket and company, and those to a
-- real-name customer (the scan named an existing `customers` row). Even index-only (migration
-- 0228), a 1M-cylinder city's ~330k deliveries a month read per request (the period and the
-- one before) took 3-11 s a page, and a year of them a statement timeout. What the reports keep of them is small: one row per
-- (city day, company, district, site) — the columns of the role scope and the filters
-- (server.kernel.scope's for `events`: district_code, company_id, site_id) — with the day's
-- deliveries and those to a real-name customer. cyl_deliveries_daily() yields those rows; the
-- reports read them as the other rollups are read (server/db/rollups.py source(), through
-- server/db/rollup_deliveries.py): materialized for the days before this rollup's watermark,
-- the function over the raw events from the watermark on.
--
-- As the abnormal rollup (migration 0227): its own state row and watermark, a history view
-- refreshed once a day (when the split moves) and a recent view (the last RECENT_DAYS closed
-- days and after) refreshed at every round, both by cyl_deliveries_refresh, which
-- server/db/rollup_refresh.py calls right after the other rollups under the same advisory
-- lock, in its own transaction, so a reader sees the rows with their watermark. Materialized
-- views on both paths: on the TimescaleDB path `events` is a hypertable, which the function
-- reads the same way; nothing here needs the extension.
--
-- A closed day is counted as of the last refresh: a delivery stored later for it (a bulk
-- upload), or a customer account created after the scan that named it, counts from the next
-- refresh of that day (the recent days: the next round; older ones: the next day's first
-- round, or `cylwatch reports refresh`). The drill-downs read the raw events (exact).

CREATE TABLE rollup_deliveries_state (
    name          text PRIMARY KEY CHECK (name = 'deliveries'),
    tz            text NOT NULL,     -- the city zone of the rows' days
    split         date,              -- first city day of the recent view (NULL: all recent)
    upto          date,              -- watermark: first city day NOT rolled up (NULL: none)
    refreshed_at  timestamptz,
    duration_ms   integer
);

-- The rows for the deliveries in [t0, t1). Read a city day at a time, as the reports read the
-- raw events before this rollup (migration 0228's partial index): grouped on an expression of
-- ts the planner expects millions of groups and sorts a year of deliveries on disk; one day
-- of a series at a time it aggregates in memory. The series runs from the first to the last
-- delivery within the bounds (both ends of the index), so the unbounded calls of the
-- materialized views enumerate only the days the deliveries span. The first OFFSET 0 keeps
-- each day's scan inside the loop; the second keeps the customers out of it — joined inside,
-- the customers were read once per day (200k rows × 358 days: 18.7 s for a year of a
-- 200k-cylinder city, 5.7 s hashed once; docs/BENCHMARKS.md "Reports"). Inlined by the
-- planner (one SELECT, STABLE): a bounded call prunes the partitions.
CREATE FUNCTION cyl_deliveries_daily(tz text, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (day date, company_id bigint, district_code text, site_id bigint,
               deliveries bigint, real_name bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT x.day, x.company_id, x.district_code, x.site_id, count(*), count(rc.id)
      FROM (SELECT d.day, e.company_id, e.district_code, e.site_id, e.customer_id
              FROM (SELECT min(b.ts) AS lo, max(b.ts) AS hi FROM events b
                     WHERE b.kind = 'deliver' AND b.ts >= t0 AND b.ts < t1) span
             CROSS JOIN LATERAL (
                   SELECT g::date AS day,
                          greatest(t0, g::date::timestamp AT TIME ZONE tz) AS d0,
                          least(t1, (g::date + 1)::timestamp AT TIME ZONE tz) AS d1
                     FROM generate_series((span.lo AT TIME ZONE tz)::date::timestamp,
                                          (span.hi AT TIME ZONE tz)::date::timestamp,
                                          interval '1 day') AS g) d
             CROSS JOIN LATERAL (
                   SELECT e.company_id, e.district_code, e.site_id, e.customer_id FROM events e
                    WHERE e.kind = 'deliver' AND e.ts >= d.d0 AND e.ts < d.d1
                   OFFSET 0) e
            OFFSET 0) x
      -- a delivery to a real-name customer: the scan named an account that exists
      -- (server/api/report_business.py REAL_NAME; customers.id is unique, so one row or none)
      LEFT JOIN customers rc ON rc.id = x.customer_id
     GROUP BY 1, 2, 3, 4
$$;

-- What the materialized views are made with (the state row; NULL before the first refresh,
-- when they hold no data).
CREATE FUNCTION cyl_deliveries_tz() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT s.tz FROM rollup_deliveries_state s WHERE s.name = 'deliveries'
$$;
CREATE FUNCTION cyl_deliveries_split_at() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.split::timestamp AT TIME ZONE s.tz FROM rollup_deliveries_state s
                      WHERE s.name = 'deliveries'), '-infinity')
$$;

CREATE MATERIALIZED VIEW rollup_deliveries_hist_mv AS
SELECT * FROM cyl_deliveries_daily(cyl_deliveries_tz(), '-infinity', cyl_deliveries_split_at())
WITH NO DATA;
CREATE UNIQUE INDEX rollup_deliveries_hist_mv_key
    ON rollup_deliveries_hist_mv (day, company_id, district_code, site_id);

CREATE MATERIALIZED VIEW rollup_deliveries_recent_mv AS
SELECT * FROM cyl_deliveries_daily(cyl_deliveries_tz(), cyl_deliveries_split_at(), 'infinity')
WITH NO DATA;
CREATE UNIQUE INDEX rollup_deliveries_recent_mv_key
    ON rollup_deliveries_recent_mv (day, company_id, district_code, site_id);

CREATE VIEW rollup_deliveries_day AS
    SELECT * FROM rollup_deliveries_hist_mv UNION ALL SELECT * FROM rollup_deliveries_recent_mv;

-- One refresh: as cyl_abnormal_refresh (migration 0227) — the same advisory lock as
-- cyl_rollups_refresh, the recent view at every round, the history when the split moved (once
-- a day), when asked (refresh_all), when never filled or when the zone changed; then the
-- watermark. False when another process holds the lock and `wait` is false. JIT off whoever
-- calls (`cylwatch reports refresh` connects without the pool's `[services] database_jit`):
-- the day loop's estimates are far above jit_above_cost, and compiling took 5.2 of a round's
-- 5.5 s on a 200k-cylinder city (0.3 s without; docs/BENCHMARKS.md "Reports").
CREATE FUNCTION cyl_deliveries_refresh(upto date, tz text, wait boolean, split date,
                                       refresh_all boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
DECLARE
    started timestamptz := clock_timestamp();
    st rollup_deliveries_state;
    views text[] := ARRAY['rollup_deliveries_recent_mv'];
    mv text;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(208798240);
    ELSIF NOT pg_try_advisory_xact_lock(208798240) THEN
        RETURN false;
    END IF;
    PERFORM now() AT TIME ZONE tz;  -- an unknown zone is refused before anything changes
    SELECT * INTO st FROM rollup_deliveries_state s WHERE s.name = 'deliveries';
    IF refresh_all OR st IS NULL OR st.tz IS DISTINCT FROM tz
       OR st.split IS DISTINCT FROM cyl_deliveries_refresh.split
       OR NOT (SELECT ispopulated FROM pg_matviews
                WHERE matviewname = 'rollup_deliveries_hist_mv' AND schemaname = 'public') THEN
        INSERT INTO rollup_deliveries_state AS s (name, tz, split)
        VALUES ('deliveries', tz, cyl_deliveries_refresh.split)
        ON CONFLICT (name) DO UPDATE SET tz = EXCLUDED.tz, split = EXCLUDED.split;
        views := ARRAY['rollup_deliveries_hist_mv'] || views;
    END IF;
    FOREACH mv IN ARRAY views LOOP
        -- CONCURRENTLY keeps readers on the previous rows, but only once filled; after a zone
        -- change every row changes, which a plain refresh rewrites faster
        IF (SELECT ispopulated FROM pg_matviews WHERE matviewname = mv AND schemaname = 'public')
           AND st.tz = tz THEN
            EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I', mv);
        ELSE
            EXECUTE format('REFRESH MATERIALIZED VIEW %I', mv);
        END IF;
    END LOOP;
    UPDATE rollup_deliveries_state s
       SET upto = cyl_deliveries_refresh.upto, refreshed_at = now(),
           duration_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::integer
     WHERE s.name = 'deliveries';
    RETURN true;
END $$;
