// @ts-check
/* WGS-84 -> GCJ-02 for drawing positions on AMap tiles: the port of dashboard/coords.py
   (same constants, same reference points in tests/dashboard). Positions are stored in
   WGS-84; only what is drawn on a GCJ-02 base map is shifted. Outside China: unchanged. */

const A = 6378245.0; // Krasovsky 1940 semi-major axis (m)
const EE = 0.006693421622965943; // its first eccentricity squared (0.00669342162296594323 as a double)
const PI = Math.PI;

/**
 * @param {number} lat
 * @param {number} lon
 */
export function outOfChina(lat, lon) {
  return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
}

/**
 * @param {number} x
 * @param {number} y
 */
function dLat(x, y) {
  let r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
  r += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
  r += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
  return r;
}

/**
 * @param {number} x
 * @param {number} y
 */
function dLon(x, y) {
  let r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
  r += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
  r += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
  return r;
}

/**
 * [lat, lon] WGS-84 -> [lat, lon] GCJ-02.
 * @param {number} lat
 * @param {number} lon
 * @returns {[number, number]}
 */
export function wgs84ToGcj02(lat, lon) {
  if (outOfChina(lat, lon)) return [lat, lon];
  let la = dLat(lon - 105.0, lat - 35.0);
  let lo = dLon(lon - 105.0, lat - 35.0);
  const radLat = lat / 180.0 * PI;
  let magic = Math.sin(radLat);
  magic = 1 - EE * magic * magic;
  const sqrtMagic = Math.sqrt(magic);
  la = (la * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * PI);
  lo = (lo * 180.0) / (A / sqrtMagic * Math.cos(radLat) * PI);
  return [lat + la, lon + lo];
}
