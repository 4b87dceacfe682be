// @ts-check
/* Building the page from data without HTML strings: elements are created and text is set
   as textContent, so nothing a device, a company or a citizen typed can become markup.
   There is no innerHTML anywhere in the platform's own scripts. */

/**
 * @typedef {Node | string | number | null | undefined | false} Child
 * @typedef {Record<string, unknown>} Attrs
 *   "text": textContent; "class": className; "dataset": data-* values; "on<event>": a
 *   listener; true: a boolean attribute; null/undefined/false: left out.
 */

/**
 * @param {Element} node
 * @param {Attrs} attrs
 */
function applyAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") node.textContent = String(v);
    else if (k === "class") node.setAttribute("class", String(v));
    else if (k === "dataset" && node instanceof HTMLElement) Object.assign(node.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), /** @type {EventListener} */ (v));
    else node.setAttribute(k, v === true ? "" : String(v));
  }
}

/**
 * @param {Node} node
 * @param {(Child | Child[])[]} children
 */
function append(node, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/**
 * An HTML element: el("a", {href: "/x", class: "y", text: "z"}, child, ...).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  applyAttrs(node, attrs);
  append(node, children);
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * An SVG element (map markers drawn as nodes, not markup).
 * @param {string} tag
 * @param {Attrs} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {SVGElement}
 */
export function svg(tag, attrs = {}, ...children) {
  const node = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  applyAttrs(node, attrs);
  append(node, children);
  return node;
}

/**
 * Remove every child of *node*; returns it.
 * @template {Node} N
 * @param {N} node
 * @returns {N}
 */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

/**
 * An element of the page by id, which the page's template guarantees.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error("#" + id + " is missing from the page");
  return node;
}

/**
 * @param {string} id
 * @param {string} text
 */
export function setText(id, text) {
  byId(id).textContent = text;
}

/**
 * A form's fields as an object, empty ones dropped.
 * @param {HTMLFormElement} form
 * @returns {Record<string, string>}
 */
export function formValues(form) {
  /** @type {Record<string, string>} */
  const out = {};
  new FormData(form).forEach((v, k) => {
    if (v !== "") out[k] = String(v);
  });
  return out;
}

/**
 * Fill a form from the page's query string (shareable, back-button friendly filters).
 * @param {HTMLFormElement} form
 */
export function formFromUrl(form) {
  const params = new URLSearchParams(location.search);
  params.forEach((v, k) => {
    const field = /** @type {HTMLInputElement | null} */ (form.elements.namedItem(k));
    if (field) field.value = v;
  });
  return params;
}
