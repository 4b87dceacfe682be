"""Close codes of the ``/ws`` websocket (docs/WEBSOCKET.md "Close codes").

They are the one part of the websocket protocol a page must act on before any frame is
read (a socket closed as *unauthorized* means "get a session first", *try again later*
means "reconnect with backoff"), so the pages hand them to their scripts in the page
config. They live in the kernel because the pages may not import ``realtime``
(docs/ARCHITECTURE.md, the import-linter contracts); ``realtime.protocol`` re-exports them.
"""

from __future__ import annotations

from typing import Final

CLOSE_UNAUTHORIZED: Final = 4401
"""Anonymous connection: an ``unauthorized`` error frame is sent first."""
CLOSE_TRY_AGAIN_LATER: Final = 1013
"""RFC 6455 "try again later": the client could not keep up (its queue overflowed)."""
CLOSE_CODES: Final = (CLOSE_UNAUTHORIZED, CLOSE_TRY_AGAIN_LATER)


def close_codes_for_pages() -> dict[str, int]:
    """The close codes by name, as the page scripts' ``ws.js`` reads them."""
    return {"unauthorized": CLOSE_UNAUTHORIZED, "try_again_later": CLOSE_TRY_AGAIN_LATER}
