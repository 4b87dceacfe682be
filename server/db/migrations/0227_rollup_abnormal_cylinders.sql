-- The abnormal circulation rollup: abnormal-cylinders over any period without a scan of the
-- fills and scans per request (issue 11 item 4; docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10;
-- docs/BENCHMARKS.md "Reports: abnormal-cylinders and recovery-rate, query by query").
--
-- The report joined every fill and every moving scan of the period to the cylinders that could
-- have been unsafe in it: 2.2M rows read for 30 days of a 1M-cylinder city (15–25 s, mostly
-- the partitions read from disk), a statement timeout for a year. What it keeps of them is
-- tiny: the cylinder-days on which an overdue or scrapped cylinder was filled or moved on
-- (~1,500 cylinders in 30 days). cyl_abnormal_daily() yields exactly those rows — one per
-- (city day, cylinder, how: fill | move), with the cylinder's state on that day (scrapped;
-- overdue by the next inspection date in force that day, the rule of
-- server/api/report_cylinders_flow.py) — and the report reads them as the other rollups are
-- read (server/db/rollups.py source()): materialized for the days before the watermark, the
-- function over the raw tables from the watermark on.
--
-- Unlike the daily counts, a row's state depends on the cylinder's record and inspections,
-- which change after the day: an inspection recorded late, a scrap date corrected. The
-- materialized rows are as of the last refresh, like every rollup's; the recent view (the
-- last RECENT_DAYS days) is refreshed every round, the history once a day — so a late
-- inspection counts from the next round for a recent day, from the next day's first round
-- for an older one, or at once with
-- `cylwatch reports refresh` (refresh_all).
--
-- Its own state row, its own watermark: the rollup does not change cyl_rollups_refresh (other
-- migrations redefine it); server/db/rollup_refresh.py calls cyl_abnormal_refresh right after
-- it, under the same advisory lock, in its own transaction, so a reader sees the abnormal rows
-- with the abnormal watermark. The rollup also depends on [dates] inspection_interval_years
-- (the next inspection of a cylinder never inspected before the day: manufacture + interval),
-- so the state records it, a change refreshes the history, and a reader whose setting differs
-- reads the raw tables (as for a zone change). Materialized views on both paths: the
-- TimescaleDB path reads its hypertables through the same function.

CREATE TABLE rollup_abnormal_state (
    name          text PRIMARY KEY CHECK (name = 'abnormal'),
    tz            text NOT NULL,     -- the city zone of the rows' days
    years         integer NOT NULL,  -- [dates] inspection_interval_years the rows were made with
    split         date,              -- first city day of the recent view (NULL: all recent)
    upto          date,              -- watermark: first city day NOT rolled up (NULL: none)
    refreshed_at  timestamptz,
    duration_ms   integer
);

