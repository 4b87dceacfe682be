-- Periodic inspection and scrapping (docs/API.md "Periodic inspection and scrapping";
-- rules in server.domain.transitions, vocabulary in server.domain.statuses.SCRAP_REASONS).
--
-- 1. Why a cylinder was scrapped. A failed periodic inspection, a scrap decided at an
--    inspection and a direct scrap (POST /api/v1/cylinders/{id}/scrap, recorded here as result
--    'scrap') each carry a reason from a closed vocabulary, so an agency's record of the day
--    holds every decision it took, and a report can count them by reason. The CHECK mirrors
--    SCRAP_REASONS; a pass carries none. Rows written before this migration keep NULL.
ALTER TABLE inspections ADD COLUMN scrap_reason text
    CHECK (scrap_reason IN ('failed_inspection', 'over_age', 'damage', 'markings_illegible',
                            'modified', 'owner_request', 'other'));
ALTER TABLE inspections ADD CONSTRAINT inspections_scrap_reason_only_scrapping
    CHECK (result <> 'pass' OR scrap_reason IS NULL);

-- 2. An agency's day's work and a regulator's view of a day read by inspection day.
CREATE INDEX inspections_agency_day_idx ON inspections (agency_site_id, inspected_on);
CREATE INDEX inspections_day_idx ON inspections (inspected_on);

-- 3. Scrapping voids the tag for ever (DOMAIN.md "Standards": a tag code is never reused after
--    scrapping; docs/ARCHITECTURE.md §4: a voided tag answers `unknown_tag` at the gun). The API
--    voids it when it scraps; these triggers make it hold for every writer alike (a PATCH of the
--    status, the archive import, a console), as migration 0060 does for the status itself:
--    - the move to `scrapped` voids the tag (a record inserted already scrapped states its own
--      tag_voided: it comes from another system of record, with its history);
--    - a voided tag is never un-voided, and a record holding one never changes its tag (the old
--      code would otherwise be free to register on another cylinder). The error is a check
--      violation naming the rule, so a client reaching it gets a 400 naming `tag`, not a 500.
CREATE OR REPLACE FUNCTION cyl_scrapping_voids_tag() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.tag_voided := true;
    RETURN NEW;
END
$$;

CREATE TRIGGER cylinders_scrapping_voids_tag BEFORE UPDATE OF status ON cylinders
    FOR EACH ROW WHEN (NEW.status = 'scrapped' AND OLD.status IS DISTINCT FROM 'scrapped')
    EXECUTE FUNCTION cyl_scrapping_voids_tag();

CREATE OR REPLACE FUNCTION cyl_refuse_unvoiding() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the tag % is voided for ever; it is never restored nor replaced (cylinder %)',
        OLD.tag, OLD.id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'cylinders_tag_voided_final',
              TABLE = 'cylinders', COLUMN = 'tag';
END
$$;

CREATE TRIGGER cylinders_tag_voided_final BEFORE UPDATE OF tag, tag_voided ON cylinders
    FOR EACH ROW WHEN (OLD.tag_voided AND (NOT NEW.tag_voided OR NEW.tag IS DISTINCT FROM OLD.tag))
    EXECUTE FUNCTION cyl_refuse_unvoiding();
