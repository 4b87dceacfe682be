-- How the hypertables are compressed (TimescaleDB path only; issue 14 item 6; measured in
-- docs/BENCHMARKS.md "TimescaleDB path (issue 14 item 6)"). 0001 turned compression on
-- (chunks older than 30 days) without saying how, so TimescaleDB chose per chunk: it took
-- the unique (msg_id, ts) index's columns as the order within a segment, and msg_id is a
-- device's random UUID — the readings of a valve lie in random order inside each batch, the
-- time column loses its delta encoding and min/max of a batch span the whole chunk. Stated
-- here instead:
--
--   telemetry  segment by cylinder_id, order by ts DESC: a valve's month in a few batches of
--              its own (a valve reads every few minutes: ~2,000 rows per valve and chunk),
--              and the one reader (ingest's circulation check: a cylinder's latest reads)
--              filters on cylinder_id, so it decompresses that valve's batches only;
--   positions  segment by vehicle_id, order by ts DESC: the same for a vehicle (positions
--              are read per vehicle, positions_vehicle_idx);
--   events     no segment, order by cylinder_id, ts DESC: a cylinder has a few events a
--   fills      month (a fill a month), so a segment per cylinder would hold one or two rows
--              and compress nothing; ordered by cylinder, a batch's min/max of cylinder_id
--              lets a trajectory or a cylinder's fills skip every other batch of the chunk;
--   dead_letters  left to TimescaleDB (no unique index, rare, read by time).
--
-- The native path has no compression: nothing to do there. A hypertable whose compression
-- 0001 could not enable (a build without it) is left as it is, with a NOTICE, as 0001 does.
-- Chunks compressed before this migration keep their settings until decompressed;
-- TimescaleDB applies these to every chunk compressed from now on.

DO $$
DECLARE
    t record;
    enabled boolean;
BEGIN
    IF NOT cyl_has_timescale() THEN
        RETURN;
    END IF;
    FOR t IN SELECT * FROM (VALUES
            ('telemetry', 'cylinder_id', 'ts DESC'),
            ('positions', 'vehicle_id', 'ts DESC'),
            ('events', '', 'cylinder_id, ts DESC'),
            ('fills', '', 'cylinder_id, ts DESC')) AS v (tbl, segmentby, orderby)
    LOOP
        EXECUTE $q$SELECT compression_enabled FROM timescaledb_information.hypertables
                    WHERE hypertable_schema = 'public' AND hypertable_name = $1$q$
           INTO enabled USING t.tbl;
        IF enabled IS NOT TRUE THEN
            RAISE NOTICE 'compression not enabled on %: settings not stated', t.tbl;
            CONTINUE;
        END IF;
        EXECUTE format('ALTER TABLE %I SET (timescaledb.compress_segmentby = %L,'
                       ' timescaledb.compress_orderby = %L)', t.tbl, t.segmentby, t.orderby);
    END LOOP;
END $$;
