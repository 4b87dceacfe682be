"""Matrix rows of the enterprise data interface (server/api/enterprise_ingest.py).

The walk authenticates every user with a session's bearer token, and the interface takes an
API key only (a machine's credential, never a browser's session): every column is 401, the
anonymous one included. Which roles' *keys* are accepted — admin and company administrators,
403 for the others, 401 for a deactivated user's key, 403 for a revoked company's — is walked
with real keys in tests/api/test_enterprise_ingest.py (``test_who_may_push``).
"""

from __future__ import annotations

from tests.api.roles import Case

_NO_SESSION = (401, 401, 401, 401, 401, 401, 401, 401, 401)


def _batch(world: object) -> dict[str, object]:
    return {"records": [{"record_id": "walk", "tag": "WALK", "spec": "YSP35.5"}]}


CASES: dict[str, Case] = {
    #                                                        admin reg regJ off coA coB opA insp anon
    "ingest.push_cylinders": Case("POST", "/api/v1/ingest/cylinders", _NO_SESSION, _batch),
    "ingest.push_fills": Case("POST", "/api/v1/ingest/fills", _NO_SESSION, _batch),
    "ingest.pull_cylinders": Case("GET", "/api/v1/ingest/cylinders", _NO_SESSION),
    "ingest.pull_fills": Case("GET", "/api/v1/ingest/fills", _NO_SESSION),
}
