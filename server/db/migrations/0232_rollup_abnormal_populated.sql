-- abnormal-cylinders at city scale (issue 11 item 4; docs/ARCHITECTURE.md §9 "Reports"; DESIGN
-- §10): what the report reads of the abnormal circulation rollup (migration 0227) is unchanged
-- — its rows per city day, cylinder and way it circulated — but the report now folds them per
-- cylinder before anything else and attributes the cylinders to their owner through the
-- cylinder census (migration 0226) in one pass with today's held cylinders, instead of hashing
-- the whole of `cylinders` twice per request (server/api/report_cylinders_flow.py,
-- server/db/rollup_abnormal.py). A count per company and day cannot replace the cylinder-days:
-- the report counts each cylinder once over the period, and a distinct count does not add up
-- over days (the reason of migration 0230 too).
--
-- This migration only makes the reader safe: cyl_abnormal_rows (0227) trusted the state row's
-- watermark, and PostgreSQL refuses a statement naming a materialized view that holds no data
-- — a database restored with the state row but the views empty (or a refresh that failed
-- between them) answered every abnormal-cylinders request with a 500. Now the rolled-up half
-- is read only when both views are filled (pg_matviews, as migrations 0230 and 0231 do); else
-- every day comes from the raw fills and scans. Same signature, same rows otherwise.
CREATE OR REPLACE FUNCTION cyl_abnormal_rows(tz text, t0 timestamptz, t1 timestamptz,
                                             interval_years integer)
RETURNS TABLE (day date, cylinder_id bigint, how text, scrapped boolean, overdue boolean)
LANGUAGE plpgsql STABLE ROWS 10000 AS $$
DECLARE
    w date;
BEGIN
    SELECT s.upto INTO w FROM rollup_abnormal_state s
     WHERE s.name = 'abnormal' AND s.tz = cyl_abnormal_rows.tz
       AND s.years = cyl_abnormal_rows.interval_years
       AND (SELECT count(*) = 2 AND bool_and(v.ispopulated) FROM pg_matviews v
             WHERE v.schemaname = 'public'
               AND v.matviewname IN ('rollup_abnormal_hist_mv', 'rollup_abnormal_recent_mv'));
    IF w IS NOT NULL AND (t0 AT TIME ZONE tz)::date < w THEN
        -- a statement of its own (RETURN QUERY plans it here), so the check above comes first
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
