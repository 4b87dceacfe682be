"""The SQL of an archive import (docs/ARCHITECTURE.md §9), apart from the code that runs it
(`server.archive.importer`, whose docstring says what each statement is for and why).

Every statement works on the staging table of a chunk (`server.archive.validation.STAGE`) and
temporary tables of the connection; the upsert is one statement that also writes the chunk's
trajectory events and its audit row, so that a chunk is all or nothing.
"""

from __future__ import annotations

from typing import Final

from server.archive.validation import STAGE

__all__ = ["CHECK_SQL", "CREATE_TEMP", "UPDATED_COLUMNS", "UPSERT_SQL"]

CREATE_TEMP: Final = f"""
{STAGE.ddl()};
CREATE TEMP TABLE IF NOT EXISTS cyl_import_seen_tag (tag text PRIMARY KEY, line integer NOT NULL);
CREATE TEMP TABLE IF NOT EXISTS cyl_import_seen_barcode (
    barcode text PRIMARY KEY, tag text NOT NULL, line integer NOT NULL
);
TRUNCATE cyl_import_stage, cyl_import_seen_tag, cyl_import_seen_barcode;
"""
# Temp tables live as long as the (pooled) connection; they are created once and emptied
# rather than dropped, because asyncpg caches prepared statements that name them.

UPDATED_COLUMNS: Final = (
    "stamp",
    "barcode",
    "owner_company_id",
    "spec",
    "medium",
    "manufacturer",
    "manufacture_date",
    "tare_kg",
    "volume_l",
    "last_inspection_date",
    "next_inspection_date",
    "scrap_date",
    "status",
)

_BEFORE_AFTER: Final = ", ".join(
    f"'{col}', CASE WHEN c.{col} IS DISTINCT FROM s.{col} THEN jsonb_build_array(c.{col}, s.{col}) END"
    for col in UPDATED_COLUMNS
)

CHECK_SQL: Final = f"""
SELECT s.line, s.tag, s.barcode, s.status,
       t.line AS dup_line,
       (c.owner_company_id IS NOT NULL AND $1::bigint IS NOT NULL
        AND c.owner_company_id <> $1::bigint) AS other_company,
       c.status AS old_status,
       c.tag_voided,
       CASE WHEN c.id IS NOT NULL THEN jsonb_strip_nulls(jsonb_build_object({_BEFORE_AFTER}))
       END AS changed,
       b.line AS barcode_dup_line,
       o.tag AS barcode_owner
  FROM cyl_import_stage s
  LEFT JOIN cyl_import_seen_tag t ON t.tag = s.tag
  LEFT JOIN cylinders c ON c.tag = s.tag
  LEFT JOIN cyl_import_seen_barcode b ON b.barcode = s.barcode AND b.tag <> s.tag
  LEFT JOIN cylinders o ON o.barcode = s.barcode AND o.tag <> s.tag
 WHERE t.tag IS NOT NULL
    OR (c.owner_company_id IS NOT NULL AND $1::bigint IS NOT NULL
        AND c.owner_company_id <> $1::bigint)
    OR (c.id IS NOT NULL
        AND ({", ".join(f"c.{col}" for col in UPDATED_COLUMNS)})
            IS DISTINCT FROM ({", ".join(f"s.{col}" for col in UPDATED_COLUMNS)}))
    OR b.barcode IS NOT NULL
    OR o.id IS NOT NULL
"""
"""Every staged row that is a repeat, names another company's tag, would change an existing
cylinder (``changed``: ``{field: [before, after]}`` of the fields that differ), or carries a
barcode another line or cylinder has."""

_EVENT_FIELDS: Final = sorted(col for col in UPDATED_COLUMNS if col != "status")
"""Fields an ``update`` event names, sorted as ``PATCH`` lists them."""

_CHANGED_FIELDS: Final = ", ".join(
    f"'{col}', CASE WHEN o.{col} IS DISTINCT FROM up.new_{col}"
    f" THEN jsonb_build_array(o.{col}, up.new_{col}) END"
    for col in UPDATED_COLUMNS
)
"""For an updated cylinder, ``{field: [before, after]}`` of the fields the import changed."""

