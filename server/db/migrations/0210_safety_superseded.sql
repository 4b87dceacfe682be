-- A correction supersedes the old record's open rectifications (docs/API.md "Safety
-- inspections"; server.db.safety.open_rectifications).
--
-- A correction (a new record whose `corrects` names the old one) is the truth about the visit:
-- the old record's open rectifications are closed as 'superseded' (superseded_by: the
-- correction) and the correction opens its own for the items it fails. An item failed in both
-- is carried over (carried_from: the old rectification): its deadline is the earlier of the
-- two and an overdue mark is kept, so a correction never postpones a deadline, and an
-- overdue rectification is not counted against the company's credit a second time.
ALTER TABLE safety_rectifications
    DROP CONSTRAINT safety_rectifications_state_check,
    DROP CONSTRAINT safety_rectifications_check,
    DROP CONSTRAINT safety_rectifications_check1,
    ADD COLUMN superseded_by bigint REFERENCES safety_inspections(id),
    ADD COLUMN carried_from bigint REFERENCES safety_rectifications(id),
    ADD CONSTRAINT safety_rectifications_state_check
        CHECK (state IN ('open', 'closed', 'superseded')),
    ADD CONSTRAINT safety_rectifications_closed_check
        CHECK ((state = 'open') = (closed_at IS NULL)),
    ADD CONSTRAINT safety_rectifications_recheck_check
        CHECK (state <> 'closed' OR recheck_upload_id IS NOT NULL),
    ADD CONSTRAINT safety_rectifications_superseded_check
        CHECK ((state = 'superseded') = (superseded_by IS NOT NULL));
CREATE INDEX safety_rectifications_carried_idx ON safety_rectifications (carried_from)
    WHERE carried_from IS NOT NULL;
