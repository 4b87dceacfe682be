-- CylinderWatch base schema: master data (一瓶一码、一瓶一档), people, and time series.
-- Time-series tables go through cyl_create_timeseries(): a TimescaleDB hypertable with a
-- compression policy when the extension can be created, native monthly range partitions
-- (plus a DEFAULT partition so an insert can never fail for want of a partition) otherwise.

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'timescaledb present but not loadable (%): using native partitions', SQLERRM;
        END;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION cyl_has_timescale() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
$$;

-- Create the monthly partitions of a natively partitioned table from `from_month` to
-- `to_month` inclusive. Idempotent. Rows already in the DEFAULT partition for a new month
-- are moved into it (PostgreSQL refuses to attach a partition whose rows sit in DEFAULT).
CREATE OR REPLACE FUNCTION cyl_ensure_partitions(tbl text, from_month date, to_month date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', from_month)::date;
    part text;
    created integer := 0;
    tscol text;
BEGIN
    IF cyl_has_timescale() THEN
        RETURN 0;
    END IF;
    SELECT a.attname INTO tscol
      FROM pg_partitioned_table p
      JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
     WHERE p.partrelid = tbl::regclass;
    WHILE m <= to_month LOOP
        part := format('%s_p%s', tbl, to_char(m, 'YYYYMM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TEMP TABLE cyl_moving ON COMMIT DROP AS SELECT * FROM %I WHERE %I >= %L AND %I < %L',
                           tbl || '_default', tscol, m, tscol, (m + interval '1 month')::date);
            EXECUTE format('DELETE FROM %I WHERE %I >= %L AND %I < %L',
                           tbl || '_default', tscol, m, tscol, (m + interval '1 month')::date);
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                           part, tbl, m, (m + interval '1 month')::date);
            EXECUTE format('INSERT INTO %I SELECT * FROM cyl_moving', tbl);
            DROP TABLE cyl_moving;
            created := created + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;

CREATE OR REPLACE FUNCTION cyl_create_timeseries(tbl text, time_col text, body text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass(tbl) IS NOT NULL THEN
        RETURN;
    END IF;
    IF cyl_has_timescale() THEN
        EXECUTE format('CREATE TABLE %I (%s)', tbl, body);
        EXECUTE format('SELECT create_hypertable(%L, %L, chunk_time_interval => interval ''7 days'')', tbl, time_col);
        BEGIN
            EXECUTE format('ALTER TABLE %I SET (timescaledb.compress)', tbl);
            EXECUTE format('SELECT add_compression_policy(%L, interval ''30 days'')', tbl);
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'compression not available for %: %', tbl, SQLERRM;
        END;
    ELSE
        EXECUTE format('CREATE TABLE %I (%s) PARTITION BY RANGE (%I)', tbl, body, time_col);
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', tbl || '_default', tbl);
        PERFORM cyl_ensure_partitions(tbl, (now() - interval '3 years')::date, (now() + interval '3 months')::date);
    END IF;
END $$;

-- ---------------------------------------------------------------- master data

CREATE TABLE districts (
    code        text PRIMARY KEY,             -- administrative division code, e.g. 410102
    name        text NOT NULL,
    name_en     text,
    boundary    jsonb NOT NULL                -- GeoJSON geometry (WGS-84)
);

CREATE TABLE companies (                     -- 产权单位 / gas companies, inspection agencies' owners
    id              bigserial PRIMARY KEY,
    code            text NOT NULL UNIQUE,     -- owner_code in the archive interface
    name            text NOT NULL,
    district_code   text REFERENCES districts(code),
    licence_no      text,                     -- 燃气经营许可证 / 气瓶充装许可证
    licence_expiry  date,
    licence_status  text NOT NULL DEFAULT 'valid' CHECK (licence_status IN ('valid', 'suspended', 'revoked')),
    contact_name    text,
    contact_phone   text,
    address         text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sites (
    id                      bigserial PRIMARY KEY,
    code                    text NOT NULL UNIQUE,
    name                    text NOT NULL,
    kind                    text NOT NULL CHECK (kind IN ('filling_station', 'store', 'warehouse', 'inspection_agency')),
    company_id              bigint REFERENCES companies(id),
    district_code           text REFERENCES districts(code),
    address                 text,
    lat                     double precision,
    lon                     double precision,
    permitted_full_storage  integer CHECK (permitted_full_storage IS NULL OR permitted_full_storage >= 0),
    licence_no              text,             -- the station's filling licence (充装许可证)
    licence_expiry          date,
    licence_status          text NOT NULL DEFAULT 'valid' CHECK (licence_status IN ('valid', 'suspended', 'revoked')),
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sites_company_idx ON sites (company_id);
CREATE INDEX sites_district_idx ON sites (district_code);

-- An owner company entrusting another company's stations to fill its cylinders (委托充装).
CREATE TABLE entrustments (
    id                  bigserial PRIMARY KEY,
    owner_company_id    bigint NOT NULL REFERENCES companies(id),
    filler_company_id   bigint NOT NULL REFERENCES companies(id),
    valid_from          date NOT NULL,
    valid_to            date,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_company_id, filler_company_id, valid_from)
);
CREATE INDEX entrustments_filler_idx ON entrustments (filler_company_id);

CREATE TABLE users (
    id              bigserial PRIMARY KEY,
    username        text NOT NULL UNIQUE,
    password_hash   text NOT NULL,
    display_name    text,
    role            text NOT NULL CHECK (role IN ('admin', 'regulator', 'officer', 'company_admin', 'station_operator', 'inspector')),
    company_id      bigint REFERENCES companies(id),
    site_id         bigint REFERENCES sites(id),   -- the station (operator) or inspection agency (inspector)
    districts       text[] NOT NULL DEFAULT '{}',  -- regulator/officer scope; empty = whole city (regulator only)
    language        text NOT NULL DEFAULT 'zh-CN',
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    last_login_at   timestamptz,
    CHECK (role <> 'company_admin' OR company_id IS NOT NULL),
    CHECK (role <> 'station_operator' OR (site_id IS NOT NULL AND company_id IS NOT NULL)),
    CHECK (role <> 'inspector' OR site_id IS NOT NULL),
    CHECK (role <> 'officer' OR cardinality(districts) > 0)
);

-- Enterprise data-interface keys (DESIGN §7). Only a hash is stored.
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id),
    name        text NOT NULL,
    prefix      text NOT NULL,
    key_hash    text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at  timestamptz
);

CREATE TABLE customers (                     -- 实名制 real-name accounts
    id                  bigserial PRIMARY KEY,
    company_id          bigint NOT NULL REFERENCES companies(id),
    account_no          text NOT NULL,
    name                text NOT NULL,
    id_number_masked    text,                 -- e.g. 410102********1234; the full number is never stored
    id_number_hash      text,                 -- keyed hash for de-duplication and lookup
    phone               text,
    address             text,
    district_code       text REFERENCES districts(code),
    lat                 double precision,
    lon                 double precision,
    kind                text NOT NULL DEFAULT 'resident' CHECK (kind IN ('resident', 'restaurant', 'industrial')),
    opened_on           date NOT NULL DEFAULT current_date,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (company_id, account_no)
);
CREATE INDEX customers_district_idx ON customers (district_code);
CREATE INDEX customers_phone_idx ON customers (phone);

CREATE TABLE devices (
    id              bigserial PRIMARY KEY,
    device_id       text NOT NULL UNIQUE,     -- the id in the MQTT topic
    kind            text NOT NULL CHECK (kind IN ('gun', 'valve', 'handheld', 'vehicle')),
    company_id      bigint REFERENCES companies(id),
    site_id         bigint REFERENCES sites(id),       -- a gun's station (never taken from a payload)
    name            text,
    plate_no        text,                     -- vehicles
    active          boolean NOT NULL DEFAULT true,
    online          boolean,
    last_seen_at    timestamptz,
    lat             double precision,
    lon             double precision,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'gun' OR site_id IS NOT NULL)
);
CREATE INDEX devices_site_idx ON devices (site_id);
CREATE INDEX devices_company_idx ON devices (company_id);

