// @ts-check
/* The dashboard's cylinders at customers (docs/ARCHITECTURE.md §8: 100k cylinders must stay
   smooth): a supercluster index drawn on one canvas of its own. A redraw is a few thousand
   arc() calls at most, never a DOM node or a Leaflet object per cylinder, so a zoom or pan
   over 100k cylinders stays within a frame or two. A click on a cluster zooms into it; a
   click on a single cylinder is handed to the page (its card, cylinder-card.js). */

/** Colours of the compliance codes, in the order of the compact array's status codes
    (dashboard/data.py COMPLIANCE_CODES: ok … scrapped). */
export const STATUS_COLORS = ["#16a34a", "#eab308", "#f97316", "#dc2626", "#6b7280"];
const CLUSTER_FILL = { ok: "rgba(22,163,74,0.88)", warn: "rgba(234,179,8,0.92)", bad: "rgba(220,38,38,0.88)" };
const CLUSTER_HALO = { ok: "rgba(22,163,74,0.25)", warn: "rgba(234,179,8,0.28)", bad: "rgba(220,38,38,0.25)" };
const MAX_ZOOM_IN = 18;
// a cluster's share of bad (overdue/scrapped) or due cylinders that colours it
const BAD_SHARE = 0.05;
const DUE_SHARE = 0.1;

/** @param {number} n */
function abbrev(n) {
  if (n >= 10000) return Math.round(n / 1000) + "k";
  if (n >= 1000) return (n / 1000).toFixed(1) + "k";
  return String(n);
}

/** @param {number} n points in a cluster */
const radius = (n) => (n < 100 ? 15 : n < 1000 ? 19 : n < 10000 ? 23 : 27);

/**
 * A supercluster index of the compact rows ([lat, lon, status_code], drawn at *display*
 * positions); each point keeps its row number (`i`) so a click finds the stored position.
 * @param {number[][]} rows
 * @param {(lat: number, lon: number) => [number, number]} display
 */
export function clusterIndex(rows, display) {
  const points = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const ll = display(rows[i][0], rows[i][1]);
    points[i] = { type: "Feature", properties: { s: rows[i][2], i }, geometry: { type: "Point", coordinates: [ll[1], ll[0]] } };
  }
  const index = new Supercluster({
    radius: 80, maxZoom: 17,
    map: (/** @type {any} */ p) => ({ bad: p.s >= 3 ? 1 : 0, due: p.s === 1 || p.s === 2 ? 1 : 0 }),
    reduce: (/** @type {any} */ a, /** @type {any} */ b) => { a.bad += b.bad; a.due += b.due; },
  });
  index.load(points);
  return index;
}

/**
 * The canvas layer. `setIndex(index)`, then `refresh()` on every move (returns the number
 * of items drawn); `onPoint(item)` gets {lat, lon, s, i} of a single cylinder clicked.
 */
