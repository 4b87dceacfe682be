-- Licences and entrustments as the bureau and the companies manage them in the browser
-- (docs/API.md "Licences", "Entrustments").
--
-- A licence's status (valid / suspended / revoked) is the regulator's act: the reason and the
-- moment of the last change are kept with the holder, so a company reading its own licence
-- sees why it was suspended (the audit log, which also has it, is for admins and regulators).
-- A company's order phone (订气电话) is what the public QR page offers to call.
ALTER TABLE companies
    ADD COLUMN IF NOT EXISTS order_phone text,
    ADD COLUMN IF NOT EXISTS licence_status_reason text,
    ADD COLUMN IF NOT EXISTS licence_status_at timestamptz;

ALTER TABLE sites
    ADD COLUMN IF NOT EXISTS licence_status_reason text,
    ADD COLUMN IF NOT EXISTS licence_status_at timestamptz;

-- An entrustment (委托充装) is ended, not deleted: the row keeps who made it, who ended it and
-- why, and its valid_to becomes the last day it was in force — fill authorization
-- (ingest/auth.py) reads valid_from/valid_to only, so an ended entrustment stops counting at
-- once. A company never entrusts itself (NOT VALID: rows from before are left as they were).
-- Uniqueness of (owner, filler, valid_from) holds among the entrustments not ended only: one
-- ended by mistake on its first day can be made again from the same day.
ALTER TABLE entrustments
    ADD COLUMN IF NOT EXISTS note text,
    ADD COLUMN IF NOT EXISTS created_by bigint REFERENCES users(id),
    ADD COLUMN IF NOT EXISTS ended_at timestamptz,
    ADD COLUMN IF NOT EXISTS ended_by bigint REFERENCES users(id),
    ADD COLUMN IF NOT EXISTS end_reason text;

ALTER TABLE entrustments
    ADD CONSTRAINT entrustments_not_self CHECK (owner_company_id <> filler_company_id) NOT VALID;

ALTER TABLE entrustments
    DROP CONSTRAINT IF EXISTS entrustments_owner_company_id_filler_company_id_valid_from_key;
CREATE UNIQUE INDEX IF NOT EXISTS entrustments_valid_from_uidx
    ON entrustments (owner_company_id, filler_company_id, valid_from) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS entrustments_owner_idx ON entrustments (owner_company_id);
