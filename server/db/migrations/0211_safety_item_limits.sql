-- The regulator's service life and the hose's replacement interval are local rules (DOMAIN.md
-- "Safety inspection at the customer": 24 months to 5 years; 18 months to 2 years): the
-- [safety] keys regulator_life_months and hose_life_months. The two items' texts name them as
-- {regulator_life_months} / {hose_life_months}, filled from the config wherever a text is read
-- (server.domain.safety.fill_text), so the inspector reads the deployment's number.
--
-- A published version never changes (migration 0200): this publishes version n+1 of every
-- customer kind, the newest version's items with those two texts. Records keep their version.
CREATE TEMPORARY TABLE safety_newest ON COMMIT DROP AS
SELECT DISTINCT ON (customer_kind) id, customer_kind, version
  FROM safety_catalogues ORDER BY customer_kind, version DESC;

INSERT INTO safety_catalogues (customer_kind, version, note)
SELECT customer_kind, version + 1,
       'regulator service life and hose interval from [safety] (migration 0211)'
  FROM safety_newest;

INSERT INTO safety_items (catalogue_id, position, group_code, code, text_zh, text_en, answers,
                          photo_required_on_fail, rectification_days)
SELECT c.id, i.position, i.group_code, i.code,
       CASE i.code
           WHEN 'regulator_ok' THEN '减压阀为合格产品，密封圈未老化，使用未超过{regulator_life_months}个月'
           WHEN 'hose_condition' THEN '软管无老化龟裂，两端卡箍固定，使用未超过{hose_life_months}个月'
           ELSE i.text_zh END,
       CASE i.code
           WHEN 'regulator_ok' THEN 'Regulator certified, seal ring not aged, in use at most {regulator_life_months} months'
           WHEN 'hose_condition' THEN 'Hose not aged or cracked, clamped at both ends, in use at most {hose_life_months} months'
           ELSE i.text_en END,
       i.answers, i.photo_required_on_fail, i.rectification_days
  FROM safety_newest n
  JOIN safety_catalogues c ON c.customer_kind = n.customer_kind AND c.version = n.version + 1
  JOIN safety_items i ON i.catalogue_id = n.id;