-- The rows for the fills and moving scans in [t0, t1): the scan kinds are
-- server.domain.circulation.VIOLATION_ACTIONS (tests/api/test_report_abnormal_rollup.py
-- checks they agree). Inlined by the planner (one SELECT, STABLE), so a bounded call prunes
-- the partitions.
CREATE FUNCTION cyl_abnormal_daily(tz text, t0 timestamptz, t1 timestamptz, interval_years integer)
RETURNS TABLE (day date, cylinder_id bigint, how text, scrapped boolean, overdue boolean)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT s.d, s.cylinder_id, s.how, s.scrapped, s.overdue
      FROM (SELECT m.d, m.cylinder_id, m.how, m.scrap_date <= m.d AS scrapped,
                   CASE WHEN NOT EXISTS (SELECT 1 FROM inspections i
                                          WHERE i.cylinder_id = m.cylinder_id
                                            AND i.inspected_on > m.d)
                        THEN m.next_inspection_date
                        ELSE coalesce(
                            (SELECT i.next_inspection_date FROM inspections i
                              WHERE i.cylinder_id = m.cylinder_id AND i.inspected_on <= m.d
                                AND i.result = 'pass' AND i.next_inspection_date IS NOT NULL
                              ORDER BY i.inspected_on DESC, i.id DESC LIMIT 1),
                            (m.manufacture_date + make_interval(years => interval_years))::date)
                   END < m.d AS overdue
              -- the few candidate rows first, then one per (day, cylinder, how): a year holds
              -- millions of fills and scans, of which a few tens of thousands are candidates
              FROM (SELECT DISTINCT a.d, a.cylinder_id, a.how, c.scrap_date,
                                    c.next_inspection_date, c.manufacture_date
                      FROM (SELECT (f.ts AT TIME ZONE tz)::date AS d, f.cylinder_id, 'fill' AS how
                              FROM fills f
                             WHERE f.ts >= t0 AND f.ts < t1 AND f.cylinder_id IS NOT NULL
                            UNION ALL
                            SELECT (ev.ts AT TIME ZONE tz)::date, ev.cylinder_id, 'move'
                              FROM events ev
                             WHERE ev.ts >= t0 AND ev.ts < t1
                               AND ev.kind IN ('dispatch', 'deliver', 'transfer', 'receive')
                               AND ev.cylinder_id IS NOT NULL) a
                      JOIN cylinders c ON c.id = a.cylinder_id
                     -- only these can have been unsafe that day: scrap date come, the record's
                     -- next inspection passed, or inspected since (then the date in force was
                     -- earlier); the same bounded by the call's days first, so that a few days
                     -- (the live half of a report) read the few such cylinders through their
                     -- indexes, not all of them
                     WHERE (c.scrap_date <= (t1 AT TIME ZONE tz)::date
                            OR c.next_inspection_date < (t1 AT TIME ZONE tz)::date
                            OR c.last_inspection_date > (t0 AT TIME ZONE tz)::date)
                       AND (c.scrap_date <= a.d OR c.next_inspection_date < a.d
                            OR c.last_inspection_date > a.d)) m) s
     WHERE s.scrapped OR s.overdue
$$;

-- The third way a cylinder can have been unsafe on a day, looked up by the live half above
-- (scrap_date and next_inspection_date have theirs since 0001); it changes only
-- when a cylinder is inspected.
CREATE INDEX cylinders_last_inspection_idx ON cylinders (last_inspection_date);

-- What the materialized views are made with (the state row; NULL before the first refresh,
-- when they hold no data).
CREATE FUNCTION cyl_abnormal_tz() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT s.tz FROM rollup_abnormal_state s WHERE s.name = 'abnormal'
$$;
CREATE FUNCTION cyl_abnormal_years() RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT s.years FROM rollup_abnormal_state s WHERE s.name = 'abnormal'
$$;
CREATE FUNCTION cyl_abnormal_split_at() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.split::timestamp AT TIME ZONE s.tz FROM rollup_abnormal_state s
                      WHERE s.name = 'abnormal'), '-infinity')
$$;

CREATE MATERIALIZED VIEW rollup_abnormal_hist_mv AS
SELECT * FROM cyl_abnormal_daily(cyl_abnormal_tz(), '-infinity', cyl_abnormal_split_at(),
                                 cyl_abnormal_years())
WITH NO DATA;
CREATE UNIQUE INDEX rollup_abnormal_hist_mv_key ON rollup_abnormal_hist_mv (day, cylinder_id, how);

CREATE MATERIALIZED VIEW rollup_abnormal_recent_mv AS
SELECT * FROM cyl_abnormal_daily(cyl_abnormal_tz(), cyl_abnormal_split_at(), 'infinity',
                                 cyl_abnormal_years())
WITH NO DATA;
CREATE UNIQUE INDEX rollup_abnormal_recent_mv_key
    ON rollup_abnormal_recent_mv (day, cylinder_id, how);

CREATE VIEW rollup_abnormal_day AS
    SELECT * FROM rollup_abnormal_hist_mv UNION ALL SELECT * FROM rollup_abnormal_recent_mv;