CREATE TABLE cylinders (                     -- 气瓶档案 (DOMAIN.md "Cylinder record")
    id                      bigserial PRIMARY KEY,
    tag                     text NOT NULL UNIQUE,     -- RFID / electronic tag no.; never reused after scrapping
    stamp                   text,                     -- 钢印号
    barcode                 text UNIQUE,              -- QR / barcode
    owner_company_id        bigint NOT NULL REFERENCES companies(id),
    medium                  text NOT NULL DEFAULT 'LPG',
    spec                    text NOT NULL,            -- model code, e.g. YSP35.5
    volume_l                numeric(7, 2),
    tare_kg                 numeric(7, 2),
    wall_thickness_mm       numeric(5, 2),
    manufacturer            text,
    manufacture_date        date NOT NULL,
    serial_no               text,
    last_inspection_date    date,
    next_inspection_date    date NOT NULL,
    inspection_count        integer NOT NULL DEFAULT 0,
    scrap_date              date NOT NULL,
    valve_type              text NOT NULL DEFAULT 'smart' CHECK (valve_type IN ('ordinary', 'smart')),
    inspection_ring_no      text,
    use_registration_no     text,
    status                  text NOT NULL DEFAULT 'in_service'
                            CHECK (status IN ('in_service', 'in_inspection', 'scrapped', 'lost', 'suspended', 'not_activated')),
    tag_voided              boolean NOT NULL DEFAULT false,
    registered_at           timestamptz NOT NULL DEFAULT now(),
    registered_by_site_id   bigint REFERENCES sites(id),
    -- live state, maintained by ingest
    district_code           text REFERENCES districts(code),   -- where it is now (scope of regulators)
    fill_state              text NOT NULL DEFAULT 'empty' CHECK (fill_state IN ('full', 'empty')),
    location_kind           text NOT NULL DEFAULT 'site' CHECK (location_kind IN ('site', 'vehicle', 'customer', 'unknown')),
    location_site_id        bigint REFERENCES sites(id),
    location_device_id      bigint REFERENCES devices(id),
    location_customer_id    bigint REFERENCES customers(id),
    last_fill_at            timestamptz,
    last_fill_site_id       bigint REFERENCES sites(id),
    last_return_at          timestamptz,
    last_seen_at            timestamptz,
    lat                     double precision,
    lon                     double precision,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CHECK (scrap_date >= manufacture_date)
);
CREATE INDEX cylinders_stamp_idx ON cylinders (stamp);
CREATE INDEX cylinders_owner_idx ON cylinders (owner_company_id, id);
CREATE INDEX cylinders_district_idx ON cylinders (district_code, id);
CREATE INDEX cylinders_status_idx ON cylinders (status);
CREATE INDEX cylinders_next_inspection_idx ON cylinders (next_inspection_date);
CREATE INDEX cylinders_scrap_idx ON cylinders (scrap_date);
CREATE INDEX cylinders_site_idx ON cylinders (location_site_id, fill_state);
CREATE INDEX cylinders_customer_idx ON cylinders (location_customer_id);

