// @ts-check
/* The phone's own storage for work without signal (officer PWA /m, docs/ARCHITECTURE.md §8).

   One IndexedDB database, three stores:
   - `catalogues`: the newest safety-item catalogue of each customer kind (key: the kind), so
     an inspection can be walked in a basement;
   - `customers`: the customers looked up (and the first page of the caller's customers list),
     each with the city day it was stored, so today's customers can be found offline;
   - `queue`: inspections completed but not yet accepted by the server — the record JSON, the
     photo blobs and the signature blob, keyed by the record's client_id, in the order they
     were completed (`seq`). offline-queue.js sends them.
   The service worker caches the shell only; data lives here, per browser profile, and the
   queue is cleared only by a successful send or by the user discarding a refused record. */

const DB_NAME = "cylwatch-m";
const DB_VERSION = 1;
/** @type {Promise<IDBDatabase> | null} */
let opening = null;

/** @returns {Promise<IDBDatabase>} */
function db() {
  if (opening) return opening;
  opening = new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const d = req.result;
      if (!d.objectStoreNames.contains("catalogues")) d.createObjectStore("catalogues", { keyPath: "customer_kind" });
      if (!d.objectStoreNames.contains("customers")) d.createObjectStore("customers", { keyPath: "id" });
      if (!d.objectStoreNames.contains("queue")) d.createObjectStore("queue", { keyPath: "client_id" });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => { opening = null; reject(req.error); };
  });
  return opening;
}

/**
 * One request in one transaction, as a promise.
 * @param {string} store
 * @param {IDBTransactionMode} mode
 * @param {(s: IDBObjectStore) => IDBRequest} fn
 * @returns {Promise<any>}
 */
async function run(store, mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction(store, mode);
    const req = fn(tx.objectStore(store));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error);
  });
}

/** @param {string} store @param {any} value */
export const put = (store, value) => run(store, "readwrite", (s) => s.put(value));
/** @param {string} store @param {IDBValidKey} key */
export const get = (store, key) => run(store, "readonly", (s) => s.get(key));
/** @param {string} store @param {IDBValidKey} key */
export const remove = (store, key) => run(store, "readwrite", (s) => s.delete(key));
/** @param {string} store @returns {Promise<any[]>} */
export const all = (store) => run(store, "readonly", (s) => s.getAll());

/** The queued inspections, oldest first. @returns {Promise<any[]>} */
export async function queued() {
  const rows = await all("queue");
  return rows.sort((a, b) => a.seq - b.seq);
}