export const ClusterCanvas = L.Layer.extend({
  initialize: function (/** @type {{onPoint?: (item: any) => void}} */ options) {
    this._onPoint = (options && options.onPoint) || null;
    this._index = null;
    this._items = [];
  },
  onAdd: function (/** @type {any} */ m) {
    // its own pane under the overlay pane: sites, vehicles and alerts stay on top
    const pane = m.getPane("cwClusters") || m.createPane("cwClusters");
    pane.style.zIndex = 350;
    pane.style.pointerEvents = "none";
    this._canvas = L.DomUtil.create("canvas", "cw-cluster-canvas leaflet-zoom-hide", pane);
    m.on("moveend resize", this._reset, this);
    m.on("click", this._onClick, this);
    m.on("mousemove", this._onMove, this);
    this._reset();
  },
  onRemove: function (/** @type {any} */ m) {
    L.DomUtil.remove(this._canvas);
    m.off("moveend resize", this._reset, this);
    m.off("click", this._onClick, this);
    m.off("mousemove", this._onMove, this);
  },
  setIndex: function (/** @type {any} */ index) { this._index = index; },
  setItems: function (/** @type {any[]} */ items) { this._items = items; if (this._map) this._draw(); },
  /** The visible clusters and points of the index at the map's zoom. */
  refresh: function () {
    const map = this._map;
    if (!this._index || !map) { this.setItems([]); return 0; }
    const b = map.getBounds().pad(0.1);
    const zoom = Math.round(map.getZoom());
    const found = this._index.getClusters([b.getWest(), Math.max(-85, b.getSouth()), b.getEast(), Math.min(85, b.getNorth())], zoom);
    const items = new Array(found.length);
    for (let k = 0; k < found.length; k++) {
      const c = found[k], p = c.properties;
      /** @type {any} */
      const it = { lon: c.geometry.coordinates[0], lat: c.geometry.coordinates[1] };
      if (p.cluster) {
        const n = p.point_count;
        it.n = n;
        it.id = p.cluster_id;
        it.r = radius(n);
        it.cls = p.bad / n > BAD_SHARE ? "bad" : (p.due / n > DUE_SHARE ? "warn" : "ok");
      } else {
        it.s = p.s;
        it.i = p.i;
      }
      items[k] = it;
    }
    this.setItems(items);
    return items.length;
  },
  _reset: function () {
    const size = this._map.getSize();
    const ratio = window.devicePixelRatio || 1;
    L.DomUtil.setPosition(this._canvas, this._map.containerPointToLayerPoint([0, 0]));
    this._canvas.width = size.x * ratio;
    this._canvas.height = size.y * ratio;
    this._canvas.style.width = size.x + "px";
    this._canvas.style.height = size.y + "px";
    this._draw();
  },
  _draw: function () {
    const ctx = this._canvas.getContext("2d");
    const ratio = window.devicePixelRatio || 1;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, this._canvas.width, this._canvas.height);
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.font = "bold 12px system-ui, sans-serif";
    const m = this._map;
    this._items.forEach(function (/** @type {any} */ it) {
      const p = m.latLngToContainerPoint([it.lat, it.lon]);
      it.x = p.x; it.y = p.y;
      ctx.beginPath();
      if (it.n) {
        ctx.fillStyle = CLUSTER_HALO[it.cls];
        ctx.arc(p.x, p.y, it.r + 5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.beginPath();
        ctx.fillStyle = CLUSTER_FILL[it.cls];
        ctx.arc(p.x, p.y, it.r, 0, 2 * Math.PI);
        ctx.fill();
        ctx.fillStyle = it.cls === "warn" ? "#422006" : "#ffffff";
        ctx.fillText(abbrev(it.n), p.x, p.y);
      } else {
        ctx.fillStyle = STATUS_COLORS[it.s] || "#334155";
        ctx.arc(p.x, p.y, 4.5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.lineWidth = 1;
        ctx.strokeStyle = "#ffffff";
        ctx.stroke();
      }
    });
  },
  _hit: function (/** @type {any} */ e) {
    const p = e.containerPoint;
    let best = null, bestD = Infinity;
    this._items.forEach(function (/** @type {any} */ it) {
      const d = (it.x - p.x) * (it.x - p.x) + (it.y - p.y) * (it.y - p.y);
      const r = (it.n ? it.r + 3 : 7);
      if (d <= r * r && d < bestD) { best = it; bestD = d; }
    });
    return best;
  },
  _onMove: function (/** @type {any} */ e) {
    const hit = this._hit(e);
    this._map.getContainer().style.cursor = hit ? "pointer" : "";
  },
  _onClick: function (/** @type {any} */ e) {
    /** @type {any} */
    const hit = this._hit(e);
    if (!hit) return;
    if (hit.n) this._map.setView([hit.lat, hit.lon], Math.min(this._index.getClusterExpansionZoom(hit.id), MAX_ZOOM_IN));
    else if (this._onPoint) this._onPoint(hit);
  },
});
