// @ts-check
/* The base map every Leaflet map of the platform draws (cylinder track, wall): the tile
   layer of the page config (server/kernel/tiles.py; none: a blank background), and
   positions shifted to GCJ-02 when that layer is drawn in it (AMap). Leaflet is the
   vendored global L (/static/vendor/leaflet/leaflet.js, loaded before the page module). */
import { config } from "./config.js";
import { wgs84ToGcj02 } from "./coords.js";

/** @type {{url: string, overlay_url: string | null, attribution: string, subdomains: string, max_zoom: number, gcj02: boolean} | null} */
const tiles = config.tiles || null;

/** Is there a tile layer at all (attribution shown only then)? */
export const hasTiles = tiles !== null;

/**
 * Where a stored WGS-84 position is drawn on this page's base map.
 * @param {number} lat
 * @param {number} lon
 * @returns {[number, number]}
 */
export function toDisplay(lat, lon) {
  return tiles && tiles.gcj02 ? wgs84ToGcj02(lat, lon) : [lat, lon];
}

/**
 * Add the configured base layer (and its overlay) to a Leaflet map.
 * @param {any} map a Leaflet map
 */
export function addBaseLayer(map) {
  if (!tiles) return;
  /** @type {Record<string, unknown>} */
  const opts = { attribution: tiles.attribution, maxZoom: tiles.max_zoom };
  if (tiles.subdomains) opts.subdomains = tiles.subdomains;
  L.tileLayer(tiles.url, opts).addTo(map);
  if (tiles.overlay_url) L.tileLayer(tiles.overlay_url, opts).addTo(map);
}

/**
 * A GeoJSON polygon geometry moved onto the base map's datum.
 * @param {{type: string, coordinates: any}} geometry
 */
export function geometryToDisplay(geometry) {
  /** @param {number[][]} ring */
  const ring = (r) => r.map((p) => { const d = toDisplay(p[1], p[0]); return [d[1], d[0]]; });
  if (geometry.type === "Polygon") return { type: geometry.type, coordinates: geometry.coordinates.map(ring) };
  if (geometry.type === "MultiPolygon") {
    return { type: geometry.type, coordinates: geometry.coordinates.map((/** @type {number[][][]} */ p) => p.map(ring)) };
  }
  return geometry;
}
