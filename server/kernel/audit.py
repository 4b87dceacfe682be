"""The append-only audit log: every write by a person is recorded (docs/ARCHITECTURE.md §7).

The table rejects UPDATE and DELETE by trigger; this module is the one way rows get in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from server.kernel.principal import Principal

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def audit(
    db: Executor,
    principal: Principal | None,
    action: str,
    entity: str,
    entity_id: Any = None,
    details: dict[str, Any] | None = None,
    remote: str | None = None,
) -> None:
    await db.execute(
        """INSERT INTO audit_log (user_id, username, role, action, entity, entity_id, details, remote)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        principal.user_id if principal else None,
        principal.username if principal else None,
        principal.role if principal else None,
        action,
        entity,
        None if entity_id is None else str(entity_id),
        details or {},
        remote,
    )
