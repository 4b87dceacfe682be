// @ts-check
/* The public's credit search (no login): a company's name in, its grade out
   (GET /api/v1/public/credit, rate-limited) — never a score or its breakdown. */
import { api } from "./lib/api.js";
import { byId, clear, el, formFromUrl } from "./lib/dom.js";
import { date } from "./lib/format.js";
import { t } from "./lib/i18n.js";
import { badge } from "./lib/ui.js";

const form = /** @type {HTMLFormElement} */ (byId("credit-search"));
const box = byId("credit-results");
const input = /** @type {HTMLInputElement} */ (form.elements.namedItem("q"));
const submit = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));

/** @param {string} grade */
function gradeBadge(grade) {
  const node = badge("credit-" + grade, grade);
  node.classList.add("credit-grade", "badge-lg");
  node.title = t("credit.public.grade." + grade);
  return node;
}

/** @param {any} item */
function row(item) {
  return el("div", { class: "credit-public-row", dataset: { testid: "result", grade: item.grade } },
    el("div", { class: "cell-stack" },
      el("b", { text: item.name }),
      el("span", { class: "muted", text: t("credit.public.as_of", { day: date(item.as_of) }) })),
    gradeBadge(item.grade));
}

async function search() {
  const q = input.value.trim();
  if (!q) {
    input.focus();
    return;
  }
  history.replaceState(null, "", location.pathname + "?q=" + encodeURIComponent(q));
  submit.disabled = true;
  clear(box).appendChild(el("div", { class: "loading", text: t("common.loading") }));
  try {
    const res = await api("/api/v1/public/credit", { query: { q }, anonymous: true });
    const items = res.items || [];
    clear(box);
    if (!items.length) {
      box.appendChild(el("p", { class: "muted", dataset: { testid: "empty-state" }, text: t("credit.public.none", { q }) }));
    } else {
      for (const item of items) box.appendChild(row(item));
    }
  } catch (err) {
    const e = /** @type {{status?: number, message: string}} */ (err);
    clear(box).appendChild(el("div", { class: "alert-box alert-error", role: "alert", text: e.status === 429 ? t("credit.public.busy") : t("error.load_failed") + " " + e.message }));
  } finally {
    submit.disabled = false;
  }
}

form.addEventListener("submit", (ev) => { ev.preventDefault(); search(); });
if (formFromUrl(form).get("q")) search();
