-- The command-centre wall's layouts (server.domain.wall; docs/API.md "Wall layouts";
-- DESIGN §8 /big-screen): saved grids of windows, and which one each wall shows now.
--
-- A layout's windows are JSON checked by the domain's msgspec schema before every write
-- (server.db.wall_layouts); the table keeps only what no writer may break: a named grid and
-- an array. `version` moves with every change, so an editor saving over someone else's newer
-- change is told (409) instead of silently undoing it.

CREATE TABLE wall_layouts (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    grid_columns  integer NOT NULL CHECK (grid_columns >= 1),
    grid_rows     integer NOT NULL CHECK (grid_rows >= 1),
    windows       jsonb NOT NULL CHECK (jsonb_typeof(windows) = 'array'),
    version       integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_by    bigint REFERENCES users(id),   -- NULL: the layout of this migration
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_by    bigint REFERENCES users(id),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- names are what a person picks from a list on a phone: one name, one layout
CREATE UNIQUE INDEX wall_layouts_name_key ON wall_layouts (lower(btrim(name)));

-- The layout each wall shows now. A wall's scope is what its account sees: 'city', or its
-- districts' codes sorted and comma-joined (server.domain.wall.scope_of). No row: the wall
-- shows the default layout (today's wall). A layout on a wall is not deleted (RESTRICT).
CREATE TABLE wall_current (
    scope        text PRIMARY KEY
                 CHECK (scope = 'city' OR scope ~ '^[0-9]{6,12}(,[0-9]{6,12})*$'),
    layout_id    bigint NOT NULL REFERENCES wall_layouts(id) ON DELETE RESTRICT,
    switched_by  bigint REFERENCES users(id),
    switched_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wall_current_layout_idx ON wall_current (layout_id);

-- Today's wall as the first layout (server.domain.wall.DEFAULT; a test keeps them equal), so
-- that an admin starts editing from it and a regulator can switch back to it.
INSERT INTO wall_layouts (name, grid_columns, grid_rows, windows) VALUES (
    '今日大屏', 24, 12,
    '[{"kind": "chart", "chart": "fills_per_hour", "x": 0, "y": 0, "w": 6, "h": 4},
      {"kind": "chart", "chart": "denials_by_reason", "x": 0, "y": 4, "w": 6, "h": 4},
      {"kind": "chart", "chart": "inspection_by_district", "x": 0, "y": 8, "w": 6, "h": 4},
      {"kind": "kpis", "x": 6, "y": 0, "w": 12, "h": 2},
      {"kind": "map", "x": 6, "y": 2, "w": 12, "h": 10},
      {"kind": "ticker", "x": 18, "y": 0, "w": 6, "h": 7},
      {"kind": "chart", "chart": "companies_by_anomalies", "x": 18, "y": 7, "w": 6, "h": 5}]'
);
