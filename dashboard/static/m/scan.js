// @ts-check
/* Reading a cylinder's code with the phone's camera (officer PWA, /m).

   BarcodeDetector (Chromium on Android) reads the rear camera; where it is missing the
   button stays hidden and the code is typed. The QR code on a cylinder holds the public
   page's URL (/q/{barcode}); what is handed on is the code after /q/ and whether it came
   from such a URL (the registration form puts it into the barcode field, any other code
   into the tag field). Used by the lookup and the registration views. */
import { t } from "/static/js/lib/i18n.js";

const SCAN_EVERY_MS = 300;
const PUBLIC_URL = /^.*\/q\//;

/** Can this browser scan at all? */
export const canScan = () => "BarcodeDetector" in window && !!navigator.mediaDevices && !!navigator.mediaDevices.getUserMedia;

/**
 * @typedef {object} Scanned
 * @property {string} code the code (the barcode when the QR held the public URL)
 * @property {boolean} fromQr the QR held the public page's URL
 */

export class Scanner {
  /**
   * @param {HTMLElement} button toggles scanning (shown only where scanning works)
   * @param {HTMLVideoElement} video the camera preview
   * @param {(s: Scanned) => void} onCode called once with what was read, then scanning stops
   * @param {(message: string) => void} onFail no camera, or permission refused
   */
  constructor(button, video, onCode, onFail) {
    this.button = button;
    this.video = video;
    this.onCode = onCode;
    this.onFail = onFail;
    /** @type {MediaStream | null} */
    this.stream = null;
    /** @type {ReturnType<typeof setInterval> | null} */
    this.timer = null;
    button.hidden = !canScan();
    button.addEventListener("click", () => (this.stream ? this.stop() : this.start()));
  }

  stop() {
    if (this.timer) { clearInterval(this.timer); this.timer = null; }
    if (this.stream) { this.stream.getTracks().forEach((tr) => tr.stop()); this.stream = null; }
    this.video.hidden = true;
    this.button.textContent = t("lookup.scan");
  }

  start() {
    let detector;
    try {
      detector = new (/** @type {any} */ (window).BarcodeDetector)();
    } catch {
      this.onFail(t("lookup.no_camera"));
      return;
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then((stream) => {
      this.stream = stream;
      this.video.srcObject = stream;
      this.video.hidden = false;
      this.button.textContent = t("lookup.scan_stop");
      return this.video.play().then(() => {
        this.timer = setInterval(() => {
          detector.detect(this.video).then((/** @type {{rawValue: string}[]} */ codes) => {
            const raw = codes.length ? codes[0].rawValue : "";
            if (!raw) return;
            this.stop();
            this.onCode({ code: raw.replace(PUBLIC_URL, "").trim(), fromQr: PUBLIC_URL.test(raw) });
          }).catch(() => {});
        }, SCAN_EVERY_MS);
      });
    }).catch(() => { this.stop(); this.onFail(t("lookup.no_camera")); });
  }
}
