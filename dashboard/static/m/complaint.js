// @ts-check
/* Filing a complaint from the phone (投诉登记, /m; issue 13, docs/API.md "Complaints").

   A field officer meets a complaint on a round: scan the cylinder's QR code (its /q/ URL
   gives the barcode) or type its code, write what happened and how to reach the complainant,
   take an optional photo (downscaled on the phone, photo.js), send POST /api/v1/complaints.
   The server files it with source `mobile` (the source follows the officer's role) in the
   officer's districts, and answers with the ticket, which is shown for the complainant to
   note. With a photo the body is multipart/form-data (the endpoint's photo path), else JSON.
   Shown to the roles in COMPLAINT_ROLES only: the regulators' phone desk is the dashboard. */
import { ApiError, api, csrfToken } from "/static/js/lib/api.js";
import { byId, clear, el } from "/static/js/lib/dom.js";
import { t, tOr } from "/static/js/lib/i18n.js";
import { downscale } from "./photo.js";
import { Scanner } from "./scan.js";

const ENDPOINT = "/api/v1/complaints";
/** Who files from the phone (server.api.complaints.FILE_ROLES, less the desk roles). */
const COMPLAINT_ROLES = ["officer"];

/** What the view did (tests read it through window.__m.complaint). */
export const shown = { ticket: /** @type {string | null} */ (null), refused: /** @type {string | null} */ (null) };

/** @param {{role?: string} | null} user */
export function mayFile(user) {
  return !!user && COMPLAINT_ROLES.includes(String(user.role));
}

const form = /** @type {HTMLFormElement} */ (byId("complaint-form"));
const submit = /** @type {HTMLButtonElement} */ (byId("complaint-submit"));
const codeInput = /** @type {HTMLInputElement} */ (form.elements.namedItem("code"));
const photoInput = /** @type {HTMLInputElement} */ (byId("complaint-photo"));
const thumb = byId("complaint-thumb");
const formError = byId("complaint-error");
const outcome = byId("complaint-result");
/** @type {{blob: Blob, url: string} | null} */
let photo = null;

export const scanner = new Scanner(byId("complaint-scan-btn"), /** @type {HTMLVideoElement} */ (byId("complaint-video")),
  (s) => { codeInput.value = s.code; }, (message) => { formError.textContent = message; });

function dropPhoto() {
  if (photo) URL.revokeObjectURL(photo.url);
  photo = null;
  clear(thumb);
  photoInput.value = "";
}

photoInput.addEventListener("change", () => {
  const file = photoInput.files?.[0];
  if (!file) return;
  clear(thumb).appendChild(el("span", { class: "m-muted", text: t("complaint.photo_working") }));
  downscale(file).then(({ blob }) => {
    if (photo) URL.revokeObjectURL(photo.url);
    photo = { blob, url: URL.createObjectURL(blob) };
    clear(thumb).append(el("img", { src: photo.url, alt: t("complaint.photo"), dataset: { testid: "complaint-thumb" } }),
      el("button", { type: "button", class: "m-btn", text: t("complaint.photo_remove"), onclick: dropPhoto }));
  }).catch(() => { photo = null; clear(thumb).appendChild(el("span", { class: "m-error", text: t("complaint.photo_bad") })); });
});

/** @param {Record<string, string>} fields @param {Blob} blob */
async function sendMultipart(fields, blob) {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  fd.append("photo", blob, "complaint.jpg");
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  const token = csrfToken();
  if (token) headers["X-CSRF-Token"] = token;
  let res;
  try {
    res = await fetch(ENDPOINT, { method: "POST", body: fd, headers, credentials: "same-origin", cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "network_error", e instanceof Error ? e.message : String(e));
  }
  const body = (res.headers.get("Content-Type") || "").includes("application/json") ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    const err = (body && body.error) || {};
    throw new ApiError(res.status, err.code || "http_" + res.status, err.message || res.statusText, err.details);
  }
  return body;
}

/** @param {any} err */
function readable(err) {
  if (err && err.status === 0) return t("complaint.offline");
  const field = err && err.details && typeof err.details.field === "string" ? err.details.field : "";
  const specific = tOr("complaint.error." + (err && err.code) + "." + field, "");
  const words = String((err && err.message) || "").replace(/^[\w.$[\]]+:\s*/, "");
  return specific || (t("complaint.failed") + (words ? " (" + words + ")" : ""));
}

/** @param {any} k the filed complaint */
function showTicket(k) {
  const ticket = String(k.ticket || "");
  shown.ticket = ticket;
  const display = ticket.replace(/(.{4})(?=.)/g, "$1-");
  clear(outcome).appendChild(el("div", { class: "m-card m-done", dataset: { testid: "complaint-ticket" } },
    el("h2", { text: t("complaint.done") }),
    el("p", { class: "m-ticket", text: display, dataset: { ticket } }),
    el("p", { class: "m-muted", text: t("complaint.done_hint", { deadline: String(k.deadline || "") }) }),
    el("button", { type: "button", class: "m-btn wide", text: t("complaint.another"), onclick: () => { clear(outcome); form.hidden = false; } })));
  form.hidden = true;
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  formError.textContent = "";
  const text = String(new FormData(form).get("text") || "").trim();
  if (!text) { formError.textContent = t("complaint.text_required"); return; }
  /** @type {Record<string, string>} */
  const fields = { text };
  const code = codeInput.value.trim();
  const contact = String(new FormData(form).get("contact") || "").trim();
  if (code) fields.code = code;
  if (contact) fields.contact = contact;
  submit.disabled = true;
  submit.textContent = t("complaint.sending");
  const sent = photo ? sendMultipart(fields, photo.blob) : api(ENDPOINT, { method: "POST", body: fields });
  sent.then((k) => {
    shown.refused = null;
    form.reset();
    dropPhoto();
    showTicket(k);
  }).catch((e) => {
    shown.refused = e && e.code ? String(e.code) : "error";
    formError.textContent = readable(e);
  }).finally(() => {
    submit.disabled = false;
    submit.textContent = t("complaint.submit");
  });
});
