-- Outbound delivery (docs/OUTBOUND.md): the SMS queue and the upload to the provincial /
-- national platform. Both are queues in PostgreSQL so that a message or a change is written
-- in the same transaction as the business change that causes it: it commits with it or not
-- at all, and no process holds the only copy.

-- ---------------------------------------------------------------- SMS

-- One text message. queued -> sending -> sent | failed; a transient failure puts it back to
-- queued with a later next_attempt_at. `idem_key` is the caller's idempotency key: enqueuing
-- the same key twice stores one message. The gateway is told `client_msg_id` (derived from
-- the id) so that it can drop a repeat of a message it already accepted.
CREATE TABLE IF NOT EXISTS sms_outbox (
    id                  bigserial PRIMARY KEY,
    idem_key            text NOT NULL UNIQUE,
    phone               text NOT NULL,
    kind                text NOT NULL,
    body                text NOT NULL,
    state               text NOT NULL DEFAULT 'queued'
                        CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    claimed_at          timestamptz,
    last_error          text,
    provider_message_id text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    CHECK ((state = 'sent') = (sent_at IS NOT NULL))
);
-- the sender's claim: due rows only (a sent or failed row is never scanned again)
CREATE INDEX IF NOT EXISTS sms_outbox_due_idx ON sms_outbox (next_attempt_at, id)
    WHERE state IN ('queued', 'sending');
-- the per-number hourly limit counts a number's recent sends
CREATE INDEX IF NOT EXISTS sms_outbox_phone_idx ON sms_outbox (phone, sent_at);
CREATE INDEX IF NOT EXISTS sms_outbox_created_idx ON sms_outbox (created_at DESC, id DESC);

-- ---------------------------------------------------------------- upload to the platform

-- Which outbound feeds are switched on. The server writes its `[upstream] enabled` setting
-- here at start-up (server.outbound.upstream.write_switch): a migration cannot read the
-- settings, and a row in a table, unlike a per-session variable, is seen by every writer —
-- the API, the archive importer, ingest workers in other processes, a console.
CREATE TABLE IF NOT EXISTS outbound_switch (
    name        text PRIMARY KEY,
    enabled     boolean NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now()
);
INSERT INTO outbound_switch (name, enabled) VALUES ('upstream', false) ON CONFLICT DO NOTHING;

-- A batch: the unit sent, retried and dead-lettered. pending -> sending -> delivered, or
-- back to pending with a later next_attempt_at, or dead after the last attempt.
CREATE TABLE IF NOT EXISTS upstream_batches (
    id                  bigserial PRIMARY KEY,
    state               text NOT NULL DEFAULT 'sending'
                        CHECK (state IN ('pending', 'sending', 'delivered', 'dead')),
    records             integer NOT NULL,
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    claimed_at          timestamptz,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    delivered_at        timestamptz
);
CREATE INDEX IF NOT EXISTS upstream_batches_due_idx ON upstream_batches (next_attempt_at, id)
    WHERE state IN ('pending', 'sending');
CREATE INDEX IF NOT EXISTS upstream_batches_delivered_idx ON upstream_batches (delivered_at)
    WHERE state = 'delivered';
CREATE INDEX IF NOT EXISTS upstream_batches_state_idx ON upstream_batches (state, id);

