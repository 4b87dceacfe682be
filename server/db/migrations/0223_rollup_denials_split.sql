-- The refusals rollup split like the fills (migration 0221): a year of a 1M-cylinder city
-- holds ~300k refused attempts, each unnested into its reasons — 10 s of every refresh round
-- (docs/BENCHMARKS.md "Reports"). rollup_denials_hist_mv holds the days before
-- rollup_state.split (refreshed once a day), rollup_denials_recent_mv the days from it on
-- (every round); rollup_denials_day is their union, as rollup_fills_day is. Alerts and
-- overstock days stay whole: an alert's state and count change at any age, and they are a
-- few tens of thousands of rows.

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
                                     rollup_denials_hist_mv, rollup_denials_recent_mv,
                                     rollup_alerts_mv, rollup_overstock_mv;
    IF cyl_has_timescale() THEN
        BEGIN
            EXECUTE 'DROP MATERIALIZED VIEW IF EXISTS rollup_fills_cagg';
            EXECUTE format($q$
                CREATE MATERIALIZED VIEW rollup_fills_cagg
                WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
                SELECT time_bucket(interval '1 day', f.ts, %L) AS bucket, f.station_id,
                       f.company_id, f.district_code, count(*) AS fills,
                       count(*) FILTER (WHERE f.result = 'completed') AS completed,
                       count(*) FILTER (WHERE f.result <> 'completed') AS aborted,
                       count(*) FILTER (WHERE f.assessment = 'overfill') AS overfill,
                       count(*) FILTER (WHERE f.assessment = 'underfill'
                                          AND f.result = 'completed') AS underfill,
                       coalesce(sum(f.net_kg) FILTER (WHERE f.result = 'completed'), 0) AS net_kg
                  FROM fills f
                 GROUP BY 1, 2, 3, 4
                WITH NO DATA$q$, tz);
            EXECUTE $q$SELECT add_continuous_aggregate_policy('rollup_fills_cagg',
                        start_offset => NULL, end_offset => interval '1 hour',
                        schedule_interval => interval '5 minutes')$q$;
            EXECUTE format($q$
                CREATE VIEW rollup_fills_day AS
                SELECT (bucket AT TIME ZONE %L)::date AS day, station_id, company_id,
                       district_code, fills, completed, aborted, overfill, underfill, net_kg
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
            ON rollup_fills_hist_mv (day, station_id, company_id, district_code);
        EXECUTE format('CREATE MATERIALIZED VIEW rollup_fills_recent_mv AS SELECT * FROM '
                       'cyl_fills_daily(%L, cyl_rollup_split_at(), ''infinity'') WITH NO DATA',
                       tz);
        CREATE UNIQUE INDEX rollup_fills_recent_mv_key
            ON rollup_fills_recent_mv (day, station_id, company_id, district_code);
        CREATE VIEW rollup_fills_day AS
            SELECT * FROM rollup_fills_hist_mv UNION ALL SELECT * FROM rollup_fills_recent_mv;
    END IF;
    EXECUTE format('CREATE MATERIALIZED VIEW rollup_denials_hist_mv AS SELECT * FROM '
                   'cyl_denials_daily(%L, ''-infinity'', cyl_rollup_split_at()) WITH NO DATA',
                   tz);
    CREATE UNIQUE INDEX rollup_denials_hist_mv_key
        ON rollup_denials_hist_mv (day, site_id, company_id, district_code, reason);
    EXECUTE format('CREATE MATERIALIZED VIEW rollup_denials_recent_mv AS SELECT * FROM '
                   'cyl_denials_daily(%L, cyl_rollup_split_at(), ''infinity'') WITH NO DATA',
                   tz);
    CREATE UNIQUE INDEX rollup_denials_recent_mv_key
        ON rollup_denials_recent_mv (day, site_id, company_id, district_code, reason);
    CREATE VIEW rollup_denials_day AS
        SELECT * FROM rollup_denials_hist_mv UNION ALL SELECT * FROM rollup_denials_recent_mv;
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

-- As 0221's, with the refusals split like the fills: the history views of both when the
-- split moves (once a day), the history was never filled or `refresh_all` is asked, else the
-- recent ones only.
CREATE OR REPLACE FUNCTION cyl_rollups_refresh(upto date, tz text, wait boolean, split date, refresh_all boolean)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
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
    UPDATE rollup_state s
       SET upto = cyl_rollups_refresh.upto, refreshed_at = now(),
           duration_ms = (extract(epoch FROM clock_timestamp() - started) * 1000)::integer
     WHERE s.name = 'reports';
    RETURN true;
END $$;

SELECT cyl_rollups_create(tz) FROM rollup_state WHERE name = 'reports';
