"""The audit trail: one append-only row for every moderator, agent, admin and automatic action."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from community.models import User
from moderation.models import AuditLog


def record_audit(
    db: Session,
    *,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
    ip: str | None = None,
) -> AuditLog:
    """Add one audit row to the caller's transaction (it commits or rolls back with the action)."""
    entry = AuditLog(
        actor_id=actor.id if actor else None,
        actor_role=actor.role.value if actor else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        before=before,
        after=after,
        reason=reason,
        ip=ip,
    )
    db.add(entry)
    db.flush()
    return entry
