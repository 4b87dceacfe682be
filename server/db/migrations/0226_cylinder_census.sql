-- The cylinder census: a narrow snapshot of the cylinder archive for the reports that count
-- today's cylinders (holdings, compliance-summary, in-use-distribution, inspection-due,
-- scrap-due; issue 11 item 4; docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10).
--
-- Those reports counted over `cylinders` at every request: a wide table (423 MB of heap for a
-- 1M-cylinder city) holding each cylinder's live state, updated constantly by ingest with HOT
-- updates, so its visibility map never stays set and an index-only scan reads the heap anyway
-- — 2.4 to 5.9 s per report at city scale (docs/BENCHMARKS.md "Reports"). cylinder_census
-- holds only the columns their aggregates and the role scope read (server.kernel.scope:
-- district_code, owner_company_id), a few tens of bytes a row. It changes only where a census
-- column changed (a delivery, an inspection, a status), so a CONCURRENTLY refresh rewrites a
-- few rows and the view stays compact and all-visible between rounds.
--
-- It is refreshed in the rollups' round (cyl_rollups_refresh, redefined below with the same
-- signature as 0223's and the same body plus the census), CONCURRENTLY once filled — reports
-- keep reading the previous snapshot meanwhile — and rollup_state.census_at records the moment
-- its snapshot was taken (every cylinder change committed before it is in). Until the first
-- refresh census_at is NULL and the reports read `cylinders` (server/db/census.py). The
-- census does not depend on the city's zone, so cyl_rollups_create (a zone change) leaves it
-- alone; it is the same on the native and the TimescaleDB path (`cylinders` is a plain table
-- on both; 0224's fills policy wait is unchanged, it runs after this function returns).
-- The drill-downs and inspection-due's page of cylinders keep reading `cylinders` (exact).

ALTER TABLE rollup_state
    ADD COLUMN census_at timestamptz,   -- the census's snapshot moment (NULL: never filled)
    ADD COLUMN census_ms integer;       -- how long its last refresh took

CREATE MATERIALIZED VIEW cylinder_census AS
SELECT id, owner_company_id, district_code, status, location_kind, location_customer_id,
       manufacture_date, last_inspection_date, next_inspection_date, scrap_date
  FROM cylinders
WITH NO DATA;
-- CONCURRENTLY needs a unique index over all rows; a company admin's report reads its own
-- company's rows through the second, a district regulator's through the third
CREATE UNIQUE INDEX cylinder_census_id ON cylinder_census (id);
CREATE INDEX cylinder_census_owner ON cylinder_census (owner_company_id);
CREATE INDEX cylinder_census_district ON cylinder_census (district_code);

-- As 0223's, and the census refreshed in the same transaction (a reader sees the old census
-- with the old census_at or the new with the new).
CREATE OR REPLACE FUNCTION cyl_rollups_refresh(upto date, tz text, wait boolean, split date, refresh_all boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    census_started timestamptz;
    mv text;
    views text[] := ARRAY['rollup_fills_recent_mv', 'rollup_denials_recent_mv',
                          'rollup_alerts_mv', 'rollup_overstock_mv'];
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(208798240);
    ELSIF NOT pg_try_advisory_xact_lock(208798240) THEN
        RETURN false;
    END IF;
    IF (SELECT s.tz FROM rollup_state s WHERE s.name = 'reports') IS DISTINCT FROM tz THEN
        PERFORM cyl_rollups_create(tz);
    END IF;
    IF refresh_all
       OR (SELECT s.split FROM rollup_state s WHERE s.name = 'reports')
           IS DISTINCT FROM cyl_rollups_refresh.split
       OR NOT coalesce((SELECT ispopulated FROM pg_matviews
                         WHERE matviewname = 'rollup_denials_hist_mv' AND schemaname = 'public'),
                       true) THEN
        UPDATE rollup_state s SET split = cyl_rollups_refresh.split WHERE s.name = 'reports';
        views := ARRAY['rollup_fills_hist_mv', 'rollup_denials_hist_mv'] || views;
    END IF;
    FOREACH mv IN ARRAY views LOOP
        IF to_regclass(mv) IS NULL THEN
            CONTINUE;  -- the fills rollup of the TimescaleDB path is refreshed by its policy
        END IF;
        IF (SELECT ispopulated FROM pg_matviews WHERE matviewname = mv AND schemaname = 'public') THEN
            EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I', mv);
        ELSE
            EXECUTE format('REFRESH MATERIALIZED VIEW %I', mv);
        END IF;
    END LOOP;
    -- the refresh's statement takes its snapshot after this moment (read committed)
    census_started := clock_timestamp();
    IF (SELECT ispopulated FROM pg_matviews
         WHERE matviewname = 'cylinder_census' AND schemaname = 'public') THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY cylinder_census;
    ELSE
        REFRESH MATERIALIZED VIEW cylinder_census;
    END IF;
    UPDATE rollup_state s
       SET upto = cyl_rollups_refresh.upto, refreshed_at = now(),
           duration_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::integer,
           census_at = census_started,
           census_ms = (extract(epoch FROM clock_timestamp() - census_started) * 1000)::integer
     WHERE s.name = 'reports';
    RETURN true;
END $$;
