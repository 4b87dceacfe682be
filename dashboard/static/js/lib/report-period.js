// @ts-check
/* Periods of the report pages on the city's calendar (docs/API.md "Reports": `from`/`to` are
   city days): ISO day arithmetic in UTC, so that no browser zone moves a day, and the filter
   bar's quick picks. */

/**
 * The ISO day *days* after (or before) *iso*.
 * @param {string} iso
 * @param {number} days
 */
export function addDays(iso, days) {
  const d = new Date(iso + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/**
 * An ISO day; a month of 0 or 13 rolls into the year before or after.
 * @param {number} y
 * @param {number} m 1-based
 * @param {number} d
 */
export function isoDay(y, m, d) {
  return new Date(Date.UTC(y, m - 1, d)).toISOString().slice(0, 10);
}

/**
 * A quick pick's period ending with the city's *today* (page config `today`): this month (the
 * default), last month, this quarter or this year.
 * @param {string} pick
 * @param {string} today
 * @returns {[string, string]}
 */
export function quickPeriod(pick, today) {
  const [y, m] = today.split("-").map(Number);
  if (pick === "last_month") return [isoDay(y, m - 1, 1), addDays(isoDay(y, m, 1), -1)];
  if (pick === "this_quarter") return [isoDay(y, Math.floor((m - 1) / 3) * 3 + 1, 1), today];
  if (pick === "this_year") return [isoDay(y, 1, 1), today];
  return [isoDay(y, m, 1), today];
}
