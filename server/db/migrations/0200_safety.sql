-- Safety inspections at the customer (入户安检; DOMAIN.md "Safety inspection at the customer";
-- server.domain.safety, server.db.safety, docs/API.md "Safety inspections").
--
-- safety_catalogues / safety_items: the item catalogue (安检项维护), one sequence of versions
-- per customer kind. A version is never edited: publishing makes a new one, and an inspection
-- keeps the id of the version it used, so editing the catalogue never changes a past record.
-- safety_inspections (+ _answers, _photos): a signed record, immutable once written — a
-- correction is a new record whose `corrects` names the old one. safety_rectifications: one per
-- failed item, open until a re-check closes it; marked overdue by the round once.
-- No retention job deletes any of these rows (records are kept permanently).

CREATE TABLE safety_catalogues (
    id             bigserial PRIMARY KEY,
    customer_kind  text NOT NULL CHECK (customer_kind IN ('resident', 'restaurant', 'industrial')),
    version        integer NOT NULL CHECK (version >= 1),
    published_at   timestamptz NOT NULL DEFAULT now(),
    created_by     bigint REFERENCES users(id),
    note           text CHECK (note IS NULL OR length(note) <= 1000),
    UNIQUE (customer_kind, version)
);

CREATE TABLE safety_items (
    id                      bigserial PRIMARY KEY,
    catalogue_id            bigint NOT NULL REFERENCES safety_catalogues(id),
    position                integer NOT NULL CHECK (position >= 1),
    group_code              text NOT NULL CHECK (group_code ~ '^[a-z_]{1,40}$'),
    code                    text NOT NULL CHECK (code ~ '^[a-z0-9_]{1,60}$'),
    text_zh                 text NOT NULL CHECK (length(text_zh) BETWEEN 1 AND 500),
    text_en                 text NOT NULL CHECK (length(text_en) BETWEEN 1 AND 500),
    answers                 text[] NOT NULL DEFAULT '{pass,fail,na}'
                            CHECK (answers <@ '{pass,fail,na}'::text[] AND 'fail' = ANY(answers)
                                   AND 'pass' = ANY(answers)),
    photo_required_on_fail  boolean NOT NULL DEFAULT false,
    rectification_days      integer CHECK (rectification_days BETWEEN 0 AND 365),
    UNIQUE (catalogue_id, code),
    UNIQUE (catalogue_id, position)
);

-- A published version is history: neither it nor its items change or go.
CREATE OR REPLACE FUNCTION cyl_safety_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% of % refused: safety catalogues and signed inspection records are immutable',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER safety_catalogues_immutable BEFORE UPDATE OR DELETE ON safety_catalogues
    FOR EACH ROW EXECUTE FUNCTION cyl_safety_refuse_change();
CREATE TRIGGER safety_items_immutable BEFORE UPDATE OR DELETE ON safety_items
    FOR EACH ROW EXECUTE FUNCTION cyl_safety_refuse_change();

CREATE TABLE safety_inspections (
    id                   bigserial PRIMARY KEY,
    client_id            uuid NOT NULL UNIQUE,          -- made by the phone: a replay is the same record
    customer_id          bigint NOT NULL REFERENCES customers(id),
    company_id           bigint NOT NULL REFERENCES companies(id),   -- the customer's, at the time
    district_code        text REFERENCES districts(code),            -- the customer's, at the time
    catalogue_id         bigint NOT NULL REFERENCES safety_catalogues(id),
    inspector_id         bigint NOT NULL REFERENCES users(id),
    inspector_role       text NOT NULL,
    inspected_at         timestamptz NOT NULL,
    received_at          timestamptz NOT NULL DEFAULT now(),
    result               text NOT NULL CHECK (result IN ('pass', 'fail')),
    failed_count         integer NOT NULL CHECK (failed_count >= 0),
    notes                text CHECK (notes IS NULL OR length(notes) <= 5000),
    lat                  double precision CHECK (lat BETWEEN -90 AND 90),
    lon                  double precision CHECK (lon BETWEEN -180 AND 180),
    signature_upload_id  bigint NOT NULL REFERENCES uploads(id),
    corrects             bigint REFERENCES safety_inspections(id),
    prev_hash            text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    record_hash          text NOT NULL UNIQUE CHECK (record_hash ~ '^[0-9a-f]{64}$'),
    seal                 text NOT NULL CHECK (seal ~ '^[0-9a-f]{64}$'),
    CHECK ((lat IS NULL) = (lon IS NULL))
);
CREATE INDEX safety_inspections_time_idx ON safety_inspections (inspected_at DESC, id DESC);
CREATE INDEX safety_inspections_company_idx ON safety_inspections (company_id, inspected_at DESC);
CREATE INDEX safety_inspections_district_idx ON safety_inspections (district_code, inspected_at DESC);
CREATE INDEX safety_inspections_customer_idx ON safety_inspections (customer_id, inspected_at DESC);
CREATE INDEX safety_inspections_inspector_idx ON safety_inspections (inspector_id, inspected_at DESC);
CREATE INDEX safety_inspections_corrects_idx ON safety_inspections (corrects) WHERE corrects IS NOT NULL;

