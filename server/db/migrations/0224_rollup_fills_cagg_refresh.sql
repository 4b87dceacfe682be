-- The fills rollup of the TimescaleDB path follows the refresh round (migrations 0220–0223;
-- server/db/rollup_refresh.py; docs/BENCHMARKS.md "TimescaleDB path (issue 14 item 6)").
--
-- On that path rollup_fills_day reads the continuous aggregate rollup_fills_cagg, which
-- TimescaleDB's own policy refreshed every five minutes while `cylwatch reports refresh` and
-- the server's round refreshed only the materialized views: a fill stored (or removed) for a
-- day the aggregate had already materialized stayed out of every report until the policy's
-- next run, so the two paths answered different totals right after a refresh, and the
-- command's promise ("refresh now, with what is stored now") did not hold for fills.
--
-- A continuous aggregate can be refreshed only by its owner and only outside a transaction
-- block (refresh_continuous_aggregate is a procedure that commits); the server's role owns
-- nothing (migration 0072) and a SECURITY DEFINER routine always runs in one transaction. What
-- the owner's functions can do is run the aggregate's policy now (alter_job; the job runs as
-- its owner in TimescaleDB's scheduler) and say when it has run. The round calls
-- cyl_rollup_fills_refreshed() until the policy has run once after the round began.
-- The policy refreshes every invalidated day whatever its age, so on this path a late fill
-- of any day counts from the next round (the native path: from the next day's first round
-- for days before rollup_state.split, migration 0221).
--
-- Nothing here touches the native path: both functions answer 'native' there. The functions
-- read TimescaleDB's catalogue only when it exists (plpgsql resolves names at run time).

-- The fills rollup's policy job, NULL when there is none (native path, or the aggregate was
-- refused and 0220's fallback views were built).
CREATE FUNCTION cyl_rollup_fills_job() RETURNS integer
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    job integer;
BEGIN
    IF NOT cyl_has_timescale() OR to_regclass('rollup_fills_cagg') IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE $q$SELECT j.job_id FROM timescaledb_information.jobs j
                WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
                  AND j.hypertable_schema = 'public'
                  AND j.hypertable_name = 'rollup_fills_cagg'
                ORDER BY j.job_id LIMIT 1$q$ INTO job;
    RETURN job;
END $$;

-- Where the policy stands relative to `since` (a clock_timestamp() taken before the call):
--   'native'   nothing to wait for (no continuous aggregate);
--   'done'     a run started at or after `since` finished successfully;
--   'failed'   that run failed (timescaledb_information.job_errors and the server log say why);
--   'paused'   the job is not scheduled (alter_job ... scheduled => false);
--   'running'  a run is under way (begun before `since` or after);
--   'waiting'  no run since `since`: the job is set to start now if it was not already.
-- A run begun before `since` does not count: when it ends, its next start is a schedule
-- away, and the next call sets it to now.
CREATE FUNCTION cyl_rollup_fills_refreshed(since timestamptz) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    job integer := cyl_rollup_fills_job();
    st record;
BEGIN
    IF job IS NULL THEN
        RETURN 'native';
    END IF;
    -- job_stats' job_status and last_run_status lag a run's start (the first reads
    -- pg_stat_activity, the second keeps the previous run's outcome until this one ends):
    -- a run is over when its duration is known (last finish after last start).
    EXECUTE $q$SELECT s.last_run_started_at AS started, s.last_run_duration AS took,
                      s.last_run_status AS status, s.next_start, j.scheduled
                 FROM timescaledb_information.jobs j
                 LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
                WHERE j.job_id = $1$q$ INTO st USING job;
    IF NOT st.scheduled THEN
        RETURN 'paused';
    END IF;
    IF st.started IS NOT NULL AND st.took IS NULL THEN
        RETURN 'running';
    END IF;
    IF st.started >= since THEN
        RETURN CASE WHEN st.status = 'Success' THEN 'done' ELSE 'failed' END;
    END IF;
    IF st.next_start IS NULL OR st.next_start > clock_timestamp() THEN
        EXECUTE 'SELECT alter_job($1, next_start => clock_timestamp())' USING job;
    END IF;
    RETURN 'waiting';
END $$;
