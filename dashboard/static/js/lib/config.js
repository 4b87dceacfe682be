// @ts-check
/* The page's configuration, handed over by the server once per page in
   <script type="application/json" id="page-config"> (server/kernel/pages.py): strings,
   language, CSRF cookie name, tile layer, websocket close codes and backoff, page data.
   A JSON element is data, never executed, so the Content-Security-Policy allows no inline
   script. Every other module reads settings from here, never from literals. */

/** @typedef {{[key: string]: any}} PageConfig */

const node = document.getElementById("page-config");

/** @type {PageConfig} */
export const config = node && node.textContent ? JSON.parse(node.textContent) : {};
