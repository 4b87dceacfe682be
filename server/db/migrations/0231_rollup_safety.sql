-- The safety-inspection rollup: the safety-inspections report (入户安检) over any period without
-- reading a period of answers per request (issue 11; docs/ARCHITECTURE.md §9 "Reports"; DESIGN
-- §10; docs/BENCHMARKS.md "Reports").
--
-- The report counts, over the period's current records (a record no later record corrects,
-- server/api/report_safety.py CURRENT), the records passed and failed per company and the
-- answers pass / fail / n/a per catalogue item code, the name being the newest item's text. At
-- a year of the bench city that is 126k records and 1.5M answers joined, anti-joined to their
-- corrections and sorted for the names: 4.8 s a year as a regulator, 1.1 s as a company admin.
-- What the report keeps of them is small, in two rollups keyed by the columns of the role
-- scope and the filters (server.kernel.scope's for `safety_inspections`: district_code,
-- company_id — the records' own names, so the scope applies to a rollup row as to its records):
--   records: one row per (city day, company, district) — records, passed, failed;
--   items:   one row per (city day, company, district, item code) — answers, pass, fail, n/a,
--            and the newest item id answered (its text is the item's name, as the report's
--            array_agg(text ORDER BY id DESC)[1] takes it).
-- cyl_safety_records_daily() / cyl_safety_items_daily() yield those rows; the report reads them
-- as the other rollups are read (server/db/rollups.py source(), through
-- server/db/rollup_safety.py): materialized for the days before this rollup's watermark, the
-- functions over the raw records from the watermark on. Today's open and overdue
-- rectifications are not a period's and stay read from their table.
--
-- As the deliveries rollup (migration 0229): its own state row and watermark, history views
-- refreshed once a day (when the split moves) and recent views (the last RECENT_DAYS closed
-- days and after) refreshed at every round, all by cyl_safety_refresh, which
-- server/db/rollup_refresh.py calls after the other rollups under the same advisory lock, in
-- its own transaction, so a reader sees the rows with their watermark. Plain tables and
-- materialized views on both paths (nothing here is a time series).
--
-- A closed day is counted as of the last refresh: a record stored later for it (a phone that
-- was offline uploads its records with their inspection time), or a correction of one of its
-- records, counts from the next refresh of that day (the recent days: the next round; older
-- ones: the next day's first round, or `cylwatch reports refresh`).

CREATE TABLE rollup_safety_state (
    name          text PRIMARY KEY CHECK (name = 'safety'),
    tz            text NOT NULL,     -- the city zone of the rows' days
    split         date,              -- first city day of the recent views (NULL: all recent)
    upto          date,              -- watermark: first city day NOT rolled up (NULL: none)
    refreshed_at  timestamptz,
    duration_ms   integer
);

-- The counts are integers: a day of one company in one district is far below 2^31, and a
-- report's sum of integers is a bigint summed natively, not a numeric (a year is ~0.5M rows).
--
-- The records' rows for the current records inspected in [t0, t1). Inlined by the planner
-- (one SELECT, STABLE), so a bounded call reads the time index and the caller's scope on
-- company_id / district_code reaches the records' own indexes. The zone is read once, as a
-- sub-select: the views pass cyl_safety_tz(), which, written in the day's expression, was
-- called for every row (a query on the state row per answer: 9.9 s of a year's refresh).
CREATE FUNCTION cyl_safety_records_daily(tz text, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (day date, company_id bigint, district_code text,
               records integer, passed integer, failed integer)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (s.inspected_at AT TIME ZONE (SELECT tz))::date, s.company_id, s.district_code,
           count(*)::integer, (count(*) FILTER (WHERE s.result = 'pass'))::integer,
           (count(*) FILTER (WHERE s.result = 'fail'))::integer
      FROM safety_inspections s
     WHERE s.inspected_at >= t0 AND s.inspected_at < t1
       AND NOT EXISTS (SELECT 1 FROM safety_inspections c WHERE c.corrects = s.id)
     GROUP BY 1, 2, 3
$$;

-- The items' rows: the current records' answers in [t0, t1) per item code (a code is the same
-- item across catalogue versions and customer kinds), with the newest item id answered.
CREATE FUNCTION cyl_safety_items_daily(tz text, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (day date, company_id bigint, district_code text, code text, newest_item bigint,
               records integer, passed integer, failed integer, na integer)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (s.inspected_at AT TIME ZONE (SELECT tz))::date, s.company_id, s.district_code, i.code,
           max(i.id), count(*)::integer, (count(*) FILTER (WHERE a.answer = 'pass'))::integer,
           (count(*) FILTER (WHERE a.answer = 'fail'))::integer,
           (count(*) FILTER (WHERE a.answer = 'na'))::integer
      FROM safety_inspections s
      JOIN safety_answers a ON a.inspection_id = s.id
      JOIN safety_items i ON i.id = a.item_id
     WHERE s.inspected_at >= t0 AND s.inspected_at < t1
       AND NOT EXISTS (SELECT 1 FROM safety_inspections c WHERE c.corrects = s.id)
     GROUP BY 1, 2, 3, 4
$$;

-- What the materialized views are made with (the state row; NULL before the first refresh,
-- when they hold no data).
CREATE FUNCTION cyl_safety_tz() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT s.tz FROM rollup_safety_state s WHERE s.name = 'safety'
$$;
CREATE FUNCTION cyl_safety_split_at() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.split::timestamp AT TIME ZONE s.tz FROM rollup_safety_state s
                      WHERE s.name = 'safety'), '-infinity')
$$;

CREATE MATERIALIZED VIEW rollup_safety_records_hist_mv AS
SELECT * FROM cyl_safety_records_daily(cyl_safety_tz(), '-infinity', cyl_safety_split_at())
WITH NO DATA;
CREATE UNIQUE INDEX rollup_safety_records_hist_mv_key
    ON rollup_safety_records_hist_mv (day, company_id, district_code);

CREATE MATERIALIZED VIEW rollup_safety_records_recent_mv AS
SELECT * FROM cyl_safety_records_daily(cyl_safety_tz(), cyl_safety_split_at(), 'infinity')
WITH NO DATA;
CREATE UNIQUE INDEX rollup_safety_records_recent_mv_key
    ON rollup_safety_records_recent_mv (day, company_id, district_code);

CREATE MATERIALIZED VIEW rollup_safety_items_hist_mv AS
SELECT * FROM cyl_safety_items_daily(cyl_safety_tz(), '-infinity', cyl_safety_split_at())
WITH NO DATA;
CREATE UNIQUE INDEX rollup_safety_items_hist_mv_key
    ON rollup_safety_items_hist_mv (day, company_id, district_code, code);
-- a company admin's year: its rows only (1/24 of the bench city's), not a scan of the city's
CREATE INDEX rollup_safety_items_hist_mv_company ON rollup_safety_items_hist_mv (company_id, day);

CREATE MATERIALIZED VIEW rollup_safety_items_recent_mv AS
SELECT * FROM cyl_safety_items_daily(cyl_safety_tz(), cyl_safety_split_at(), 'infinity')
WITH NO DATA;
CREATE UNIQUE INDEX rollup_safety_items_recent_mv_key
    ON rollup_safety_items_recent_mv (day, company_id, district_code, code);

CREATE VIEW rollup_safety_records_day AS
    SELECT * FROM rollup_safety_records_hist_mv
    UNION ALL SELECT * FROM rollup_safety_records_recent_mv;
CREATE VIEW rollup_safety_items_day AS
    SELECT * FROM rollup_safety_items_hist_mv UNION ALL SELECT * FROM rollup_safety_items_recent_mv;

-- One refresh: as cyl_deliveries_refresh (migration 0229) — the same advisory lock as
-- cyl_rollups_refresh, the recent views at every round, the history views when the split moved
-- (once a day), when asked (refresh_all), when never filled or when the zone changed; then the
-- watermark. False when another process holds the lock and `wait` is false. JIT off whoever
-- calls, as 0229 (the history's estimates are above jit_above_cost; compiling buys nothing for
-- a statement run once a day).
CREATE FUNCTION cyl_safety_refresh(upto date, tz text, wait boolean, split date,
                                   refresh_all boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET jit = off AS $$
DECLARE
    started timestamptz := clock_timestamp();
    st rollup_safety_state;
    views text[] := ARRAY['rollup_safety_records_recent_mv', 'rollup_safety_items_recent_mv'];
    mv text;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(208798240);
    ELSIF NOT pg_try_advisory_xact_lock(208798240) THEN
        RETURN false;
    END IF;
    PERFORM now() AT TIME ZONE tz;  -- an unknown zone is refused before anything changes
    SELECT * INTO st FROM rollup_safety_state s WHERE s.name = 'safety';
    IF refresh_all OR st IS NULL OR st.tz IS DISTINCT FROM tz
       OR st.split IS DISTINCT FROM cyl_safety_refresh.split
       OR NOT (SELECT bool_and(v.ispopulated) FROM pg_matviews v
                WHERE v.schemaname = 'public'
                  AND v.matviewname IN ('rollup_safety_records_hist_mv',
                                        'rollup_safety_items_hist_mv')) THEN
        INSERT INTO rollup_safety_state AS s (name, tz, split)
        VALUES ('safety', tz, cyl_safety_refresh.split)
        ON CONFLICT (name) DO UPDATE SET tz = EXCLUDED.tz, split = EXCLUDED.split;
        views := ARRAY['rollup_safety_records_hist_mv', 'rollup_safety_items_hist_mv'] || views;
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
        -- a refresh leaves the planner's statistics as they were (as 0230): with an empty
        -- view's estimates a district's year was sorted on disk instead of hashed
        EXECUTE format('ANALYZE %I', mv);
    END LOOP;
    UPDATE rollup_safety_state s
       SET upto = cyl_safety_refresh.upto, refreshed_at = now(),
           duration_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::integer
     WHERE s.name = 'safety';
    RETURN true;
END $$;
