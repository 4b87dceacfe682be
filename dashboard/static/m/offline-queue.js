// @ts-check
/* Completed inspections waiting for a connection (officer PWA /m; docs/API.md "Safety
   inspections": the submission is idempotent on client_id).

   Every completed inspection is first written to IndexedDB (store.js `queue`) and only then
   sent, so closing the page, losing signal or a crash loses nothing. Sending:
   - oldest first, one at a time (one flush runs at once; a second call joins it);
   - 201 (stored) or 200 (a replay of a record already stored: an earlier send whose answer
     was lost) both count as sent: the entry is removed and its result kept for the screen;
   - no answer, a 5xx, 401 (the session ended), 408 or 429: the entry keeps waiting and the
     flush stops (the next trigger tries again, still in order);
   - any other 4xx is the server refusing this record: it would be refused again, so it is
     marked failed with the server's reason and kept for the user to read and discard; the
     entries after it are still sent.
   Triggers: the page load (once the user is known), the `online` event, a retry timer while
   something waits, and each new entry. Entries are sent only by the user who made them (the
   server answers a client_id of another inspector's record 409). */
import { csrfToken } from "/static/js/lib/api.js";
import * as store from "./store.js";

const RETRY_MS = 20_000;
const URL = "/api/v1/safety-inspections";
const WAIT_AGAIN = new Set([0, 401, 408, 429]);

/** What the queue did (tests read it through window.__m.queue). */
export const queueState = { sent: 0, replays: 0, refused: 0, flushes: 0, sending: false };

/** @type {Set<() => void>} */
const listeners = new Set();
/** @param {() => void} fn called whenever the queue changes */
export function onChange(fn) { listeners.add(fn); }
const changed = () => listeners.forEach((fn) => fn());

/** The server's answer to each entry sent from this page (client_id → the stored record). */
export const results = new Map();

/** @type {number | null} */
let userId = null;
/** @param {number | null} id the logged-in user (null: send nothing) */
export function setUser(id) { userId = id; }

/**
 * Keep a completed inspection and try to send it (resolves after that try: the entry is then
 * gone from the queue and in `results`, or still waiting, or failed).
 * @param {any} entry {client_id, record, photos [{item_id, blob}], signature Blob, customer, user_id}
 */
export async function enqueue(entry) {
  await store.put("queue", { ...entry, seq: Date.now() + Math.random(), state: "waiting", reason: null, tries: 0 });
  changed();
  await flush();
}

/** @param {string} clientId */
export async function discard(clientId) {
  await store.remove("queue", clientId);
  changed();
}

/** @param {any} e */
function form(e) {
  const fd = new FormData();
  fd.append("record", JSON.stringify(e.record));
  e.photos.forEach((/** @type {{blob: Blob}} */ p, /** @type {number} */ n) => fd.append("photo", p.blob, "photo-" + (n + 1) + ".jpg"));
  fd.append("signature", e.signature, "signature.png");
  return fd;
}

/** @param {any} e @returns {Promise<{status: number, body: any}>} */
async function send(e) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  const token = csrfToken();
  if (token) headers["X-CSRF-Token"] = token;
  let res;
  try {
    res = await fetch(URL, { method: "POST", body: form(e), headers, credentials: "same-origin", cache: "no-store" });
  } catch {
    return { status: 0, body: null };
  }
  const body = (res.headers.get("Content-Type") || "").includes("application/json") ? await res.json().catch(() => null) : null;
  return { status: res.status, body };
}

/** @type {Promise<void> | null} */
let flushing = null;
let rerun = false;

/** One pass over the queue, oldest first, one at a time. */
async function pass() {
  for (const e of await store.queued()) {
    if (e.state !== "waiting" || e.user_id !== userId || userId === null) continue;
    const { status, body } = await send(e);
    if (status === 200 || status === 201) {
      await store.remove("queue", e.client_id);
      queueState.sent += 1;
      if (status === 200) queueState.replays += 1;
      results.set(e.client_id, body);
      changed();
      continue;
    }
    if (WAIT_AGAIN.has(status) || status >= 500) {
      await store.put("queue", { ...e, tries: e.tries + 1, last_status: status });
      changed();
      return; // still in order: nothing after it goes first
    }
    const err = (body && body.error) || {};
    await store.put("queue", { ...e, state: "failed", tries: e.tries + 1, last_status: status,
      reason: { status, code: err.code || "http_" + status, message: err.message || "", details: err.details || null } });
    queueState.refused += 1;
    changed();
  }
}

/** Send what waits. One flush runs at a time; a call during it makes it pass once more
 * (an entry added meanwhile is not left behind) and resolves with it. */
export function flush() {
  if (flushing) { rerun = true; return flushing; }
  flushing = (async () => {
    queueState.sending = true;
    try {
      do {
        rerun = false;
        queueState.flushes += 1;
        await pass();
      } while (rerun);
    } finally {
      queueState.sending = false;
      flushing = null;
    }
  })();
  return flushing;
}

window.addEventListener("online", () => { flush(); });
setInterval(() => { if (navigator.onLine && userId !== null) flush(); }, RETRY_MS);