-- One change to upload: a cylinder created, updated or scrapped, a fill recorded. `record` is
-- the row as it was at the change. The id is the receiver's de-duplication key, and it grows
-- with the order of the changes to one cylinder (a second update waits for the first's row
-- lock before it takes its id).
CREATE TABLE IF NOT EXISTS upstream_outbox (
    id          bigserial PRIMARY KEY,
    entity      text NOT NULL CHECK (entity IN ('cylinder', 'fill')),
    op          text NOT NULL CHECK (op IN ('created', 'updated', 'scrapped', 'recorded')),
    record      jsonb NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now(),
    batch_id    bigint REFERENCES upstream_batches (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS upstream_outbox_unbatched_idx ON upstream_outbox (id) WHERE batch_id IS NULL;
CREATE INDEX IF NOT EXISTS upstream_outbox_batch_idx ON upstream_outbox (batch_id);

-- The triggers write the outbox in the writer's own transaction, whoever the writer is.
-- Switched off they must cost ingest nothing measurable, so the switch is read once per
-- statement, not per row: a BEFORE ... FOR EACH STATEMENT trigger copies it into the
-- transaction-local variable `cylwatch.upstream`, and the row triggers' WHEN clause compares
-- that variable — a built-in call, no PL/pgSQL, no query — so a switched-off row never
-- enters a trigger function. (A statement-level trigger with transition tables would be
-- cheaper still, but TimescaleDB hypertables refuse transition tables; row triggers work on
-- hypertables, native partitions and COPY alike.)
CREATE OR REPLACE FUNCTION cyl_upstream_arm() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('cylwatch.upstream',
        CASE WHEN coalesce((SELECT enabled FROM outbound_switch WHERE name = 'upstream'), false)
             THEN 'on' ELSE 'off' END, true);
    RETURN NULL;
END $$;

-- A cylinder's archive record (DOMAIN.md "Cylinder record"): the fields the platform keeps,
-- never its live position or the customer holding it.
CREATE OR REPLACE FUNCTION cyl_upstream_cylinder() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO upstream_outbox (entity, op, record) VALUES (
        'cylinder',
        CASE WHEN TG_OP = 'INSERT' THEN 'created'
             WHEN NEW.status = 'scrapped' AND OLD.status IS DISTINCT FROM 'scrapped' THEN 'scrapped'
             ELSE 'updated' END,
        jsonb_build_object(
            'id', NEW.id, 'tag', NEW.tag, 'stamp', NEW.stamp, 'barcode', NEW.barcode,
            'owner_company_id', NEW.owner_company_id, 'medium', NEW.medium, 'spec', NEW.spec,
            'volume_l', NEW.volume_l, 'tare_kg', NEW.tare_kg,
            'wall_thickness_mm', NEW.wall_thickness_mm, 'manufacturer', NEW.manufacturer,
            'manufacture_date', NEW.manufacture_date, 'serial_no', NEW.serial_no,
            'last_inspection_date', NEW.last_inspection_date,
            'next_inspection_date', NEW.next_inspection_date,
            'inspection_count', NEW.inspection_count, 'scrap_date', NEW.scrap_date,
            'valve_type', NEW.valve_type, 'inspection_ring_no', NEW.inspection_ring_no,
            'use_registration_no', NEW.use_registration_no, 'status', NEW.status,
            'tag_voided', NEW.tag_voided, 'registered_at', NEW.registered_at));
    RETURN NULL;
END $$;

-- A fill record, without the operator's check lists (free-form, not the platform's).
CREATE OR REPLACE FUNCTION cyl_upstream_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO upstream_outbox (entity, op, record)
    VALUES ('fill', 'recorded', to_jsonb(NEW) - 'pre_check' - 'post_check' - 'received_at');
    RETURN NULL;
END $$;

CREATE TRIGGER cylinders_upstream_arm BEFORE INSERT OR UPDATE OF
        tag, stamp, barcode, owner_company_id, medium, spec, volume_l, tare_kg,
        wall_thickness_mm, manufacturer, manufacture_date, serial_no, last_inspection_date,
        next_inspection_date, inspection_count, scrap_date, valve_type, inspection_ring_no,
        use_registration_no, status, tag_voided
    ON cylinders FOR EACH STATEMENT EXECUTE FUNCTION cyl_upstream_arm();
CREATE TRIGGER cylinders_upstream_created AFTER INSERT ON cylinders
    FOR EACH ROW WHEN (current_setting('cylwatch.upstream', true) = 'on')
    EXECUTE FUNCTION cyl_upstream_cylinder();
-- `UPDATE OF` the archive columns (here and on the arming trigger above): ingest's
-- live-state updates (position, fill state, last seen) name none of them, so neither trigger
-- is even considered for them.
CREATE TRIGGER cylinders_upstream_updated AFTER UPDATE OF
        tag, stamp, barcode, owner_company_id, medium, spec, volume_l, tare_kg,
        wall_thickness_mm, manufacturer, manufacture_date, serial_no, last_inspection_date,
        next_inspection_date, inspection_count, scrap_date, valve_type, inspection_ring_no,
        use_registration_no, status, tag_voided
    ON cylinders FOR EACH ROW
    WHEN (current_setting('cylwatch.upstream', true) = 'on'
          AND (OLD.tag, OLD.stamp, OLD.barcode, OLD.owner_company_id, OLD.medium, OLD.spec,
               OLD.volume_l, OLD.tare_kg, OLD.wall_thickness_mm, OLD.manufacturer,
               OLD.manufacture_date, OLD.serial_no, OLD.last_inspection_date,
               OLD.next_inspection_date, OLD.inspection_count, OLD.scrap_date, OLD.valve_type,
               OLD.inspection_ring_no, OLD.use_registration_no, OLD.status, OLD.tag_voided)
          IS DISTINCT FROM
              (NEW.tag, NEW.stamp, NEW.barcode, NEW.owner_company_id, NEW.medium, NEW.spec,
               NEW.volume_l, NEW.tare_kg, NEW.wall_thickness_mm, NEW.manufacturer,
               NEW.manufacture_date, NEW.serial_no, NEW.last_inspection_date,
               NEW.next_inspection_date, NEW.inspection_count, NEW.scrap_date, NEW.valve_type,
               NEW.inspection_ring_no, NEW.use_registration_no, NEW.status, NEW.tag_voided))
    EXECUTE FUNCTION cyl_upstream_cylinder();

-- On a hypertable or a partitioned table these are defined once on the parent and apply to
-- every chunk or partition, present and future; ingest's INSERT ... SELECT and any COPY fire
-- them for each row actually stored (a duplicate skipped by ON CONFLICT fires nothing).
CREATE TRIGGER fills_upstream_arm BEFORE INSERT ON fills
    FOR EACH STATEMENT EXECUTE FUNCTION cyl_upstream_arm();
CREATE TRIGGER fills_upstream_recorded AFTER INSERT ON fills
    FOR EACH ROW WHEN (current_setting('cylwatch.upstream', true) = 'on')
    EXECUTE FUNCTION cyl_upstream_fill();
