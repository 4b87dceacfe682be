-- The fills rollup of the native path in two materialized views (migration 0220; server/db/
-- rollup_refresh.py; docs/BENCHMARKS.md "Reports"): one materialized view over a year of a
-- 1M-cylinder city (12M fills) costs a full scan of the fills at every refresh, every
-- [reports] rollup_refresh_s. Split at rollup_state.split (a city day):
--   rollup_fills_hist_mv    the days before split — refreshed when split moves, once a day;
--   rollup_fills_recent_mv  the days from split on — refreshed at every round, a partition or
--                           two (the days before split are pruned at run time).
-- The refresh keeps split a fixed number of days before the watermark (server/db/rollups.py
-- RECENT_DAYS), so a row arriving late for one of those days counts from the next round, and
-- one older than that from the next day's. Readers still read rollup_fills_day (now the union
-- of the two) and cyl_fills_daily: nothing else changes. The TimescaleDB path keeps its
-- continuous aggregate.

ALTER TABLE rollup_state ADD COLUMN split date;

-- The instant rollup_fills_recent_mv starts at ('-infinity': everything is recent).
CREATE FUNCTION cyl_rollup_split_at() RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.split::timestamp AT TIME ZONE s.tz FROM rollup_state s
                      WHERE s.name = 'reports'), '-infinity')
$$;

