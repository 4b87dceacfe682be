-- Credit evaluation (信用评价, DOMAIN.md "Credit evaluation"; server.domain.credit).
--
-- credit_events is the ledger: one row per dated good or bad event of a company, with its
-- signed points and its source. The recomputation round (server.db.credit_round) derives the
-- bad events from the facts — refused fills, overfill / overstock / suspected illegal fill
-- alerts, upheld complaints, licence lapses — and upserts them by (kind, source_type,
-- source_id), so running it twice, or in two processes at once, changes nothing the second
-- time. Regulators record good and bad conduct by hand (source_type 'manual').
-- Companies and sites are not deleted by the platform; if one is removed from the register
-- by hand, its ledger and snapshots go with it (a site's entries stay, without the site).
CREATE TABLE credit_events (
    id           bigserial PRIMARY KEY,
    company_id   bigint NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
    day          date NOT NULL,                   -- the city's calendar day of the event
    kind         text NOT NULL CHECK (kind IN (
                     'denied_attempt', 'overfill', 'overstock_day', 'suspected_illegal_fill',
                     'complaint_upheld', 'rectification_overdue', 'licence_lapsed',
                     'good_conduct', 'bad_conduct')),
    points       numeric(9, 2) NOT NULL,          -- signed: bad conduct is negative
    count        integer NOT NULL DEFAULT 1 CHECK (count >= 1),  -- events the row stands for
    source_type  text NOT NULL CHECK (source_type ~ '^[a-z_]{1,40}$'),
    source_id    text NOT NULL CHECK (length(source_id) BETWEEN 1 AND 200),
    site_id      bigint REFERENCES sites(id) ON DELETE SET NULL,  -- the site concerned, if any
    note         text CHECK (note IS NULL OR length(note) <= 1000),
    created_by   bigint REFERENCES users(id) ON DELETE SET NULL,  -- a manual event's regulator
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credit_events_source_key UNIQUE (kind, source_type, source_id),
    CONSTRAINT credit_events_manual_check
        CHECK ((source_type = 'manual') = (kind IN ('good_conduct', 'bad_conduct'))),
    CONSTRAINT credit_events_sign_check
        CHECK (kind = 'good_conduct' AND points > 0 OR kind <> 'good_conduct' AND points <= 0)
);
-- the detail page's ledger (newest first) and the round's sums per window
CREATE INDEX credit_events_company_idx ON credit_events (company_id, day DESC, id DESC);
CREATE INDEX credit_events_day_idx ON credit_events (day);

-- Monthly snapshots: each company's score, grade and breakdown as of the month's last day
-- (the current month: as of the round's day). Pages read these, never the ledger's sums.
CREATE TABLE credit_scores (
    company_id   bigint NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
    month        date NOT NULL CHECK (extract(day FROM month) = 1),
    as_of        date NOT NULL,
    score        numeric(9, 2) NOT NULL,
    grade        text NOT NULL CHECK (grade IN ('A', 'B', 'C', 'D')),
    rank         integer NOT NULL CHECK (rank >= 1),      -- in the city, best first
    ranked_of    integer NOT NULL CHECK (ranked_of >= rank),
    breakdown    jsonb NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (company_id, month)
);
CREATE INDEX credit_scores_month_idx ON credit_scores (month, rank);

-- The round's state, so that a restart or another server process knows when the last one
-- ran (the schedule is [credit] interval_s after it) and a page can say how fresh it is.
CREATE TABLE credit_rounds (
    name         text PRIMARY KEY CHECK (name = 'credit'),
    round        bigint NOT NULL DEFAULT 0,
    started_at   timestamptz,
    finished_at  timestamptz,
    trigger      text,                            -- 'schedule' or 'user:<id>'
    as_of        date,
    inserted     integer NOT NULL DEFAULT 0,
    updated      integer NOT NULL DEFAULT 0,
    deleted      integer NOT NULL DEFAULT 0,
    companies    integer NOT NULL DEFAULT 0,
    duration_ms  integer NOT NULL DEFAULT 0
);
INSERT INTO credit_rounds (name) VALUES ('credit');

-- Searching companies by name (the ranking's box and the public search): trigram similarity
-- when pg_trgm can be created here (a trusted extension since PostgreSQL 13), plain ILIKE
-- otherwise (server.db.credit asks which at run time). The GIN index serves both.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'pg_trgm present but not creatable (%): company search uses ILIKE', SQLERRM;
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS companies_name_trgm_idx ON companies'
                ' USING gin (name gin_trgm_ops)';
    END IF;
END $$;
