-- A scrapped cylinder never returns to use (docs/API.md "Cylinders"; server.domain.transitions):
-- TSG 23-2021 takes a cylinder out of use for good, and a tag is never reused after
-- scrapping. The API and the archive import refuse the move before they write; this trigger
-- is the last word, for every writer alike (a script, a console, a future code path).
--
-- The error is a check violation naming the rule (`cylinders_scrapped_final`), so a client
-- that ever reaches it is told which field broke a rule of the record, not given a 500.
-- Keeping the status `scrapped` (any other column changing) is allowed.

CREATE OR REPLACE FUNCTION cyl_refuse_unscrapping() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'cylinder % is scrapped; a scrapped cylinder never returns to use (status % refused)',
        OLD.tag, NEW.status
        USING ERRCODE = 'check_violation', CONSTRAINT = 'cylinders_scrapped_final',
              TABLE = 'cylinders', COLUMN = 'status';
END
$$;

CREATE TRIGGER cylinders_scrapped_final BEFORE UPDATE OF status ON cylinders
    FOR EACH ROW WHEN (OLD.status = 'scrapped' AND NEW.status IS DISTINCT FROM 'scrapped')
    EXECUTE FUNCTION cyl_refuse_unscrapping();
