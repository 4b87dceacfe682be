-- Leaner fills rollup, and an index for its live tail (migrations 0220, 0221; server/db/
-- rollups.py; docs/BENCHMARKS.md "Reports"):
--
-- * The model (spec) leaves the fills rollup's key: no report groups by it, and with it a
--   station's day was ~6 rows (one per model it filled), so a year city-wide was 215k rows to
--   sum for 36k station-days. Without it every fills report reads a sixth of the rows.
-- * The live tail (today's fills, read raw at every report) ranges over fills by time alone,
--   and no index of 0001 leads with ts: the planner scanned the month's whole partition for
--   one day (a million rows by the month's end at 1M cylinders). Fills are a few a second at
--   city scale (a cylinder a month), so one more b-tree costs ingest nothing worth counting.

CREATE INDEX IF NOT EXISTS fills_ts_idx ON fills (ts);

-- the views built on the old definition go with it; cyl_rollups_create builds them again
DROP FUNCTION cyl_fills_daily(text, timestamptz, timestamptz) CASCADE;

CREATE FUNCTION cyl_fills_daily(tz text, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (day date, station_id bigint, company_id bigint, district_code text,
               fills bigint, completed bigint, aborted bigint, overfill bigint,
               underfill bigint, net_kg numeric)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (f.ts AT TIME ZONE tz)::date, f.station_id, f.company_id, f.district_code,
           count(*),
           count(*) FILTER (WHERE f.result = 'completed'),
           count(*) FILTER (WHERE f.result <> 'completed'),
           -- as the alerts: an aborted overfill still left too much gas in the cylinder
           count(*) FILTER (WHERE f.assessment = 'overfill'),
           count(*) FILTER (WHERE f.assessment = 'underfill' AND f.result = 'completed'),
           coalesce(sum(f.net_kg) FILTER (WHERE f.result = 'completed'), 0)
      FROM fills f
     WHERE f.ts >= t0 AND f.ts < t1
     GROUP BY 1, 2, 3, 4
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

SELECT cyl_rollups_create(tz) FROM rollup_state WHERE name = 'reports';
