-- Today's wall on a 30-column grid (server.domain.wall.DEFAULT): with 24 columns the side
-- windows came out narrower than the wall's side columns always were. Only the untouched
-- seeded layout of 0240 is reshaped; one an admin already edited is theirs.
UPDATE wall_layouts SET grid_columns = 30, windows =
    '[{"kind": "chart", "chart": "fills_per_hour", "x": 0, "y": 0, "w": 8, "h": 4},
      {"kind": "chart", "chart": "denials_by_reason", "x": 0, "y": 4, "w": 8, "h": 4},
      {"kind": "chart", "chart": "inspection_by_district", "x": 0, "y": 8, "w": 8, "h": 4},
      {"kind": "kpis", "x": 8, "y": 0, "w": 14, "h": 2},
      {"kind": "map", "x": 8, "y": 2, "w": 14, "h": 10},
      {"kind": "ticker", "x": 22, "y": 0, "w": 8, "h": 7},
      {"kind": "chart", "chart": "companies_by_anomalies", "x": 22, "y": 7, "w": 8, "h": 5}]'
 WHERE name = '今日大屏' AND created_by IS NULL AND version = 1 AND grid_columns = 24;
