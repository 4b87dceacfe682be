-- The enterprise data interface's ledger (政府与企业数据对接; server.db.enterprise,
-- docs/API.md "Enterprise data interface").
--
-- An enterprise names each record it pushes with its own record_id; the first time a
-- record_id of a company is stored, its result is kept here, in the same transaction as the
-- cylinder or fill it stored, so that sending the record again (a retry after a timeout, a
-- whole batch replayed) answers "duplicate" with that first result and changes nothing.
-- A rejected record leaves no row: corrected, it may be sent again under the same id.
--
-- company_id NULL is a platform administrator's key (no company): one namespace for all of
-- them, hence NULLS NOT DISTINCT (PostgreSQL 15). cylinder_id and the fill's (msg_id, ts)
-- point at what the record stored without a foreign key: the fills table is partitioned
-- (a foreign key cannot reach it), and the ledger must not stand in the way of removing a
-- cylinder registered by mistake.

CREATE TABLE enterprise_records (
    id           bigserial PRIMARY KEY,
    company_id   bigint REFERENCES companies(id),
    kind         text NOT NULL CHECK (kind IN ('cylinder', 'fill')),
    record_id    text NOT NULL CHECK (length(record_id) BETWEEN 1 AND 100),
    user_id      bigint NOT NULL REFERENCES users(id),
    cylinder_id  bigint,
    fill_msg_id  text,
    fill_ts      timestamptz,
    result       jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (company_id, kind, record_id)
);
-- pulling one's records back: GET /api/v1/ingest/{cylinders,fills}?since=
CREATE INDEX enterprise_records_pull_idx ON enterprise_records (company_id, kind, created_at, id);
