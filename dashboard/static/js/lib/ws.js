// @ts-check
/* The one websocket client of the platform (docs/WEBSOCKET.md): every page that shows live
   data — the dashboard, the wall, the officer PWA — talks to /ws through a LiveSocket.

   - Envelope: every message is {id, type, ...}; ids increase on each connection.
   - Subscriptions outlive the socket: after any reconnect every open subscription is sent
     again, and the server's snapshot frame brings the state back.
   - Reconnect with doubling, jittered backoff between the page config's
     live.reconnect_min_s and live.reconnect_max_s; a keep-alive ping every live.ping_s,
     and a link silent for 2.5 pings is treated as dead (a pulled cable never says "close").
   - Close codes come from the server (page config live.close, from
     server/kernel/live_codes.py): a socket closed as unauthorized, or one that died before
     opening (the browser hides a refused upgrade's status), makes the next attempt
     "suspect", which a page's beforeConnect hook uses to renew its session first.

   States reported to onState: "connecting" (never opened yet), "live", "reconnecting",
   "auth" (beforeConnect failed with 401/403: credentials are being renewed). */
import { config } from "./config.js";

/** @type {{url: string, close: {unauthorized: number, try_again_later: number}, reconnect_min_s: number, reconnect_max_s: number, ping_s: number}} */
const LIVE = config.live;
const WATCHDOG_PINGS = 2.5;
/** How long a command (request()) waits for its result before giving up. */
const REQUEST_TIMEOUT_MS = 10000;

/**
 * @typedef {(rows: any[], msg: any) => void} OnRows
 * @typedef {{code: string, message: string, field?: string}} WsError
 * @typedef {{channel: string, filter: Record<string, unknown>, onRows: OnRows, onError?: (e: WsError) => void, id: number | null}} Sub
 * @typedef {{attempt: number, suspect: boolean}} ConnectInfo
 * @typedef {object} LiveOptions
 * @property {() => (string | null)} [token] a bearer session sent as ?token= (the wall)
 * @property {(info: ConnectInfo) => Promise<unknown>} [beforeConnect] runs before each attempt
 * @property {(state: string, info: {retryInS?: number}) => void} [onState]
 * @property {(opens: number) => void} [onOpen] after each open (1: the first)
 * @property {(channel: string, reason: string) => void} [onResync] rows of a channel were
 *   lost on their way to the server (docs/WEBSOCKET.md "Resync"); its snapshot follows
 */

/** @param {Record<string, unknown>} filter */
function compact(filter) {
  /** @type {Record<string, unknown>} */
  const out = {};
  for (const [k, v] of Object.entries(filter || {})) {
    if (v !== undefined && v !== null && v !== "") out[k] = v;
  }
  return out;
}

/** Every LiveSocket of this page, oldest first: a script that wants a subscription on a page
    that already has a socket (the header's inbox count on the map) uses it, never a second. */
export const pageSockets = /** @type {LiveSocket[]} */ ([]);

export class LiveSocket {
  /** @param {LiveOptions} [opts] */
  constructor(opts = {}) {
    pageSockets.push(this);
    this.opts = opts;
    /** Counters for tests and a technician's console. */
    this.stats = { state: "connecting", opens: 0, closes: 0, frames: 0, lastClose: /** @type {number | null} */ (null), subscribed: 0, resyncs: 0 };
    /** @type {Set<Sub>} */
    this.subs = new Set();
    /** @type {Map<number, Sub>} subscribe ids of this connection */
    this.byId = new Map();
    /** @type {WebSocket | null} */
    this.sock = null;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.pinger = null;
    this.nextId = 1;
    this.backoff = LIVE.reconnect_min_s;
    this.wanted = false;
    this.connecting = false;
    this.everOpened = false;
    this.suspect = false;
    this.attempt = 0;
    this.lastRx = 0;
    /** @type {unknown} */
    this.lastError = null;
    /** @type {Map<number, {resolve: (r: any) => void, reject: (e: WsError) => void, timer: ReturnType<typeof setTimeout>}>} commands awaiting their result */
    this.pending = new Map();
  }

  /** Connect (again) unless a socket is open, opening or scheduled. */
  start() {
    this.wanted = true;
    if (!this.pinger) this.pinger = setInterval(() => this.keepAlive(), LIVE.ping_s * 1000);
    if (this.sock || this.timer || this.connecting) return;
    this.connect();
  }

