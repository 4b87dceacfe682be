"""Matrix rows of the API keys (server/api/api_keys.py; the create row is test_roles.py's
``auth.api_keys``).

The key revoked is a new one per call, owned by company A's admin: an admin and company A's
admin revoke it, company B's admin and the inspection agency do not see it (404), roles that
hold no keys may not (403).
"""

from __future__ import annotations

import secrets
from typing import Any

from server.kernel.principal import API_KEY_PREFIX, hash_api_key
from tests.api.roles import Case, Maker


async def _key_of_company_a(fresh: Any) -> int:
    key = API_KEY_PREFIX + secrets.token_urlsafe(16)
    return int(
        await fresh.pool.fetchval(
            "INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4)"
            " RETURNING id",
            fresh.world.users["t_company_a"],
            "role walk",
            key[:10],
            hash_api_key(key),
        )
    )


CASES: dict[str, Case] = {
    #                                                        admin reg regJ off coA coB opA insp anon
    "api_keys.list": Case(
        "GET", "/api/v1/auth/api-keys", (200, 403, 403, 403, 200, 200, 403, 200, 401)
    ),
    "api_keys.list_all": Case(
        "GET",
        "/api/v1/auth/api-keys?all=true",
        (200, 403, 403, 403, 200, 200, 403, 200, 401),
        route="/api/v1/auth/api-keys",
    ),
    "api_keys.revoke": Case(
        "DELETE",
        "/api/v1/auth/api-keys/{fresh:api_key}",
        (200, 403, 403, 403, 200, 404, 403, 404, 401),
    ),
}

FRESH: dict[str, Maker] = {"api_key": _key_of_company_a}
