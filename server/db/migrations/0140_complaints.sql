-- Complaints worked to an end (DOMAIN.md "Complaints"; server.domain.complaints):
-- new → assigned → answered → closed (upheld / not upheld), a ticket the complainant follows
-- on a public page, an answer deadline, a photo, and the history of every move.
--
-- Credit evaluation counts "complaint upheld −3" from `outcome = 'upheld'` by `company_id`
-- (the company concerned) and `closed_at` (complaints_upheld_idx below).

-- A ticket: 12 symbols of server.domain.complaints.TICKET_ALPHABET (no 0/O, 1/I), each from
-- the first byte of a version-4 UUID — random from PostgreSQL's strong source, and 256 is a
-- multiple of 32, so every symbol is equally likely. The API inserts with this default.
CREATE FUNCTION complaint_ticket() RETURNS text LANGUAGE sql VOLATILE AS $$
    SELECT string_agg(
               substr('23456789ABCDEFGHJKLMNPQRSTUVWXYZ',
                      1 + get_byte(uuid_send(gen_random_uuid()), 0) % 32, 1), '')
      FROM generate_series(1, 12)
$$;

ALTER TABLE complaints
    DROP CONSTRAINT IF EXISTS complaints_state_check,
    ADD COLUMN ticket text,
    ADD COLUMN kind text NOT NULL DEFAULT 'complaint'
        CHECK (kind IN ('complaint', 'report', 'fault')),
    ADD COLUMN source text NOT NULL DEFAULT 'qr' CHECK (source IN ('qr', 'mobile', 'phone')),
    ADD COLUMN photo_upload_id bigint REFERENCES uploads(id),
    ADD COLUMN created_by bigint REFERENCES users(id),       -- who entered a phone call
    ADD COLUMN deadline date,                                -- last day to answer (city's day)
    ADD COLUMN assigned_company_id bigint REFERENCES companies(id),
    ADD COLUMN assigned_user_id bigint REFERENCES users(id),
    ADD COLUMN assigned_at timestamptz,
    ADD COLUMN assigned_by bigint REFERENCES users(id),
    ADD COLUMN answer text CHECK (answer IS NULL OR length(answer) BETWEEN 1 AND 5000),
    ADD COLUMN answered_at timestamptz,
    ADD COLUMN answered_by bigint REFERENCES users(id),
    ADD COLUMN outcome text CHECK (outcome IN ('upheld', 'not_upheld')),
    ADD COLUMN closed_at timestamptz,
    ADD COLUMN closed_by bigint REFERENCES users(id),
    ADD COLUMN reminded_at timestamptz,                      -- the reminder round marked it overdue
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- 'handled' complaints were dealt with outside the platform: closed, and not counted against
-- anyone's credit (no outcome was ever recorded).
UPDATE complaints
   SET state = 'closed', outcome = 'not_upheld',
       closed_at = COALESCE(handled_at, created_at), closed_by = handled_by
 WHERE state = 'handled';
UPDATE complaints SET ticket = complaint_ticket() WHERE ticket IS NULL;

ALTER TABLE complaints
    DROP COLUMN handled_at,
    DROP COLUMN handled_by,
    ALTER COLUMN ticket SET DEFAULT complaint_ticket(),
    ALTER COLUMN ticket SET NOT NULL,
    ADD CONSTRAINT complaints_ticket_check CHECK (ticket ~ '^[2-9A-HJ-NP-Z]{12}$'),
    ADD CONSTRAINT complaints_state_check
        CHECK (state IN ('new', 'assigned', 'answered', 'closed')),
    ADD CONSTRAINT complaints_assigned_check
        CHECK (state <> 'assigned' OR assigned_company_id IS NOT NULL OR assigned_user_id IS NOT NULL),
    ADD CONSTRAINT complaints_answered_check
        CHECK (state <> 'answered' OR (answer IS NOT NULL AND answered_at IS NOT NULL)),
    ADD CONSTRAINT complaints_closed_check
        CHECK ((state = 'closed') = (outcome IS NOT NULL AND closed_at IS NOT NULL));

CREATE UNIQUE INDEX complaints_ticket_idx ON complaints (ticket);
CREATE INDEX complaints_assigned_company_idx ON complaints (assigned_company_id, created_at DESC);
CREATE INDEX complaints_assigned_user_idx ON complaints (assigned_user_id, created_at DESC)
    WHERE assigned_user_id IS NOT NULL;
CREATE INDEX complaints_district_idx ON complaints (district_code, created_at DESC);
-- the reminder round: open complaints not yet marked, by deadline
CREATE INDEX complaints_due_idx ON complaints (deadline)
    WHERE state IN ('new', 'assigned') AND reminded_at IS NULL;
-- credit evaluation: upheld complaints per company in a period
CREATE INDEX complaints_upheld_idx ON complaints (company_id, closed_at) WHERE outcome = 'upheld';

-- Every move of a complaint, who made it and when (the page's history). Internal: never
-- shown on the public tracking page. Removed with its complaint (the audit log keeps the
-- people's writes for ever).
CREATE TABLE complaint_events (
    id            bigserial PRIMARY KEY,
    complaint_id  bigint NOT NULL REFERENCES complaints(id) ON DELETE CASCADE,
    at            timestamptz NOT NULL DEFAULT now(),
    kind          text NOT NULL CHECK (kind IN ('filed', 'assign', 'answer', 'close', 'overdue')),
    from_state    text,
    to_state      text NOT NULL,
    actor_id      bigint REFERENCES users(id),              -- none: the public, or the platform
    note          text CHECK (note IS NULL OR length(note) <= 2000),
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX complaint_events_complaint_idx ON complaint_events (complaint_id, id);
-- one overdue mark per complaint and deadline, whatever the rounds do at the same time
CREATE UNIQUE INDEX complaint_events_overdue_idx
    ON complaint_events (complaint_id, (details ->> 'deadline')) WHERE kind = 'overdue';

-- Complaints filed before their history was kept get their filing (and closing) as events.
INSERT INTO complaint_events (complaint_id, at, kind, from_state, to_state)
SELECT id, created_at, 'filed', NULL, 'new' FROM complaints;
INSERT INTO complaint_events (complaint_id, at, kind, from_state, to_state, actor_id, details)
SELECT id, closed_at, 'close', 'new', 'closed', closed_by, '{"outcome": "not_upheld"}'::jsonb
  FROM complaints WHERE state = 'closed';
