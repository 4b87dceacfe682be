-- The application's own database role (docs/SECURITY.md "Database roles").
--
-- The tables belong to the role that migrates (`[services] database_owner_url`); the server
-- connects as a login role of `[services] app_role`, which owns nothing. A role that does not
-- own a table cannot ALTER it (so it cannot disable the audit log's triggers), DROP it or
-- TRUNCATE it; on the audit log it may only INSERT and SELECT, so the append-only rule of
-- 0001/0050 no longer rests on triggers alone.
--
-- `cylwatch migrate` calls this function after the migrations, on every run, with the role
-- name from the settings: a table a later migration creates is granted by the default
-- privileges below and again by the next call. Roles are cluster-wide and many databases may
-- share one server (every test session creates one), so creating the role tolerates another
-- database's migration creating it at the same moment.

CREATE OR REPLACE FUNCTION cyl_grant_app_role(app name) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
        BEGIN
            -- NOLOGIN: nobody can connect as the role itself; an operator gives LOGIN and a
            -- password to it, or (better) to a login role that is a member of it
            EXECUTE format('CREATE ROLE %I NOLOGIN', app);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by the migration of another database
        END;
    END IF;
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), app);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', app);
    EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_log FROM %I', app);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON schema_migrations FROM %I', app);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', app);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public'
                   ' GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', app);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA public'
                   ' GRANT USAGE, SELECT ON SEQUENCES TO %I', app);
END $$;

-- What a database is (docs/SECURITY.md "Defaults and secrets"): `kind = demo` once the demo
-- city is seeded into it. `cylwatch seed` refuses a database without it, so the published
-- demo passwords never reach a real install.
CREATE TABLE IF NOT EXISTS install_settings (
    name   text PRIMARY KEY,
    value  text NOT NULL,
    set_at timestamptz NOT NULL DEFAULT now()
);
