// @ts-check
/* A photo from the phone's camera made small enough to keep and to send over a weak signal
   (officer PWA /m): drawn on a canvas at most MAX_PX on its longer side and encoded as JPEG.
   A phone's camera gives 12–50 MP pictures of several MB; an inspection may carry several,
   and they wait in IndexedDB until there is signal. The server re-encodes every picture
   anyway (docs/API.md "Safety inspections": no metadata kept), so nothing is lost here that
   would be kept there. createImageBitmap applies the picture's EXIF orientation. */

export const MAX_PX = 1600;
const QUALITY = 0.85;

/**
 * @param {Blob} file the picture the camera (or the gallery) gave
 * @returns {Promise<{blob: Blob, width: number, height: number}>}
 */
export async function downscale(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, MAX_PX / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
  ctx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const blob = await new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("no JPEG"))), "image/jpeg", QUALITY));
  return { blob: /** @type {Blob} */ (blob), width, height };
}
