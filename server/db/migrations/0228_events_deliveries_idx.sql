-- Deliveries by time, for the sales and real-name-progress reports (server/api/report_business.py;
-- docs/ARCHITECTURE.md §9 "Reports"; docs/BENCHMARKS.md "Reports").
--
-- Both count the trajectory's `deliver` events of a period per bucket and company, and the share
-- of them to a real-name account. Through events_kind_idx (kind, ts) a month of a 1M-cylinder
-- city is ~330k index entries and as many heap fetches scattered over the month's ~1.4 GB
-- partition: 28 s for a 30-day page with the period before it (load ~10, docs/BENCHMARKS.md).
-- Deliveries are ~8 % of the events and never updated, so a partial index carrying every column
-- these reports and their role scope read (docs/ARCHITECTURE.md §7: district, company, site) and
-- the customer the real-name test joins answers them by index-only scans: autovacuum marks an
-- insert-only partition all-visible, and only the live tail of today fetches heap pages.
-- The cost falls on delivery scans only (one small index entry each), not on fills or telemetry.
CREATE INDEX IF NOT EXISTS events_deliver_ts_idx ON events (ts)
    INCLUDE (company_id, customer_id, site_id, district_code)
    WHERE kind = 'deliver';