  /** Close and stop reconnecting (logout); subscriptions are kept for a later start(). */
  stop() {
    this.wanted = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pinger) clearInterval(this.pinger);
    this.pinger = null;
    if (this.sock) {
      const s = this.sock;
      this.detach(s);
      s.close();
    }
  }

  get isOpen() {
    return this.sock !== null && this.sock.readyState === WebSocket.OPEN;
  }

  /**
   * @param {string} channel
   * @param {Record<string, unknown>} filter
   * @param {OnRows} onRows
   * @param {(e: WsError) => void} [onError]
   */
  subscribe(channel, filter, onRows, onError) {
    /** @type {Sub} */
    const sub = { channel, filter: filter || {}, onRows, onError, id: null };
    this.subs.add(sub);
    this.sendSubscribe(sub);
    return {
      /** Resubscribe with a new filter. @param {Record<string, unknown>} next */
      update: (next) => {
        this.unsubscribe(sub);
        sub.filter = next || {};
        this.sendSubscribe(sub);
      },
      close: () => {
        this.unsubscribe(sub);
        this.subs.delete(sub);
      },
    };
  }

  /**
   * Send a command (e.g. wall_switch) and wait for its result: resolves with `result`,
   * rejects with the error {code, message, field}, or with code "offline" / "timeout" when
   * the socket is not open, closes first, or no answer comes.
   * @param {Record<string, unknown>} msg
   * @param {number} [timeoutMs]
   * @returns {Promise<any>}
   */
  request(msg, timeoutMs = REQUEST_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      const id = this.send(msg);
      if (id === null) { reject({ code: "offline", message: "not connected" }); return; }
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject({ code: "timeout", message: "no answer" });
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  // ---------------------------------------------------------------- internals

  /** @param {string} state @param {{retryInS?: number}} [info] */
  setState(state, info = {}) {
    this.stats.state = state;
    if (this.opts.onState) this.opts.onState(state, info);
  }

  /** @param {Record<string, unknown>} msg */
  send(msg) {
    if (!this.isOpen || !this.sock) return null;
    const id = this.nextId++;
    this.sock.send(JSON.stringify({ ...msg, id }));
    return id;
  }

  /** @param {Sub} sub */
  sendSubscribe(sub) {
    const id = this.send({ type: "subscribe", channel: sub.channel, filter: compact(sub.filter) });
    sub.id = id;
    if (id !== null) this.byId.set(id, sub);
  }

  /** @param {Sub} sub */
  unsubscribe(sub) {
    if (sub.id !== null) {
      this.byId.delete(sub.id);
      this.send({ type: "unsubscribe", subscription: sub.id });
    }
    sub.id = null;
  }

  connect() {
    this.connecting = true;
    const info = { attempt: this.attempt++, suspect: this.suspect };
    const ready = this.opts.beforeConnect ? this.opts.beforeConnect(info) : Promise.resolve();
    ready.then(
      () => {
        this.connecting = false;
        this.lastError = null;
        if (this.wanted) this.open();
      },
      (err) => {
        this.connecting = false;
        this.lastError = err;
        if (this.wanted) this.scheduleReconnect();
      },
    );
  }

  open() {
    const url = new URL(LIVE.url, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const token = this.opts.token ? this.opts.token() : null;
    if (token) url.searchParams.set("token", token);
    let sock;
    try {
      sock = new WebSocket(url.href);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.sock = sock;
    let opened = false;
    sock.onopen = () => {
      opened = true;
      this.everOpened = true;
      this.suspect = false;
      this.stats.opens += 1;
      this.stats.subscribed = 0; // counted when the server confirms, not when sent
      this.lastRx = Date.now();
      this.nextId = 1;
      this.byId.clear();
      this.backoff = LIVE.reconnect_min_s;
      for (const sub of this.subs) this.sendSubscribe(sub);
      this.setState("live");
      if (this.opts.onOpen) this.opts.onOpen(this.stats.opens);
    };
    sock.onmessage = (ev) => {
      this.lastRx = Date.now();
      this.stats.frames += 1;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.handle(msg);
    };
    sock.onclose = (ev) => {
      this.stats.closes += 1;
      this.stats.lastClose = ev.code;
      this.detach(sock);
      if (!opened || ev.code === LIVE.close.unauthorized) this.suspect = true;
      if (this.wanted) this.scheduleReconnect();
    };
    sock.onerror = () => { /* a close event follows */ };
  }

  /** @param {any} msg */
  handle(msg) {
    const waiting = msg.type === "result" && typeof msg.id === "number" ? this.pending.get(msg.id) : undefined;
    if (waiting) {
      this.pending.delete(msg.id);
      clearTimeout(waiting.timer);
      if (msg.success) waiting.resolve(msg.result);
      else waiting.reject(msg.error || { code: "error", message: "" });
      return;
    }
    const sub = typeof msg.id === "number" ? this.byId.get(msg.id) : undefined;
    if (msg.type === "event") {
      if (sub) sub.onRows(Array.isArray(msg.data) ? msg.data : [msg.data], msg);
    } else if (msg.type === "resync") {
      this.stats.resyncs += 1;
      if (sub && this.opts.onResync) this.opts.onResync(sub.channel, String(msg.reason));
    } else if (msg.type === "result") {
      if (msg.success) {
        if (sub) this.stats.subscribed += 1;
        return;
      }
      const error = msg.error || {};
      if (sub) {
        this.byId.delete(msg.id);
        sub.id = null;
        if (sub.onError) sub.onError(error);
      }
      if (error.code === "unauthorized") {
        this.suspect = true;
        if (this.sock) this.sock.close();
      }
    }
  }

  /** @param {WebSocket} sock */
  detach(sock) {
    sock.onopen = sock.onmessage = sock.onclose = sock.onerror = null;
    if (this.sock === sock) this.sock = null;
    this.byId.clear();
    for (const w of this.pending.values()) {
      clearTimeout(w.timer);
      w.reject({ code: "offline", message: "connection closed" });
    }
    this.pending.clear();
    for (const sub of this.subs) sub.id = null;
  }

  scheduleReconnect() {
    if (this.timer || !this.wanted) return;
    const base = Math.min(this.backoff, LIVE.reconnect_max_s);
    const delay = base * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, LIVE.reconnect_max_s);
    const err = /** @type {{status?: number} | null} */ (this.lastError);
    const auth = err !== null && (err.status === 401 || err.status === 403);
    this.setState(auth ? "auth" : this.everOpened ? "reconnecting" : "connecting", { retryInS: Math.ceil(delay) });
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay * 1000);
  }

  keepAlive() {
    const s = this.sock;
    if (!s || s.readyState !== WebSocket.OPEN) return;
    if (Date.now() - this.lastRx > WATCHDOG_PINGS * LIVE.ping_s * 1000) {
      this.detach(s);
      s.close();
      this.stats.closes += 1;
      this.scheduleReconnect();
      return;
    }
    this.send({ type: "ping" });
  }
}
