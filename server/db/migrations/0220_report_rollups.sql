-- Report rollups (docs/ARCHITECTURE.md §9 "Reports"; DESIGN §10: a report never scans a year
-- of fills per request): daily aggregates of the activity tables, in city days.
--
-- What each rollup holds (one row per key, counts over the key's city day):
--   rollup_fills_day      (day, station_id, company_id, district_code, spec)
--                         fills, completed, aborted, overfill, underfill, net_kg
--   rollup_denials_day    (day, site_id, company_id, district_code, reason)      attempts
--                         (fill_refused events; an attempt counts once per reason it carried)
--   rollup_alerts_day     (day of first_at, site_id, company_id, district_code, kind)
--                         alerts, occurrences (sum of their counts), unresolved
--   rollup_overstock_day  (day, site_id) company_id, district_code, peak_full, permitted, alerts
--                         (the city days each overstock alert covers, first_at to last_at — the
--                         credit ledger's and the inspection list's "overstock day" — with the
--                         day's peak of full cylinders from overstock_samples, below)
--
-- One definition per rollup: the cyl_*_daily(tz, t0, t1) SQL functions. The rollups are built
-- from them over all time; a report reads the rollup for the days before the watermark
-- (rollup_state.upto) and calls the same function on the raw table for the days after it, so
-- a report is exact (server/db/rollups.py) and cannot drift from its rollup.
--
-- Two paths, one migration (the choice is cyl_has_timescale(), as 0001's time series):
--   native: a MATERIALIZED VIEW per rollup with a UNIQUE index on its key, so the server's
--           refresh round (server/db/rollup_refresh.py: every [reports] rollup_refresh_s, one
--           process at a time) refreshes it CONCURRENTLY — readers never wait;
--   TimescaleDB: fills (the one table of millions of rows a month) become a continuous
--           aggregate, real-time (materialized_only = false) and refreshed by a TimescaleDB
--           policy; the other three stay materialized views (alerts is a plain table, and a
--           continuous aggregate cannot unnest the refusal reasons). If the extension refuses
--           the continuous aggregate (an older release without time zones in time_bucket), the
--           function falls back to the native view and says so in a NOTICE.
-- Readers see one set of names either way: the rollup_*_day views.
--
-- The city's time zone is a setting ([alerts] timezone), not data: cyl_rollups_create(tz)
-- (re)builds the rollups for a zone; the refresh round calls it again when the setting no
-- longer matches rollup_state.tz. The server's role owns nothing (0072), so building and
-- refreshing go through SECURITY DEFINER functions owned by the migrating role.

-- ---------------------------------------------------------------- state and watermark

CREATE TABLE rollup_state (
    name          text PRIMARY KEY CHECK (name = 'reports'),
    tz            text NOT NULL,             -- the city zone the rollups' days are in
    mode          text NOT NULL CHECK (mode IN ('native', 'timescale')),
    upto          date,                      -- watermark: first city day NOT rolled up (NULL: none)
    refreshed_at  timestamptz,
    duration_ms   integer,
    rebuilt_at    timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------- overstock peaks

-- An overstock alert is one row per site while it lasts; each raise overwrites its
-- details.full with the count of that moment (server/db/alerts.py), so the day's peak would be
-- lost. This table keeps the highest count per site and quarter hour, from every write of an
-- overstock alert (every time zone's midnight is on a quarter hour, so a slot lies in one city
-- day whatever the zone). Rows exist only while a site is over its permit.
CREATE TABLE overstock_samples (
    site_id    bigint NOT NULL,
    slot       timestamptz NOT NULL,
    peak_full  integer NOT NULL,
    permitted  integer,
    PRIMARY KEY (site_id, slot)
);

CREATE FUNCTION cyl_overstock_sample() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    full_n integer;
    permit integer;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.last_at = OLD.last_at AND NEW.details = OLD.details THEN
        RETURN NULL;  -- an acknowledgement or a resolution: no new count
    END IF;
    IF jsonb_typeof(NEW.details -> 'full') IS DISTINCT FROM 'number' THEN
        RETURN NULL;
    END IF;
    full_n := (NEW.details ->> 'full')::numeric::integer;
    IF jsonb_typeof(NEW.details -> 'permitted') = 'number' THEN
        permit := (NEW.details ->> 'permitted')::numeric::integer;
    END IF;
    INSERT INTO overstock_samples AS s (site_id, slot, peak_full, permitted)
    VALUES (NEW.site_id,
            to_timestamp(floor(extract(epoch FROM NEW.last_at) / 900) * 900),
            full_n, permit)
    ON CONFLICT (site_id, slot) DO UPDATE
        SET peak_full = greatest(s.peak_full, EXCLUDED.peak_full),
            permitted = coalesce(EXCLUDED.permitted, s.permitted);
    RETURN NULL;
END $$;

CREATE TRIGGER alerts_overstock_sample
    AFTER INSERT OR UPDATE ON alerts
    FOR EACH ROW WHEN (NEW.kind = 'overstock' AND NEW.site_id IS NOT NULL)
    EXECUTE FUNCTION cyl_overstock_sample();

-- ---------------------------------------------------------------- indexes of the live tails

-- Refusals are a small share of the trajectory: the denials rollup and its live tail read
-- them by time without scanning every event.
CREATE INDEX IF NOT EXISTS events_refused_ts_idx ON events (ts) WHERE kind = 'fill_refused';
-- Alerts are counted by the day they were raised (first_at does not move when an alert is
-- bumped, so an alert never changes day between the rollup and the live tail).
CREATE INDEX IF NOT EXISTS alerts_first_at_idx ON alerts (first_at);
CREATE INDEX IF NOT EXISTS alerts_overstock_idx ON alerts (last_at) WHERE kind = 'overstock';

-- ---------------------------------------------------------------- the one definition of each

CREATE FUNCTION cyl_fills_daily(tz text, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (day date, station_id bigint, company_id bigint, district_code text, spec text,
               fills bigint, completed bigint, aborted bigint, overfill bigint,
               underfill bigint, net_kg numeric)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (f.ts AT TIME ZONE tz)::date, f.station_id, f.company_id, f.district_code, f.spec,
           count(*),
           count(*) FILTER (WHERE f.result = 'completed'),
           count(*) FILTER (WHERE f.result <> 'completed'),
           -- as the alerts: an aborted overfill still left too much gas in the cylinder
           count(*) FILTER (WHERE f.assessment = 'overfill'),
           count(*) FILTER (WHERE f.assessment = 'underfill' AND f.result = 'completed'),
           coalesce(sum(f.net_kg) FILTER (WHERE f.result = 'completed'), 0)
      FROM fills f
     WHERE f.ts >= t0 AND f.ts < t1
     GROUP BY 1, 2, 3, 4, 5
$$;

CREATE FUNCTION cyl_denials_daily(tz text, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (day date, site_id bigint, company_id bigint, district_code text, reason text,
               attempts bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (e.ts AT TIME ZONE tz)::date, e.site_id, e.company_id, e.district_code, r.reason,
           count(*)
      FROM events e
     CROSS JOIN LATERAL jsonb_array_elements_text(
           CASE WHEN jsonb_typeof(e.details -> 'reasons') = 'array'
                THEN e.details -> 'reasons' ELSE '[]'::jsonb END) AS r(reason)
     WHERE e.kind = 'fill_refused' AND e.ts >= t0 AND e.ts < t1
     GROUP BY 1, 2, 3, 4, 5
$$;

CREATE FUNCTION cyl_alerts_daily(tz text, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (day date, site_id bigint, company_id bigint, district_code text, kind text,
               alerts bigint, occurrences bigint, unresolved bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT (a.first_at AT TIME ZONE tz)::date, a.site_id, a.company_id, a.district_code, a.kind,
           count(*), sum(a.count)::bigint, count(*) FILTER (WHERE a.state <> 'resolved')
      FROM alerts a
     WHERE a.first_at >= t0 AND a.first_at < t1
     GROUP BY 1, 2, 3, 4, 5
$$;

-- The days [t0, t1) of each overstock alert, per site: peak_full is the day's highest sampled
-- count, else (an alert written before samples were kept, or by a bulk load) the alert's last
-- count; permitted likewise, else the site's permit now.
CREATE FUNCTION cyl_overstock_daily(tz text, t0 timestamptz, t1 timestamptz)
RETURNS TABLE (day date, site_id bigint, company_id bigint, district_code text,
               peak_full integer, permitted integer, alerts bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH covered AS (
        SELECT g::date AS day, a.id, a.site_id, a.company_id, a.district_code,
               CASE WHEN jsonb_typeof(a.details -> 'full') = 'number'
                    THEN (a.details ->> 'full')::numeric::integer END AS full_n,
               CASE WHEN jsonb_typeof(a.details -> 'permitted') = 'number'
                    THEN (a.details ->> 'permitted')::numeric::integer END AS permit
          FROM alerts a
         CROSS JOIN LATERAL generate_series(
               (greatest(a.first_at, t0) AT TIME ZONE tz)::date,
               (least(a.last_at, t1 - interval '1 microsecond') AT TIME ZONE tz)::date,
               interval '1 day') AS g
         WHERE a.kind = 'overstock' AND a.site_id IS NOT NULL
           AND a.last_at >= t0 AND a.first_at < t1
    ), days AS (
        SELECT c.day, c.site_id, max(c.company_id) AS company_id,
               max(c.district_code) AS district_code, max(c.full_n) AS full_n,
               max(c.permit) AS permit, count(DISTINCT c.id) AS alerts
          FROM covered c GROUP BY c.day, c.site_id
    )
    SELECT d.day, d.site_id, d.company_id, d.district_code,
           coalesce(smp.peak, d.full_n), coalesce(smp.permit, d.permit, s.permitted_full_storage),
           d.alerts
      FROM days d
      LEFT JOIN sites s ON s.id = d.site_id
      LEFT JOIN LATERAL (
            SELECT max(o.peak_full) AS peak, max(o.permitted) AS permit
              FROM overstock_samples o
             WHERE o.site_id = d.site_id
               AND o.slot >= (d.day::timestamp AT TIME ZONE tz)
               AND o.slot < ((d.day + 1)::timestamp AT TIME ZONE tz)) smp ON true
$$;

-- ---------------------------------------------------------------- building the rollups

CREATE FUNCTION cyl_rollups_create(tz text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    mode text := 'native';
BEGIN
    PERFORM now() AT TIME ZONE tz;  -- an unknown zone is refused here, not at every refresh
    DROP VIEW IF EXISTS rollup_fills_day, rollup_denials_day, rollup_alerts_day,
                        rollup_overstock_day;
    DROP MATERIALIZED VIEW IF EXISTS rollup_fills_mv, rollup_denials_mv, rollup_alerts_mv,
                                     rollup_overstock_mv;
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
            mode := 'timescale';
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'fills rollup: no continuous aggregate (%), a materialized view instead',
                SQLERRM;
        END;
    END IF;
    IF mode = 'native' THEN
        EXECUTE format('CREATE MATERIALIZED VIEW rollup_fills_mv AS SELECT * FROM '
                       'cyl_fills_daily(%L, ''-infinity'', ''infinity'') WITH NO DATA', tz);
        CREATE UNIQUE INDEX rollup_fills_mv_key
            ON rollup_fills_mv (day, station_id, company_id, district_code, spec);
        CREATE VIEW rollup_fills_day AS SELECT * FROM rollup_fills_mv;
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
    INSERT INTO rollup_state (name, tz, mode) VALUES ('reports', tz, mode)
    ON CONFLICT (name) DO UPDATE
        SET tz = EXCLUDED.tz, mode = EXCLUDED.mode, upto = NULL, refreshed_at = NULL,
            duration_ms = NULL, rebuilt_at = now();
    RETURN mode;
END $$;

-- ---------------------------------------------------------------- refreshing them

-- Refresh every materialized rollup and move the watermark to `upto` in one transaction, so a
-- reader sees the old rollups with the old watermark or the new with the new. One process at
-- a time (a transaction-scoped advisory lock): with `wait` false a busy lock answers false at
-- once (the schedule's case: another process is doing this round); with `wait` true it waits
-- (the CLI's and the tests': "refresh now, with what is stored now"). A zone other than the
-- rollups' rebuilds them first. A view never filled is filled plainly (CONCURRENTLY needs
-- rows to compare with).
CREATE FUNCTION cyl_rollups_refresh(upto date, tz text, wait boolean) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    started timestamptz := clock_timestamp();
    mv text;
BEGIN
    IF wait THEN
        PERFORM pg_advisory_xact_lock(208798240);
    ELSIF NOT pg_try_advisory_xact_lock(208798240) THEN
        RETURN false;
    END IF;
    IF (SELECT s.tz FROM rollup_state s WHERE s.name = 'reports') IS DISTINCT FROM tz THEN
        PERFORM cyl_rollups_create(tz);
    END IF;
    FOREACH mv IN ARRAY ARRAY['rollup_fills_mv', 'rollup_denials_mv', 'rollup_alerts_mv',
                              'rollup_overstock_mv'] LOOP
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

SELECT cyl_rollups_create('Asia/Shanghai');
