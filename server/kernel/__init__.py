"""The server kernel: what every package of the platform may use (docs/ARCHITECTURE.md).

- `settings`   — the settings and their types (config/default.toml, CYL_* variables)
- `principal`  — who is asking: sessions, tokens, API keys, CSRF, roles required
- `kiosk_tokens` — the walls' kiosk tokens: issue, verify, expire, revoke
- `appkeys`    — the typed `web.AppKey`s of shared application state
- `http`       — JSON responses, request parsing, query parameters, paging
- `errors`     — the one error shape and its codes
- `scope`      — role scope as SQL (who may see which rows)
- `events`     — the live-event type and the bus protocol
- `services`   — "a service is down" errors with the command that starts it
- `audit`      — the append-only audit log of every write by a person
- `passwords`  — argon2 hashing
- `districts`  — the city's district polygons and point-in-district lookup
- `i18n`       — the language of a request and string tables (every page surface)
- `tiles`      — the base map's tile provider, from the `[map]` settings
- `pages`      — what every HTML page shares: vendored asset URLs, page config, CSP
- `live_codes` — the `/ws` close codes (realtime sends them, the pages act on them)

The kernel imports the domain (`server.domain`) and nothing else of the platform; the
import-linter contracts in pyproject.toml hold it to that.
"""
