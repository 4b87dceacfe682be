-- The fill-day rollup: recovery-rate over any period without a scan of the period's fills per
-- request (issue 11 item 4; docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10; docs/BENCHMARKS.md
-- "Reports").
--
-- recovery-rate counts, per owner company, the cylinders in circulation that had a completed
-- fill in the period. The report collected the DISTINCT cylinders of the period's completed
-- fills at every request: ~1M fills a month in a 1M-cylinder city, 9–20 s a page, a year past
-- the statement timeout. A distinct count does not add up over days, so the daily counts of
-- the fills rollup (0220) cannot answer it; what can is, per cylinder, the set of city days it
-- was filled on. cyl_fill_days() yields it as one row per (city year, cylinder) with a
-- bit(366): bit n (from the left, 0-based) set when the cylinder had a completed fill on the
-- year's day n + 1. A period's filled cylinders are those with a bit of the period's days
-- set in their row of each year it touches (server/db/rollup_fill_days.py builds the masks):
-- ~1M rows of ~90 bytes for a year of a 1M-cylinder city, against ~12M fills.
--
-- Kept as the abnormal rollup (0227): a history view up to the split (refreshed once a day,
-- or when asked) and a recent view from it (every round), its own state row and watermark,
-- refreshed by cyl_fill_days_refresh right after the other rollups under the same advisory
-- lock (server/db/rollup_refresh.py). A reader takes the rows for the days before the
-- watermark and the raw fills from it on (few: today and what the refresh has not closed),
-- so a fill is counted from the moment it is stored; a closed day's fill stored late counts
-- from the refresh that rebuilds its day. The rows depend on the city zone: the state records
-- it, a change rebuilds both views, and a reader whose zone differs reads the raw fills.
-- Materialized views on both paths: the TimescaleDB path reads its fills hypertable through
-- the same function. The drill-downs keep reading the raw fills (exact).

CREATE TABLE rollup_fill_days_state (
    name          text PRIMARY KEY CHECK (name = 'fill_days'),
    tz            text NOT NULL,     -- the city zone of the rows' days
    split         date,              -- first city day of the recent view (NULL: all recent)
    upto          date,              -- watermark: first city day NOT rolled up (NULL: none)
    refreshed_at  timestamptz,
    duration_ms   integer
);

-- The rows for the completed fills in [t0, t1). No DISTINCT first: a cylinder is filled once
-- or twice a day, and bit_or does not mind a bit set twice. Inlined by the planner (one
-- SELECT, STABLE), so a bounded call prunes the partitions.
CREATE FUNCTION cyl_fill_days(tz text, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (year integer, cylinder_id bigint, days bit(366))
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT extract(year FROM d.day)::integer, d.cylinder_id,
           bit_or(set_bit(0::bit(366), extract(doy FROM d.day)::integer - 1, 1))
      FROM (SELECT f.cylinder_id, (f.ts AT TIME ZONE tz)::date AS day
              FROM fills f
             WHERE f.ts >= t0 AND f.ts < t1 AND f.result = 'completed'
               AND f.cylinder_id IS NOT NULL) d
     GROUP BY 1, 2
$$;

CREATE FUNCTION cyl_fill_days_tz() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT s.tz FROM rollup_fill_days_state s WHERE s.name = 'fill_days'
$$;
CREATE FUNCTION cyl_fill_days_split_at() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.split::timestamp AT TIME ZONE s.tz FROM rollup_fill_days_state s
                      WHERE s.name = 'fill_days'), '-infinity')
$$;

-- A year's rows side by side (the key's order): a report reads one or two years of them.
CREATE MATERIALIZED VIEW rollup_fill_days_hist_mv AS
SELECT * FROM cyl_fill_days(cyl_fill_days_tz(), '-infinity', cyl_fill_days_split_at())
WITH NO DATA;
CREATE UNIQUE INDEX rollup_fill_days_hist_mv_key ON rollup_fill_days_hist_mv (year, cylinder_id);

CREATE MATERIALIZED VIEW rollup_fill_days_recent_mv AS
SELECT * FROM cyl_fill_days(cyl_fill_days_tz(), cyl_fill_days_split_at(), 'infinity')
WITH NO DATA;
CREATE UNIQUE INDEX rollup_fill_days_recent_mv_key
    ON rollup_fill_days_recent_mv (year, cylinder_id);

