-- A tamper-evident audit log (docs/SECURITY.md "Audit log"): every row carries the hash of the
-- row before it, so an edited, deleted or inserted-after-the-fact row breaks the chain at that
-- point and `cylwatch audit verify` names it. UPDATE and DELETE were already refused by
-- trigger (0001); TRUNCATE is refused too.
--
-- The chain is built by the database itself, whoever writes (the API, the CLI, an import), in a
-- BEFORE INSERT trigger that serialises audit writers on a transaction-scoped advisory lock and
-- only then takes the row's id: ids therefore follow the chain, and the previous row is always
-- the committed row with the highest id. Audit writes are people's actions (a few per second
-- at most), so the lock costs nothing that matters.

ALTER TABLE audit_log ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;

-- The canonical text of a row: a JSON array of its fields, in a fixed order (jsonb's text
-- form is deterministic), with the time in UTC to the microsecond.
CREATE OR REPLACE FUNCTION cyl_audit_row_hash(
    prev bytea, id bigint, at timestamptz, user_id bigint, username text, role text,
    action text, entity text, entity_id text, details jsonb, remote text
) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT sha256(
        coalesce(prev, '\x'::bytea) || convert_to(jsonb_build_array(
            id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), user_id, username,
            role, action, entity, entity_id, details, remote
        )::text, 'UTF8')
    )
$$;

-- Chain the rows that exist already, in id order.
DO $$
DECLARE
    r record;
    last bytea := NULL;
BEGIN
    -- the append-only trigger refuses UPDATE: lift it for this one-off backfill only
    ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        UPDATE audit_log SET prev_hash = last,
            hash = cyl_audit_row_hash(last, r.id, r.at, r.user_id, r.username, r.role, r.action,
                                      r.entity, r.entity_id, r.details, r.remote)
        WHERE id = r.id
        RETURNING hash INTO last;
    END LOOP;
    ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;
END $$;

ALTER TABLE audit_log ALTER COLUMN id DROP DEFAULT;

CREATE OR REPLACE FUNCTION cyl_audit_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(x'0C71A0D1'::int);
    NEW.id := nextval(pg_get_serial_sequence('audit_log', 'id'));
    NEW.at := coalesce(NEW.at, now());
    NEW.details := coalesce(NEW.details, '{}'::jsonb);
    SELECT hash INTO last FROM audit_log ORDER BY id DESC LIMIT 1;
    NEW.prev_hash := last;
    NEW.hash := cyl_audit_row_hash(last, NEW.id, NEW.at, NEW.user_id, NEW.username, NEW.role,
                                   NEW.action, NEW.entity, NEW.entity_id, NEW.details, NEW.remote);
    RETURN NEW;
END $$;

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION cyl_audit_chain();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION cyl_audit_append_only();