CREATE TABLE safety_answers (
    inspection_id  bigint NOT NULL REFERENCES safety_inspections(id),
    item_id        bigint NOT NULL REFERENCES safety_items(id),
    answer         text NOT NULL CHECK (answer IN ('pass', 'fail', 'na')),
    note           text CHECK (note IS NULL OR length(note) <= 1000),
    PRIMARY KEY (inspection_id, item_id)
);

CREATE TABLE safety_photos (
    inspection_id  bigint NOT NULL REFERENCES safety_inspections(id),
    item_id        bigint NOT NULL REFERENCES safety_items(id),
    upload_id      bigint NOT NULL REFERENCES uploads(id),
    PRIMARY KEY (inspection_id, upload_id)
);
CREATE INDEX safety_photos_upload_idx ON safety_photos (upload_id);

-- A signed record never changes: no UPDATE or DELETE, and its answers and photos may only be
-- written in the transaction that wrote the record (nothing is added to it afterwards).
CREATE TRIGGER safety_inspections_immutable BEFORE UPDATE OR DELETE ON safety_inspections
    FOR EACH ROW EXECUTE FUNCTION cyl_safety_refuse_change();
CREATE TRIGGER safety_answers_immutable BEFORE UPDATE OR DELETE ON safety_answers
    FOR EACH ROW EXECUTE FUNCTION cyl_safety_refuse_change();
CREATE TRIGGER safety_photos_immutable BEFORE UPDATE OR DELETE ON safety_photos
    FOR EACH ROW EXECUTE FUNCTION cyl_safety_refuse_change();

CREATE OR REPLACE FUNCTION cyl_safety_same_transaction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM safety_inspections i
                    WHERE i.id = NEW.inspection_id
                      AND i.xmin::text = (pg_current_xact_id()::text::numeric % 4294967296)::text)
    THEN
        RAISE EXCEPTION 'inspection % is signed: nothing may be added to it', NEW.inspection_id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER safety_answers_with_record BEFORE INSERT ON safety_answers
    FOR EACH ROW EXECUTE FUNCTION cyl_safety_same_transaction();
CREATE TRIGGER safety_photos_with_record BEFORE INSERT ON safety_photos
    FOR EACH ROW EXECUTE FUNCTION cyl_safety_same_transaction();

-- 整改: one per failed item. Its state moves open → closed (a re-check with its photo);
-- overdue_at is set once by the round (server.db.safety.mark_overdue). Never deleted.
CREATE TABLE safety_rectifications (
    id               bigserial PRIMARY KEY,
    inspection_id    bigint NOT NULL REFERENCES safety_inspections(id),
    item_id          bigint NOT NULL REFERENCES safety_items(id),
    company_id       bigint NOT NULL REFERENCES companies(id),
    district_code    text REFERENCES districts(code),
    deadline         date NOT NULL,
    state            text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    overdue_at       timestamptz,
    closed_at        timestamptz,
    closed_by        bigint REFERENCES users(id),
    recheck_upload_id bigint REFERENCES uploads(id),
    recheck_note     text CHECK (recheck_note IS NULL OR length(recheck_note) <= 1000),
    UNIQUE (inspection_id, item_id),
    CHECK ((state = 'closed') = (closed_at IS NOT NULL)),
    CHECK (state = 'open' OR recheck_upload_id IS NOT NULL)
);
CREATE INDEX safety_rectifications_due_idx ON safety_rectifications (deadline)
    WHERE state = 'open' AND overdue_at IS NULL;
