// @ts-check
/* A video or camera stream window of the wall, played by the wall itself.

   HLS plays in a muted <video> through the vendored hls.js (Media Source Extensions; loaded
   once, only by a wall that shows a stream; no worker, so the page's worker-src stays
   'self'), or natively where the browser has no MSE but plays HLS itself. MJPEG is an <img> the camera keeps drawing. The address was
   checked when the layout was saved (http or https, from `[big_screen] stream_origins`,
   which the page's Content-Security-Policy allows); it is checked again here, and a stream
   that fails is retried every RETRY_MS with a notice in its window — a camera rebooting
   must not leave a black hole on the wall for good. Destroying the window stops the stream
   (an <img> left in memory would keep the MJPEG connection open). */
import { config } from "/static/js/lib/config.js";
import { el } from "/static/js/lib/dom.js";
import { t } from "/static/js/lib/i18n.js";

const RETRY_MS = 15000;

/** @type {Promise<any> | null} */
let hlsLoading = null;

/** The hls.js global, loading the vendored script the first time. */
function loadHls() {
  const w = /** @type {any} */ (window);
  if (w.Hls) return Promise.resolve(w.Hls);
  if (!hlsLoading) {
    hlsLoading = new Promise((resolve, reject) => {
      const s = el("script", { src: config.hls_js });
      s.addEventListener("load", () => resolve(w.Hls));
      s.addEventListener("error", () => { hlsLoading = null; reject(new Error("hls.js")); });
      document.head.appendChild(s);
    });
  }
  return hlsLoading;
}

/** @param {string} url */
function allowed(url) {
  try {
    const u = new URL(url);
    return (u.protocol === "http:" || u.protocol === "https:") && !u.username && !u.password
      && (config.stream_origins || []).map((/** @type {string} */ o) => o.toLowerCase()).includes(u.origin.toLowerCase());
  } catch {
    return false;
  }
}

/**
 * @param {HTMLElement} body
 * @param {{win: any}} opts
 */
export function streamWindow(body, opts) {
  const { url, format } = opts.win;
  const notice = el("p", { class: "bs-win-error", hidden: true });
  /** @type {any} */
  let hls = null;
  /** @type {HTMLVideoElement | HTMLImageElement | null} */
  let media = null;
  /** @type {ReturnType<typeof setTimeout> | null} */
  let retry = null;
  let alive = true;

  /** @param {string} key */
  function failed(key) {
    if (!alive) return;
    body.dataset.state = "error";
    notice.textContent = t(key);
    notice.hidden = false;
    stop();
    if (!retry) retry = setTimeout(() => { retry = null; start(); }, RETRY_MS);
  }
  function playing() {
    body.dataset.state = "playing";
    notice.hidden = true;
  }
  function stop() {
    if (hls) { hls.destroy(); hls = null; }
    if (media) {
      if (media instanceof HTMLImageElement) media.removeAttribute("src");
      else { media.pause(); media.removeAttribute("src"); media.load(); }
      media.remove();
      media = null;
    }
  }
  function start() {
    if (!alive) return;
    if (!allowed(url)) { failed("stream.refused"); return; }
    body.dataset.state = "loading";
    if (format === "mjpeg") {
      const img = el("img", { class: "bs-stream", alt: "" });
      img.addEventListener("load", playing);
      img.addEventListener("error", () => failed("stream.failed"));
      media = img;
      body.insertBefore(img, notice);
      img.src = url;
      return;
    }
    const video = el("video", { class: "bs-stream", muted: true, autoplay: true, playsInline: true });
    video.muted = true;
    video.addEventListener("playing", playing);
    video.addEventListener("error", () => failed("stream.failed"));
    media = video;
    body.insertBefore(video, notice);
    const native = () => {
      if (!video.canPlayType("application/vnd.apple.mpegurl")) { failed("stream.unsupported"); return; }
      video.src = url;
      video.play().catch(() => {});
    };
    loadHls().then((Hls) => {
      if (!alive || media !== video) return;
      if (!Hls || !Hls.isSupported()) { native(); return; }
      hls = new Hls({ enableWorker: false, lowLatencyMode: true });
      hls.on(Hls.Events.ERROR, (/** @type {any} */ _e, /** @type {any} */ data) => { if (data && data.fatal) failed("stream.failed"); });
      hls.loadSource(url);
      hls.attachMedia(video);
      hls.on(Hls.Events.MANIFEST_PARSED, () => { video.play().catch(() => {}); });
    }, native);
  }
  body.appendChild(notice);
  start();
  return {
    resize() {},
    destroy() {
      alive = false;
      if (retry) clearTimeout(retry);
      stop();
    },
  };
}
