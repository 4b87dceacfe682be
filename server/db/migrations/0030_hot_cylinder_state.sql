-- Live cylinder state (last seen, position) is rewritten by almost every valve message:
-- a 5,000-message batch updates ~3,500 cylinder rows. PostgreSQL can do those as cheap
-- heap-only (HOT) updates — no index writes — only when (1) no indexed column changes and
-- (2) the row's page has free space. Measured on 100k cylinders: 3,500 updates took
-- 1.7–2.2 s and ~56k WAL records with the index on last_seen_at and full pages; 0.45 s and
-- ~3.6k WAL records without it and fillfactor 80 (docs/BENCHMARKS.md, "Ingest").
--
-- The valve-silence rule (ingest/housekeeping.py) scans last_seen_at once a minute; a
-- sequential scan there costs far less than an index write on every telemetry message.
-- Existing installations: fillfactor applies to pages written from now on; run
-- `VACUUM FULL cylinders;` in a maintenance window to repack the table at once.
DROP INDEX IF EXISTS cylinders_last_seen_idx;
ALTER TABLE cylinders SET (fillfactor = 80);
ALTER TABLE devices SET (fillfactor = 80);
