/* WGS-84 -> GCJ-02 for drawing live positions on AMap tiles: the port of dashboard/coords.py
   (same constants, same reference points in the tests). Positions are stored in WGS-84;
   only what is drawn on a GCJ-02 base map is shifted. Outside China: unchanged. */
(function (root) {
  "use strict";
  var A = 6378245.0;                 // Krasovsky 1940 semi-major axis (m)
  var EE = 0.00669342162296594323;   // its first eccentricity squared
  var PI = Math.PI;

  function outOfChina(lat, lon) {
    return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
  }

  function dLat(x, y) {
    var r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    r += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    return r;
  }

  function dLon(x, y) {
    var r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    r += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    return r;
  }

  /** [lat, lon] WGS-84 -> [lat, lon] GCJ-02. */
  function wgs84ToGcj02(lat, lon) {
    if (outOfChina(lat, lon)) return [lat, lon];
    var la = dLat(lon - 105.0, lat - 35.0);
    var lo = dLon(lon - 105.0, lat - 35.0);
    var radLat = lat / 180.0 * PI;
    var magic = Math.sin(radLat);
    magic = 1 - EE * magic * magic;
    var sqrtMagic = Math.sqrt(magic);
    la = (la * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * PI);
    lo = (lo * 180.0) / (A / sqrtMagic * Math.cos(radLat) * PI);
    return [lat + la, lon + lo];
  }

  root.CWCoords = { wgs84ToGcj02: wgs84ToGcj02, outOfChina: outOfChina };
})(typeof window !== "undefined" ? window : globalThis);