-- One refresh: as cyl_rollups_refresh (migrations 0221, 0223) — the same advisory lock, the
-- recent view at every round, the history when the split moved (once a day), when asked
-- (refresh_all), when never filled, or when the zone or the interval changed; then the
-- watermark. False when another process holds the lock and `wait` is false.
CREATE FUNCTION cyl_abnormal_refresh(upto date, tz text, wait boolean, split date,
                                     refresh_all boolean, years integer)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    st rollup_abnormal_state;
    views text[] := ARRAY['rollup_abnormal_recent_mv'];
    mv text;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(208798240);
    ELSIF NOT pg_try_advisory_xact_lock(208798240) THEN
        RETURN false;
    END IF;
    PERFORM now() AT TIME ZONE tz;  -- an unknown zone is refused before anything changes
    SELECT * INTO st FROM rollup_abnormal_state s WHERE s.name = 'abnormal';
    IF refresh_all OR st IS NULL OR st.tz IS DISTINCT FROM tz OR st.years IS DISTINCT FROM years
       OR st.split IS DISTINCT FROM cyl_abnormal_refresh.split
       OR NOT (SELECT ispopulated FROM pg_matviews
                WHERE matviewname = 'rollup_abnormal_hist_mv' AND schemaname = 'public') THEN
        INSERT INTO rollup_abnormal_state AS s (name, tz, years, split)
        VALUES ('abnormal', tz, years, cyl_abnormal_refresh.split)
        ON CONFLICT (name) DO UPDATE
            SET tz = EXCLUDED.tz, years = EXCLUDED.years, split = EXCLUDED.split;
        views := ARRAY['rollup_abnormal_hist_mv'] || views;
    END IF;
    FOREACH mv IN ARRAY views LOOP
        -- CONCURRENTLY keeps readers on the previous rows, but only once filled; and after a
        -- zone or interval change every row changes, which a plain refresh rewrites faster
        IF (SELECT ispopulated FROM pg_matviews WHERE matviewname = mv AND schemaname = 'public')
           AND st.tz = tz AND st.years = years THEN
            EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY %I', mv);
        ELSE
            EXECUTE format('REFRESH MATERIALIZED VIEW %I', mv);
        END IF;
    END LOOP;
    UPDATE rollup_abnormal_state s
       SET upto = cyl_abnormal_refresh.upto, refreshed_at = now(),
           duration_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::integer
     WHERE s.name = 'abnormal';
    RETURN true;
END $$;

-- What the report reads for the instants [t0, t1) (whole city days): the materialized rows
-- for the days before the watermark — when the rollup was made with this zone and interval —
-- and cyl_abnormal_daily over the raw tables from there on, planned with the actual bounds
-- (EXECUTE), so the live days are probed through the partitions they touch. One function for
-- the report's cells and their drill-downs: both split the period at the same watermark.
CREATE FUNCTION cyl_abnormal_rows(tz text, t0 timestamptz, t1 timestamptz, interval_years integer)
RETURNS TABLE (day date, cylinder_id bigint, how text, scrapped boolean, overdue boolean)
LANGUAGE plpgsql STABLE ROWS 10000 AS $$
DECLARE
    w date;
BEGIN
    SELECT s.upto INTO w FROM rollup_abnormal_state s
     WHERE s.name = 'abnormal' AND s.tz = cyl_abnormal_rows.tz
       AND s.years = cyl_abnormal_rows.interval_years;
    IF w IS NOT NULL AND (t0 AT TIME ZONE tz)::date < w THEN
        RETURN QUERY
            SELECT r.day, r.cylinder_id, r.how, r.scrapped, r.overdue FROM rollup_abnormal_day r
             WHERE r.day >= (t0 AT TIME ZONE tz)::date AND r.day < (t1 AT TIME ZONE tz)::date
               AND r.day < w;
        t0 := greatest(t0, w::timestamp AT TIME ZONE tz);
    END IF;
    IF t0 < t1 THEN
        RETURN QUERY EXECUTE 'SELECT * FROM cyl_abnormal_daily($1, $2, $3, $4)'
            USING tz, t0, t1, interval_years;
    END IF;
END $$;
