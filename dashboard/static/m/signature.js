// @ts-check
/* The customer's signature, drawn with a finger (or a stylus, or a mouse) on a canvas
   (officer PWA /m; docs/API.md "Safety inspections": the record's `signature` part is a PNG).

   Pointer events cover touch, pen and mouse alike; the pointer is captured so a stroke that
   leaves the box still ends. The canvas's backing store follows the device pixel ratio, so
   the strokes stay sharp on a phone; `touch-action: none` (m.css) keeps the page from
   scrolling under the finger. */

const LINE_WIDTH = 2.5;
const INK = "#0f172a";

export class SignaturePad {
  /** @param {HTMLCanvasElement} canvas */
  constructor(canvas) {
    this.canvas = canvas;
    /** @type {CanvasRenderingContext2D} */
    this.ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
    this.strokes = 0;
    /** @type {{x: number, y: number} | null} */
    this.last = null;
    /** @type {(() => void) | null} */
    this.onChange = null;
    canvas.addEventListener("pointerdown", (ev) => this.down(ev));
    canvas.addEventListener("pointermove", (ev) => this.move(ev));
    canvas.addEventListener("pointerup", () => this.up());
    canvas.addEventListener("pointercancel", () => this.up());
  }

  /** Size the backing store to the box on screen (call when the canvas becomes visible). */
  fit() {
    const r = this.canvas.getBoundingClientRect();
    if (!r.width) return;
    const ratio = window.devicePixelRatio || 1;
    const w = Math.round(r.width * ratio);
    const h = Math.round(r.height * ratio);
    if (this.canvas.width === w && this.canvas.height === h) return;
    this.canvas.width = w;
    this.canvas.height = h;
    this.clear();
  }

  clear() {
    const { ctx, canvas } = this;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#fff"; // an opaque PNG: readable on any background it is later shown on
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const ratio = window.devicePixelRatio || 1;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.lineWidth = LINE_WIDTH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = INK;
    this.strokes = 0;
    this.last = null;
    if (this.onChange) this.onChange();
  }

  isEmpty() { return this.strokes === 0; }

  /** @param {PointerEvent} ev */
  point(ev) {
    const r = this.canvas.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  }

  /** @param {PointerEvent} ev */
  down(ev) {
    ev.preventDefault();
    this.canvas.setPointerCapture(ev.pointerId);
    this.last = this.point(ev);
    this.ctx.beginPath();
    this.ctx.arc(this.last.x, this.last.y, LINE_WIDTH / 2, 0, Math.PI * 2);
    this.ctx.fillStyle = INK;
    this.ctx.fill();
  }

  /** @param {PointerEvent} ev */
  move(ev) {
    if (!this.last) return;
    const p = this.point(ev);
    this.ctx.beginPath();
    this.ctx.moveTo(this.last.x, this.last.y);
    this.ctx.lineTo(p.x, p.y);
    this.ctx.stroke();
    this.last = p;
  }

  up() {
    if (!this.last) return;
    this.last = null;
    this.strokes += 1;
    if (this.onChange) this.onChange();
  }

  /** The drawing as a PNG. @returns {Promise<Blob>} */
  toBlob() {
    return new Promise((resolve, reject) => this.canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("no PNG"))), "image/png"));
  }
}