CREATE TABLE inspections (                   -- periodic inspection results (GB/T 8334-2022)
    id                      bigserial PRIMARY KEY,
    cylinder_id             bigint NOT NULL REFERENCES cylinders(id),
    agency_site_id          bigint REFERENCES sites(id),
    inspected_on            date NOT NULL,
    result                  text NOT NULL CHECK (result IN ('pass', 'fail', 'scrap')),
    next_inspection_date    date,
    scrap_date              date,
    report_no               text,
    notes                   text,
    created_by              bigint REFERENCES users(id),
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inspections_cylinder_idx ON inspections (cylinder_id, inspected_on);

-- Append-only audit of every write by a person (DESIGN §7).
CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    user_id     bigint,
    username    text,
    role        text,
    action      text NOT NULL,               -- e.g. cylinder.update
    entity      text NOT NULL,
    entity_id   text,
    details     jsonb NOT NULL DEFAULT '{}',
    remote      text
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_entity_idx ON audit_log (entity, entity_id);

CREATE OR REPLACE FUNCTION cyl_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION cyl_audit_append_only();

-- Alerts are a state table (open → acknowledged → resolved, counters bumped in place), so they
-- are a plain table: the de-duplication guarantee across ingest workers is the partial unique
-- index below, which PostgreSQL cannot enforce across partitions.
CREATE TABLE alerts (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    subject_type    text NOT NULL,            -- cylinder, site, device, company, vehicle
    subject_id      text NOT NULL,            -- the subject's natural key (tag, site code, device id)
    company_id      bigint REFERENCES companies(id),
    site_id         bigint REFERENCES sites(id),
    district_code   text REFERENCES districts(code),
    cylinder_id     bigint REFERENCES cylinders(id),
    state           text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    count           integer NOT NULL DEFAULT 1,
    first_at        timestamptz NOT NULL,
    last_at         timestamptz NOT NULL,
    lat             double precision,
    lon             double precision,
    details         jsonb NOT NULL DEFAULT '{}',
    acknowledged_at timestamptz,
    acknowledged_by bigint REFERENCES users(id),
    resolved_at     timestamptz,
    resolved_by     bigint REFERENCES users(id),
    note            text
);
CREATE UNIQUE INDEX alerts_open_dedupe ON alerts (kind, subject_type, subject_id) WHERE state <> 'resolved';
CREATE INDEX alerts_last_at_idx ON alerts (last_at DESC);
CREATE INDEX alerts_state_idx ON alerts (state, district_code);
CREATE INDEX alerts_company_idx ON alerts (company_id, last_at DESC);

-- ---------------------------------------------------------------- time series

-- Trajectory: one row per thing that happened to a cylinder (EPCIS-like what/when/where/why).
SELECT cyl_create_timeseries('events', 'ts', $b$
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    msg_id          text NOT NULL,
    cylinder_id     bigint,
    tag             text,
    kind            text NOT NULL,
    biz_step        text,
    disposition     text,
    site_id         bigint,
    company_id      bigint,
    customer_id     bigint,
    device_id       text,
    operator        text,
    lat             double precision,
    lon             double precision,
    district_code   text,
    details         jsonb NOT NULL DEFAULT '{}'
$b$);
CREATE UNIQUE INDEX IF NOT EXISTS events_msg_uidx ON events (msg_id, ts);
CREATE INDEX IF NOT EXISTS events_cylinder_idx ON events (cylinder_id, ts);
CREATE INDEX IF NOT EXISTS events_site_idx ON events (site_id, ts);

SELECT cyl_create_timeseries('fills', 'ts', $b$
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    msg_id          text NOT NULL,
    ts_start        timestamptz,
    gun_id          text NOT NULL,
    station_id      bigint,
    company_id      bigint,
    district_code   text,
    cylinder_id     bigint,
    tag             text NOT NULL,
    spec            text,
    net_kg          numeric(7, 2) NOT NULL,
    tare_kg         numeric(7, 2),
    gross_kg        numeric(7, 2),
    result          text NOT NULL DEFAULT 'completed',
    assessment      text,
    operator        text,
    pre_check       jsonb,
    post_check      jsonb
$b$);
CREATE UNIQUE INDEX IF NOT EXISTS fills_msg_uidx ON fills (msg_id, ts);
CREATE INDEX IF NOT EXISTS fills_cylinder_idx ON fills (cylinder_id, ts);
CREATE INDEX IF NOT EXISTS fills_station_idx ON fills (station_id, ts);
CREATE INDEX IF NOT EXISTS fills_company_idx ON fills (company_id, ts);

SELECT cyl_create_timeseries('telemetry', 'ts', $b$
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    msg_id          text NOT NULL,
    tag             text NOT NULL,
    cylinder_id     bigint,
    lat             double precision,
    lon             double precision,
    valve           text,
    leak_ppm        real,
    temp_c          real,
    battery_pct     real,
    rssi            real
$b$);
CREATE UNIQUE INDEX IF NOT EXISTS telemetry_msg_uidx ON telemetry (msg_id, ts);
CREATE INDEX IF NOT EXISTS telemetry_cylinder_idx ON telemetry (cylinder_id, ts);

SELECT cyl_create_timeseries('positions', 'ts', $b$
    ts              timestamptz NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    msg_id          text NOT NULL,
    vehicle_id      text NOT NULL,
    lat             double precision NOT NULL,
    lon             double precision NOT NULL,
    speed_kmh       real,
    heading         real,
    cargo           text[]
$b$);
CREATE UNIQUE INDEX IF NOT EXISTS positions_msg_uidx ON positions (msg_id, ts);
CREATE INDEX IF NOT EXISTS positions_vehicle_idx ON positions (vehicle_id, ts);

SELECT cyl_create_timeseries('dead_letters', 'received_at', $b$
    received_at     timestamptz NOT NULL DEFAULT now(),
    topic           text NOT NULL,
    payload         bytea,
    reason          text NOT NULL,
    worker          text
$b$);
CREATE INDEX IF NOT EXISTS dead_letters_at_idx ON dead_letters (received_at);
