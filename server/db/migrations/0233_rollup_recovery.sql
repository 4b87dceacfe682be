-- The recovery census: recovery-rate in one scan of one narrow row per cylinder (issue 11 item 4;
-- docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10; docs/BENCHMARKS.md "Reports").
--
-- recovery-rate counts, per owner company, the fleet of a period (registered before its end,
-- scrap date not come when it began, activated) and of it those with a completed fill on a
-- city day of the period, for the period and the previous one. Since 0230 it read the cylinder
-- census (0226) joined per request to the fill-day rollup's rows: a LEFT JOIN per view and
-- year (up to four for a year and its previous year), each hashing a year of rows of 1M
-- cylinders — 1.6–2.2 s p95 at 1M × 12 months, the joins' hashing most of it (EXPLAIN: 0.24 s
-- at 100k, the census scan 17 ms of it). rollup_recovery_mv is that join made once per
-- refresh: one row per activated cylinder of the census with the fleet columns the report and
-- the role scope read (owner_company_id, district_code — server.kernel.scope's names for
-- cylinders — registered_at, scrap_date) and its fill days of three city years side by side,
-- bit(1098): bit (y - first_year) * 366 + doy - 1 set when it had a completed fill on that
-- day of year y (first_year = the state's; the same layout as the fill-day rows of 0230, one
-- 366-bit block per year). A period's test is one AND with a mask of its days; a year and its
-- previous year lie within the three years. A request reads ~1M rows of ~190 bytes once,
-- without a join (server/db/rollup_recovery.py; the raw fills from the watermark on).
--
-- Refreshed by cyl_recovery_refresh right after the fill-day rollup (server/db/rollup_refresh.py
-- OWN_WATERMARK), under the same advisory lock, so the census, the fill-day rows and their
-- watermark cannot move while it reads them: its state records the fill-day watermark and zone
-- it was made with and the census's snapshot moment (the report's as_of). CONCURRENTLY once
-- filled — readers keep the previous rows — at every round: a round changes only the rows of
-- the cylinders filled, moved or scrapped since (their fill days or fleet columns), and the
-- whole view once a year, when first_year moves. A reader whose period reaches before
-- first_year, or whose zone differs, or a database never refreshed, reads the census and the
-- fill-day rollup as before (server/api/report_cylinders_flow.py).

CREATE TABLE rollup_recovery_state (
    name          text PRIMARY KEY CHECK (name = 'recovery'),
    tz            text NOT NULL,     -- the fill-day rows' zone the bits were made in
    first_year    integer NOT NULL,  -- the city year of the first 366 bits
    upto          date,              -- the fill-day watermark: first city day NOT in the bits
    census_at     timestamptz,       -- the census snapshot the fleet columns are of
    refreshed_at  timestamptz,
    duration_ms   integer
);

CREATE FUNCTION cyl_recovery_first_year() RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT s.first_year FROM rollup_recovery_state s WHERE s.name = 'recovery'
$$;

-- A cylinder's fill days of the year first_year + k (k = 0, 1, 2) from both fill-day views
-- (a year can have a row in each: days before and after their split), as one block; zeros
-- when it had none. One LEFT JOIN per view and year on their unique key, each at most one row
-- per cylinder: a bit_or grouped per cylinder instead took 2.2 s of a 2.5 s build at 100k
-- cylinders (hashed 367-bit aggregates spilling to disk).
CREATE MATERIALIZED VIEW rollup_recovery_mv AS
SELECT c.id, c.owner_company_id, c.district_code, c.registered_at, c.scrap_date,
       (coalesce(h0.days, 0::bit(366)) | coalesce(r0.days, 0::bit(366)))
       || (coalesce(h1.days, 0::bit(366)) | coalesce(r1.days, 0::bit(366)))
       || (coalesce(h2.days, 0::bit(366)) | coalesce(r2.days, 0::bit(366))) AS days
  FROM cylinder_census c
  LEFT JOIN rollup_fill_days_hist_mv h0
         ON h0.cylinder_id = c.id AND h0.year = cyl_recovery_first_year()
  LEFT JOIN rollup_fill_days_recent_mv r0
         ON r0.cylinder_id = c.id AND r0.year = cyl_recovery_first_year()
  LEFT JOIN rollup_fill_days_hist_mv h1
         ON h1.cylinder_id = c.id AND h1.year = cyl_recovery_first_year() + 1
  LEFT JOIN rollup_fill_days_recent_mv r1
         ON r1.cylinder_id = c.id AND r1.year = cyl_recovery_first_year() + 1
  LEFT JOIN rollup_fill_days_hist_mv h2
         ON h2.cylinder_id = c.id AND h2.year = cyl_recovery_first_year() + 2
  LEFT JOIN rollup_fill_days_recent_mv r2
         ON r2.cylinder_id = c.id AND r2.year = cyl_recovery_first_year() + 2
 WHERE c.status <> 'not_activated'