-- A cylinder's year can have a row in each view (days before and after the split): a report
-- joins each view to the cylinders on its own, a flag per period from each (no DISTINCT).

-- One refresh, as cyl_abnormal_refresh (0227): the same advisory lock, the recent view at every
-- round, the history when the split moved (once a day), when asked (refresh_all), when never
-- filled, or when the zone changed; then the watermark. False when another process holds the
-- lock and `wait` is false.
CREATE FUNCTION cyl_fill_days_refresh(upto date, tz text, wait boolean, split date,
                                      refresh_all boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    st rollup_fill_days_state;
    views text[] := ARRAY['rollup_fill_days_recent_mv'];
    mv text;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(208798240);
    ELSIF NOT pg_try_advisory_xact_lock(208798240) THEN
        RETURN false;
    END IF;
    PERFORM now() AT TIME ZONE tz;  -- an unknown zone is refused before anything changes
    SELECT * INTO st FROM rollup_fill_days_state s WHERE s.name = 'fill_days';
    IF refresh_all OR st IS NULL OR st.tz IS DISTINCT FROM tz
       OR st.split IS DISTINCT FROM cyl_fill_days_refresh.split
       OR NOT (SELECT ispopulated FROM pg_matviews
                WHERE matviewname = 'rollup_fill_days_hist_mv' AND schemaname = 'public') THEN
        INSERT INTO rollup_fill_days_state AS s (name, tz, split)
        VALUES ('fill_days', tz, cyl_fill_days_refresh.split)
        ON CONFLICT (name) DO UPDATE SET tz = EXCLUDED.tz, split = EXCLUDED.split;
        views := ARRAY['rollup_fill_days_hist_mv'] || views;
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
        -- a refresh leaves the planner's statistics as they were: a report joins these rows
        -- to the census, and with the estimates of an empty view it hashes them per worker
        EXECUTE format('ANALYZE %I', mv);
    END LOOP;
    -- and the census's, once a day with the history: recovery-rate joins it to these rows,
    -- and a refresh leaves its statistics behind too (this migration made it anew below)
    IF 'rollup_fill_days_hist_mv' = ANY (views) THEN
        ANALYZE cylinder_census;
    END IF;
    UPDATE rollup_fill_days_state s
       SET upto = cyl_fill_days_refresh.upto, refreshed_at = now(),
           duration_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::integer
     WHERE s.name = 'fill_days';
    RETURN true;
END $$;

-- recovery-rate counts the fleet of a period (registered before its end, scrap date not come
-- when it began, activated) over the cylinder census of 0226 rather than the live `cylinders`
-- (411 MB of heap to scan for a 1M-cylinder city, against the census's ~100 MB), as the
-- reports on today's cylinders do; the census gains the registration instant for it. A
-- materialized view takes no new column: it is made again with the same columns, indexes
-- and refresh (cyl_rollups_refresh fills it at the next round, a plain refresh since it holds
-- no data), and census_at is cleared so that until then the reports read `cylinders`
-- (server/db/census.py). registered_at never changes after registration, so the census
-- still changes only where a cylinder's delivery, inspection or status did.
DROP MATERIALIZED VIEW cylinder_census;
CREATE MATERIALIZED VIEW cylinder_census AS
SELECT id, owner_company_id, district_code, status, location_kind, location_customer_id,
       manufacture_date, last_inspection_date, next_inspection_date, scrap_date, registered_at
  FROM cylinders
WITH NO DATA;
CREATE UNIQUE INDEX cylinder_census_id ON cylinder_census (id);
CREATE INDEX cylinder_census_owner ON cylinder_census (owner_company_id);
CREATE INDEX cylinder_census_district ON cylinder_census (district_code);
UPDATE rollup_state SET census_at = NULL, census_ms = NULL WHERE name = 'reports';

-- recovery-rate's `unreturned` (today's cylinders at closed accounts) is read live, through
-- the closed accounts: few, found by this index instead of a scan of every customer.
CREATE INDEX customers_closed_idx ON customers (id) WHERE closed_on IS NOT NULL;
