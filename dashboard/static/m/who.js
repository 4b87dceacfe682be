// @ts-check
/* Who is using the phone app (set by m.js once /api/v1/auth/me answers) and what the role
   may read: the page config's `reads` (dashboard/mobile.py, from server.kernel.scope), so the
   app never asks for a list the server would refuse (an inspection agency reads no alerts
   and no fills). */
import { config } from "/static/js/lib/config.js";

/** @type {{user: {role: string} | null}} */
export const who = { user: null };

/** @param {string} entity "alerts" or "fills" */
export function mayRead(entity) {
  return !!who.user && ((config.reads || {})[who.user.role] || []).includes(entity);
}