WITH NO DATA;
-- CONCURRENTLY needs a unique index over all rows; a company admin reads its company's rows
CREATE UNIQUE INDEX rollup_recovery_mv_id ON rollup_recovery_mv (id);
CREATE INDEX rollup_recovery_mv_owner ON rollup_recovery_mv (owner_company_id);

-- One refresh, as cyl_fill_days_refresh (0230): the same advisory lock; False when another
-- process holds it and `wait` is false. The arguments are the other own-watermark refreshes'
-- (server.db.rollups.refresh_own); the bits follow the fill-day rollup's state, not `upto`:
-- a round whose fill-day refresh did not run leaves this view consistent with what it read.
-- Nothing happens before the census and both fill-day views hold data (PostgreSQL refuses to
-- read a view never filled).
CREATE FUNCTION cyl_recovery_refresh(upto date, tz text, wait boolean, split date,
                                     refresh_all boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    fd rollup_fill_days_state;
    st rollup_recovery_state;
    y0 integer;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(208798240);
    ELSIF NOT pg_try_advisory_xact_lock(208798240) THEN
        RETURN false;
    END IF;
    SELECT * INTO fd FROM rollup_fill_days_state s WHERE s.name = 'fill_days';
    IF fd.upto IS NULL
       OR (SELECT census_at FROM rollup_state WHERE name = 'reports') IS NULL
       OR (SELECT count(*) FROM pg_matviews v
            WHERE v.schemaname = 'public' AND v.ispopulated
              AND v.matviewname IN ('cylinder_census', 'rollup_fill_days_hist_mv',
                                    'rollup_fill_days_recent_mv')) < 3 THEN
        RETURN true;  -- nothing to make it from yet: readers keep the census and fill days
    END IF;
    -- the year of the last closed day and the two before it: a year's period and its
    -- previous one
    y0 := extract(year FROM fd.upto - 1)::integer - 2;
    SELECT * INTO st FROM rollup_recovery_state s WHERE s.name = 'recovery';
    INSERT INTO rollup_recovery_state AS s (name, tz, first_year)
    VALUES ('recovery', fd.tz, y0)
    ON CONFLICT (name) DO UPDATE SET tz = EXCLUDED.tz, first_year = EXCLUDED.first_year;
    -- CONCURRENTLY keeps readers on the previous rows, but only once filled; when the years
    -- or the zone moved every row changes, which a plain refresh rewrites faster
    IF (SELECT ispopulated FROM pg_matviews
         WHERE matviewname = 'rollup_recovery_mv' AND schemaname = 'public')
       AND st.first_year = y0 AND st.tz = fd.tz AND NOT refresh_all THEN
        REFRESH MATERIALIZED VIEW CONCURRENTLY rollup_recovery_mv;
    ELSE
        REFRESH MATERIALIZED VIEW rollup_recovery_mv;
    END IF;
    -- a refresh leaves the planner's statistics as they were (0230's lesson)
    ANALYZE rollup_recovery_mv;
    UPDATE rollup_recovery_state s
       SET upto = fd.upto, tz = fd.tz,
           census_at = (SELECT census_at FROM rollup_state WHERE name = 'reports'),
           refreshed_at = now(),
           duration_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::integer
     WHERE s.name = 'recovery';
    RETURN true;
END $$;
