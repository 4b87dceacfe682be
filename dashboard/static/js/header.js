// @ts-check
/* The header's inbox (every page of base.html with a user): the count of unread messages
   (the ✉ link to /messages) and of notices awaiting the user's signature (the ✎ link to
   /notices, shown when there are some), kept live.

   - The counts come from GET /api/v1/messages/unread-count, then from the websocket's `inbox`
     channel (docs/WEBSOCKET.md): its snapshot carries them after every (re)connect, and each
     live row (a new message or notice, something read or signed, here or on another screen)
     makes this script read them again — rows go to many users and carry no counts.
   - One socket per page: loaded after the page's own script, it subscribes on the socket the
     page opened (the live map) and opens one only where the page has none.
   - Every row is also handed to the page as a `cw:inbox` event on document (detail: the rows),
     so /messages and /notices refresh their lists without a socket of their own.
   - Failures stay quiet (a background count is not worth an error toast), and no 401 here
     ever sends the user to the login page: the page's own requests do that. */
import { api } from "./lib/api.js";
import { t } from "./lib/i18n.js";
import { LiveSocket, pageSockets } from "./lib/ws.js";

const messagesLink = document.querySelector('[data-testid="inbox-count"]');
const noticesLink = document.querySelector('[data-testid="notices-count"]');

/**
 * @param {Element | null} link
 * @param {number} n
 * @param {string} key the tooltip's string
 * @param {boolean} hideWhenZero
 */
function show(link, n, key, hideWhenZero) {
  if (!(link instanceof HTMLElement)) return;
  const badge = link.querySelector(".inbox-badge");
  link.dataset.count = String(n);
  if (badge instanceof HTMLElement) {
    badge.textContent = n > 99 ? "99+" : String(n);
    badge.hidden = n === 0;
  }
  const label = t(key) + (n ? " (" + n + ")" : "");
  link.title = label;
  link.setAttribute("aria-label", label);
  if (hideWhenZero) link.hidden = n === 0;
}

/** @param {{messages?: number, notices?: number}} counts */
function showCounts(counts) {
  show(messagesLink, Number(counts.messages) || 0, "inbox.messages", false);
  show(noticesLink, Number(counts.notices) || 0, "inbox.notices", true);
}

let asking = /** @type {Promise<void> | null} */ (null);
let again = false;

/** Read the counts (one request at a time; a burst of rows makes at most one more). */
function refresh() {
  if (asking) {
    again = true;
    return asking;
  }
  asking = api("/api/v1/messages/unread-count", { noRedirect: true })
    .then(showCounts, () => { /* quiet: the next row or reconnect tries again */ })
    .finally(() => {
      asking = null;
      if (again) {
        again = false;
        refresh();
      }
    });
  return asking;
}

if (messagesLink) {
  refresh();
  let live = pageSockets[0];
  if (!live) {
    live = new LiveSocket();
    live.start();
  }
  live.subscribe("inbox", {}, (rows, msg) => {
    if (msg.snapshot) {
      const counts = rows.find((r) => r && r.kind === "counts");
      if (counts) showCounts(counts);
      return;
    }
    refresh();
    document.dispatchEvent(new CustomEvent("cw:inbox", { detail: rows }));
  });
}