UPSERT_SQL: Final = f"""
WITH old AS (
    -- the rows as they were: a statement's CTEs all see the data from before it
    SELECT c.id, {", ".join(f"c.{col}" for col in UPDATED_COLUMNS)}
      FROM cylinders c JOIN cyl_import_stage s ON s.tag = c.tag
), up AS (
    INSERT INTO cylinders AS c (
        tag, {", ".join(UPDATED_COLUMNS)}, district_code, registered_by_site_id)
    SELECT tag, {", ".join(UPDATED_COLUMNS)}, owner_district, $1::bigint
      FROM cyl_import_stage
    ON CONFLICT (tag) DO UPDATE SET
        {", ".join(f"{col} = EXCLUDED.{col}" for col in UPDATED_COLUMNS)}, updated_at = now()
    WHERE ({", ".join(f"c.{col}" for col in UPDATED_COLUMNS)})
          IS DISTINCT FROM ({", ".join(f"EXCLUDED.{col}" for col in UPDATED_COLUMNS)})
    RETURNING c.id, c.tag, c.owner_company_id, c.district_code, c.location_site_id,
              (c.xmax = 0) AS inserted,
              {", ".join(f"c.{col} AS new_{col}" for col in UPDATED_COLUMNS)}
), changed AS (
    SELECT jsonb_object_agg(up.tag, jsonb_strip_nulls(jsonb_build_object({_CHANGED_FIELDS})))
           AS cylinders
      FROM up JOIN old o ON o.id = up.id
     WHERE NOT up.inserted
), audited AS (
    -- one audit row per chunk that changed cylinders, in the chunk's transaction
    INSERT INTO audit_log (user_id, username, role, action, entity, details, remote)
    SELECT $7, $5, $8, 'cylinder.import.changes', 'cylinder',
           jsonb_build_object('file', $9::text, 'cylinders', changed.cylinders), $10
      FROM changed WHERE changed.cylinders IS NOT NULL
), ev AS (
    INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition, site_id,
                        company_id, district_code, operator, details)
    SELECT now(), 'import-' || up.tag, up.id, up.tag, $2, $3, $4, $1::bigint,
           up.owner_company_id, up.district_code, $5, $6::jsonb
      FROM up WHERE up.inserted
    ON CONFLICT DO NOTHING
), moves AS (
    SELECT up.id, up.tag, up.owner_company_id, up.district_code, up.location_site_id,
           o.status AS old_status, up.new_status,
           array_remove(ARRAY[{
    ", ".join(
        f"CASE WHEN o.{col} IS DISTINCT FROM up.new_{col} THEN '{col}' END" for col in _EVENT_FIELDS
    )
}]::text[], NULL) AS fields
      FROM up JOIN old o ON o.id = up.id
     WHERE NOT up.inserted
), moved AS (
    -- the trajectory events a PATCH records (server.api.cylinder_changes): the status move
    -- first, then an update naming the other fields
    INSERT INTO events (ts, msg_id, cylinder_id, tag, kind, biz_step, disposition, site_id,
                        company_id, district_code, operator, details)
    SELECT clock_timestamp(), $11 || '-' || m.id || '-' || e.n, m.id, m.tag, e.kind,
           e.biz_step, e.disposition, m.location_site_id, m.owner_company_id, m.district_code,
           $5, e.details
      FROM moves m
      CROSS JOIN LATERAL (
          SELECT 1 AS n, $12::jsonb -> m.new_status ->> 0 AS kind,
                 $12::jsonb -> m.new_status ->> 1 AS biz_step,
                 $12::jsonb -> m.new_status ->> 2 AS disposition,
                 jsonb_build_object('from', m.old_status, 'to', m.new_status,
                                    'source', 'import', 'file', $9::text) AS details
           WHERE m.old_status IS DISTINCT FROM m.new_status
          UNION ALL
          SELECT 2, $13::text, $14::text, $15::text,
                 jsonb_build_object('fields', to_jsonb(m.fields),
                                    'source', 'import', 'file', $9::text)
           WHERE cardinality(m.fields) > 0
      ) e
)
SELECT count(*) FILTER (WHERE inserted) AS inserted,
       count(*) FILTER (WHERE NOT inserted) AS updated
  FROM up
"""
# (xmax = 0) is PostgreSQL's documented-by-practice way to tell an inserted row from an
# updated one in ON CONFLICT's RETURNING; rows the WHERE skipped are not returned at all,
# which is how "unchanged" is counted.
