-- Scheduled reports (docs/API.md "Scheduled reports"): a person's schedule of a report with
-- its filters, daily / weekly / monthly, as CSV or XLSX; one run per schedule and period.
-- UNIQUE (schedule_id, period_first) is the lock that keeps several server processes from
-- running one schedule twice for the same period: a run is claimed by inserting its row.

-- The files a run writes are uploads of the platform's own making (server.kernel.uploads
-- store_generated): CSV and XLSX join the types the table accepts.
ALTER TABLE uploads DROP CONSTRAINT IF EXISTS uploads_mime_check;
ALTER TABLE uploads ADD CONSTRAINT uploads_mime_check CHECK (mime IN (
    'image/jpeg', 'image/png', 'image/webp', 'application/pdf', 'video/mp4',
    'text/csv', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'));

CREATE TABLE report_schedules (
    id          bigserial PRIMARY KEY,
    owner_id    bigint NOT NULL REFERENCES users(id),
    report      text NOT NULL CHECK (report ~ '^[a-z][a-z0-9-]{1,40}$'),
    params      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    frequency   text NOT NULL CHECK (frequency IN ('daily', 'weekly', 'monthly')),
    format      text NOT NULL CHECK (format IN ('csv', 'xlsx')),
    title       text CHECK (length(title) <= 200),
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX report_schedules_owner_idx ON report_schedules (owner_id);
CREATE INDEX report_schedules_active_idx ON report_schedules (id) WHERE active;

CREATE TABLE report_runs (
    id            bigserial PRIMARY KEY,
    schedule_id   bigint NOT NULL REFERENCES report_schedules(id) ON DELETE CASCADE,
    period_first  date NOT NULL,
    period_last   date NOT NULL CHECK (period_last >= period_first),
    state         text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'failed')),
    attempts      integer NOT NULL DEFAULT 1,
    upload_id     bigint REFERENCES uploads(id),
    row_count     integer,
    message_id    bigint,
    error         text,
    claimed_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    UNIQUE (schedule_id, period_first)
);
CREATE INDEX report_runs_schedule_idx ON report_runs (schedule_id, period_first DESC);
