// @ts-check
/* Pieces the regulator pages share: badges in the platform's vocabulary, empty, loading
   and error states, and the toast region (dashboard/templates/base.html). */
import { clear, el } from "./dom.js";
import { t, tOr } from "./i18n.js";

/**
 * @param {string} value a vocabulary word, also its CSS modifier
 * @param {string} label
 */
export function badge(value, label) {
  return el("span", { class: "badge badge-" + value, dataset: { value } }, label);
}

/** @param {string | null | undefined} code */
export function complianceBadge(code) {
  return code ? badge(code, t("compliance." + code)) : el("span", { class: "muted", text: "—" });
}

/** @param {string} severity */
export function severityBadge(severity) {
  return badge(severity, t("severity." + severity));
}

/** @param {string} state */
export function stateBadge(state) {
  return badge(state, t("alert.state." + state));
}

/** @param {string} kind */
export function alertKind(kind) {
  return tOr("alert.kind." + kind, kind);
}

/** @param {string} status */
export function statusLabel(status) {
  return tOr("status." + status, status);
}

/**
 * Replace a container's content with an empty state (icon, title, hint).
 * @param {HTMLElement} container
 * @param {string} titleKey
 * @param {string | null} [hintKey]
 * @param {string} [icon]
 */
export function emptyState(container, titleKey, hintKey, icon) {
  clear(container).appendChild(
    el("div", { class: "empty-state", dataset: { testid: "empty-state" } },
      el("div", { class: "empty-icon", "aria-hidden": "true", text: icon || "∅" }),
      el("p", { class: "empty-title", text: t(titleKey) }),
      hintKey ? el("p", { class: "muted", text: t(hintKey) }) : null),
  );
}

/**
 * @param {HTMLElement} container
 * @param {{status?: number, message?: string}} err
 */
export function errorState(container, err) {
  const msg = err.status === 403 ? t("error.forbidden.body") : err.status === 404 ? t("error.api_missing") : err.message || String(err);
  clear(container).appendChild(el("div", { class: "alert-box alert-error", role: "alert", text: t("error.load_failed") + " " + msg }));
}

/** @param {HTMLElement} container */
export function loading(container) {
  clear(container).appendChild(el("div", { class: "loading", text: t("common.loading") }));
}

const TOAST_MS = 4000;

/**
 * A short notice in the page's status region.
 * @param {string} message
 * @param {"error"} [kind]
 */
export function toast(message, kind) {
  const region = document.getElementById("toasts");
  if (!region) return;
  const node = el("div", { class: "toast" + (kind === "error" ? " error" : ""), text: message });
  region.appendChild(node);
  setTimeout(() => node.remove(), TOAST_MS);
}