CREATE OR REPLACE FUNCTION cyl_rollups_create(tz text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    built text := 'native';
BEGIN
    PERFORM now() AT TIME ZONE tz;  -- an unknown zone is refused here, not at every refresh
    -- the state first: the split views read its zone and split while they are built
    INSERT INTO rollup_state (name, tz, mode) VALUES ('reports', tz, built)
    ON CONFLICT (name) DO UPDATE
        SET tz = EXCLUDED.tz, upto = NULL, split = NULL, refreshed_at = NULL,
            duration_ms = NULL, rebuilt_at = now();
    DROP VIEW IF EXISTS rollup_fills_day, rollup_denials_day, rollup_alerts_day,
                        rollup_overstock_day;
    DROP MATERIALIZED VIEW IF EXISTS rollup_fills_mv, rollup_fills_hist_mv,
                                     rollup_fills_recent_mv, rollup_denials_mv,
                                     rollup_alerts_mv, rollup_overstock_mv;
    IF cyl_has_timescale() THEN
        BEGIN
            EXECUTE 'DROP MATERIALIZED VIEW IF EXISTS rollup_fills_cagg';
            EXECUTE format($q$
                CREATE MATERIALIZED VIEW rollup_fills_cagg
                WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                SELECT time_bucket(interval '1 day', f.ts, %L) AS bucket, f.station_id,
                       f.company_id, f.district_code, f.spec, count(*) AS fills,
                       count(*) FILTER (WHERE f.result = 'completed') AS completed,
                       count(*) FILTER (WHERE f.result <> 'completed') AS aborted,
                       count(*) FILTER (WHERE f.assessment = 'overfill') AS overfill,
                       count(*) FILTER (WHERE f.assessment = 'underfill'
                                          AND f.result = 'completed') AS underfill,
                       coalesce(sum(f.net_kg) FILTER (WHERE f.result = 'completed'), 0) AS net_kg
                  FROM fills f
                 GROUP BY 1, 2, 3, 4, 5
                WITH NO DATA$q$, tz);
            EXECUTE $q$SELECT add_continuous_aggregate_policy('rollup_fills_cagg',
                        start_offset => NULL, end_offset => interval '1 hour',
                        schedule_interval => interval '5 minutes')$q$;
            EXECUTE format($q$
                CREATE VIEW rollup_fills_day AS
                SELECT (bucket AT TIME ZONE %L)::date AS day, station_id, company_id,
                       district_code, spec, fills, completed, aborted, overfill, underfill,
                       net_kg
                  FROM rollup_fills_cagg$q$, tz);
            built := 'timescale';
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'fills rollup: no continuous aggregate (%), materialized views instead',
                SQLERRM;
        END;
    END IF;
    IF built = 'native' THEN
        EXECUTE format('CREATE MATERIALIZED VIEW rollup_fills_hist_mv AS SELECT * FROM '
                       'cyl_fills_daily(%L, ''-infinity'', cyl_rollup_split_at()) WITH NO DATA',
                       tz);
        CREATE UNIQUE INDEX rollup_fills_hist_mv_key
            ON rollup_fills_hist_mv (day, station_id, company_id, district_code, spec);
        EXECUTE format('CREATE MATERIALIZED VIEW rollup_fills_recent_mv AS SELECT * FROM '
                       'cyl_fills_daily(%L, cyl_rollup_split_at(), ''infinity'') WITH NO DATA',
                       tz);
        CREATE UNIQUE INDEX rollup_fills_recent_mv_key
            ON rollup_fills_recent_mv (day, station_id, company_id, district_code, spec);
        CREATE VIEW rollup_fills_day AS
            SELECT * FROM rollup_fills_hist_mv UNION ALL SELECT * FROM rollup_fills_recent_mv;
    END IF;
    EXECUTE format('CREATE MATERIALIZED VIEW rollup_denials_mv AS SELECT * FROM '
                   'cyl_denials_daily(%L, ''-infinity'', ''infinity'') WITH NO DATA', tz);
    CREATE UNIQUE INDEX rollup_denials_mv_key
        ON rollup_denials_mv (day, site_id, company_id, district_code, reason);
    CREATE VIEW rollup_denials_day AS SELECT * FROM rollup_denials_mv;
    EXECUTE format('CREATE MATERIALIZED VIEW rollup_alerts_mv AS SELECT * FROM '
                   'cyl_alerts_daily(%L, ''-infinity'', ''infinity'') WITH NO DATA', tz);
    CREATE UNIQUE INDEX rollup_alerts_mv_key
        ON rollup_alerts_mv (day, site_id, company_id, district_code, kind);
    CREATE VIEW rollup_alerts_day AS SELECT * FROM rollup_alerts_mv;
    EXECUTE format('CREATE MATERIALIZED VIEW rollup_overstock_mv AS SELECT * FROM '
                   'cyl_overstock_daily(%L, ''-infinity'', ''infinity'') WITH NO DATA', tz);
    CREATE UNIQUE INDEX rollup_overstock_mv_key ON rollup_overstock_mv (day, site_id);
    CREATE VIEW rollup_overstock_day AS SELECT * FROM rollup_overstock_mv;
    UPDATE rollup_state s SET mode = built WHERE s.name = 'reports';
    RETURN built;
END $$;

DROP FUNCTION cyl_rollups_refresh(date, text, boolean);

-- As 0220's, with the split: when `split` differs from the stored one (the watermark moved:
-- once a day), the history was never filled or `refresh_all` is asked (after a bulk load of old
-- rows: `cylwatch reports refresh`), both fills views are refreshed, else the recent one
-- only. The rest as before: one transaction, one process (advisory lock), a zone change
-- rebuilds first.
CREATE FUNCTION cyl_rollups_refresh(upto date, tz text, wait boolean, split date, refresh_all boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    mv text;
    views text[] := ARRAY['rollup_fills_recent_mv', 'rollup_denials_mv', 'rollup_alerts_mv',
                          'rollup_overstock_mv'];
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
                         WHERE matviewname = 'rollup_fills_hist_mv' AND schemaname = 'public'),
                       true) THEN
        UPDATE rollup_state s SET split = cyl_rollups_refresh.split WHERE s.name = 'reports';
        views := ARRAY['rollup_fills_hist_mv'] || views;
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
    UPDATE rollup_state s
       SET upto = cyl_rollups_refresh.upto, refreshed_at = now(),
           duration_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::integer
     WHERE s.name = 'reports';
    RETURN true;
END $$;

SELECT cyl_rollups_create(tz) FROM rollup_state WHERE name = 'reports';