CREATE INDEX safety_rectifications_company_idx ON safety_rectifications (company_id, state);
CREATE TRIGGER safety_rectifications_kept BEFORE DELETE ON safety_rectifications
    FOR EACH ROW EXECUTE FUNCTION cyl_safety_refuse_change();

-- The typical catalogue of DOMAIN.md, version 1 of each customer kind. Deadlines: DOMAIN.md's
-- 5 days ([safety] rectification_days, the NULLs); a leaking valve 1 day (a leak is an immediate danger: fixed the next day at latest).
INSERT INTO safety_catalogues (customer_kind, version, note)
VALUES ('resident', 1, 'DOMAIN.md typical items'),
       ('restaurant', 1, 'DOMAIN.md typical items'),
       ('industrial', 1, 'DOMAIN.md typical items');

INSERT INTO safety_items (catalogue_id, position, group_code, code, text_zh, text_en,
                          photo_required_on_fail, rectification_days)
SELECT c.id, row_number() OVER (PARTITION BY c.id ORDER BY i.ord), i.grp, i.code, i.zh, i.en,
       i.photo, i.days
  FROM safety_catalogues c
  JOIN (VALUES
    (1, 'cylinder', 'cylinder_valid', '气瓶在检验有效期内，外观无损伤',
        'Cylinder within its inspection date and undamaged', true, NULL, '{resident,restaurant,industrial}'),
    (2, 'cylinder', 'cylinder_upright', '气瓶直立放置',
        'Cylinder stands upright', false, NULL, '{resident,restaurant,industrial}'),
    (3, 'cylinder', 'cylinder_distance', '气瓶与灶具间距不小于0.5米',
        'Cylinder at least 0.5 m from the cooker', true, NULL, '{resident,restaurant,industrial}'),
    (4, 'valve', 'valve_no_leak', '角阀无泄漏（肥皂水检测）',
        'Angle valve not leaking (soap test)', true, 1, '{resident,restaurant,industrial}'),
    (5, 'regulator', 'regulator_ok', '减压阀为合格产品，密封圈未老化，在使用年限内',
        'Regulator certified, seal ring not aged, within its service life', true, NULL, '{resident,restaurant,industrial}'),
    (6, 'hose', 'hose_type', '使用燃气专用软管，长度不超过2米，未穿墙',
        'Gas hose, at most 2 m, not through a wall', true, NULL, '{resident,restaurant,industrial}'),
    (7, 'hose', 'hose_condition', '软管无老化龟裂，两端卡箍固定，未超过更换期限',
        'Hose not aged or cracked, clamped at both ends, within its replacement interval', true, NULL, '{resident,restaurant,industrial}'),
    (8, 'cooker', 'cooker_ok', '灶具有熄火保护装置，使用未满8年',
        'Cooker has flame-failure protection and is younger than 8 years', true, NULL, '{resident,restaurant,industrial}'),
    (9, 'placement', 'no_mixed_gas', '瓶装气与管道气未混用',
        'Bottled and piped gas not mixed', false, NULL, '{resident,restaurant,industrial}'),
    (10, 'placement', 'placement_ok', '气瓶未放置在地下室、卧室或密闭空间',
        'Cylinder not in a basement, bedroom or closed space', true, NULL, '{resident,restaurant,industrial}'),
    (11, 'alarm', 'gas_alarm', '安装燃气泄漏报警器',
        'Gas alarm present', false, NULL, '{resident}'),
    (12, 'alarm', 'gas_alarm_shutoff', '安装燃气泄漏报警器并联动切断阀（安全生产法第三十六条）',
        'Gas alarm present with a linked shut-off valve (Work Safety Law art. 36)', true, NULL, '{restaurant,industrial}'),
    (13, 'storage', 'storage_limit', '存放气瓶数量未超过规定',
        'No more cylinders stored than allowed', true, NULL, '{restaurant,industrial}'),
    (14, 'education', 'safety_notice', '已向用户讲解安全用气须知',
        'Safety notice explained to the user', false, NULL, '{resident,restaurant,industrial}')
  ) AS i (ord, grp, code, zh, en, photo, days, kinds)
    ON c.customer_kind = ANY(i.kinds::text[]);
