"""The audit log in words: each action's translated name and its before/after as a list of
changed fields (old → new), instead of the stored codes and JSON; and which rows to show (the
moderators' page and the JSON API share one filter)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core import readable
from community.core import service as community_service
from community.core.audit import AuditLog
from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.labels import LABELS, N_, label
from community.core.models import User

ACTIONS = {
    "post.shown": N_("Post shown"),
    "post.hidden": N_("Post hidden"),
    "post.deleted": N_("Post deleted"),
    "post.pending": N_("Post held for review"),
    "post.held": N_("Post held by a filter"),
    "post.auto_hidden": N_("Post hidden by flags"),
    "post.edited": N_("Post edited"),
    "thread.closed": N_("Thread closed"),
    "thread.reopened": N_("Thread reopened"),
    "thread.locked": N_("Thread locked"),
    "thread.unlocked": N_("Thread unlocked"),
    "thread.merged": N_("Thread merged"),
    "thread.moved": N_("Thread moved"),
    "thread.deleted": N_("Thread deleted"),
    "thread.retagged": N_("Tags changed"),
    "thread.duplicate_dismissed": N_("Possible duplicate dismissed"),
    "user.role_changed": N_("Role changed"),
    "user.warned": N_("Member warned"),
    "user.suspended": N_("Account suspended"),
    "user.unsuspended": N_("Suspension lifted"),
    "user.suspension_ended": N_("Suspension ended"),
    "user.silenced": N_("Set to read-only"),
    "user.unsilenced": N_("Read-only lifted"),
    "trust.promoted": N_("Trust level earned"),
    "trust.set": N_("Trust level set"),
    "filter.added": N_("Blocked word added"),
    "filter.enforce": N_("Blocked word holds posts"),
    "filter.log_only": N_("Blocked word logs only"),
    "filter.delete": N_("Blocked word removed"),
    "brand.moderation_settings": N_("Moderation settings changed"),
    "brand.trust_thresholds": N_("Trust thresholds changed"),
    "brand.search_settings": N_("Search settings changed"),
    "brand.search_model": N_("Semantic search model changed"),
    "brand.holdout": N_("Deflection holdout changed"),
    "brand.created": N_("Brand created"),
    "brand.updated": N_("Brand settings changed"),
    "brand.archived": N_("Brand archived"),
    "brand.unarchived": N_("Brand brought back"),
    "brand.look": N_("Brand look or address changed"),
    "brand.logo": N_("Brand logo changed"),
    "brand.favicon": N_("Brand favicon changed"),
    "forum.created": N_("Forum created"),
    "forum.updated": N_("Forum changed"),
    "forum.reordered": N_("Forums reordered"),
    "forum.archived": N_("Forum archived"),
    "forum.unarchived": N_("Forum brought back"),
    "staff.granted": N_("Staff role given"),
    "staff.revoked": N_("Staff role taken back"),
    "kb.article_created": N_("Article created"),
    "kb.article_status": N_("Article status changed"),
    "kb.article_verified": N_("Article verified"),
    "kb.article_obsolete": N_("Article marked as needing review"),
    "escalation.created": N_("Escalated to the support team"),
    "escalation.claimed": N_("Escalation claimed"),
    "escalation.released": N_("Escalation released"),
    "escalation.reassigned": N_("Escalation reassigned"),
    "escalation.answered": N_("Answered by the support team"),
    "escalation.waiting": N_("Details asked of the customer"),
    "escalation.handed_off": N_("Handed to the helpdesk"),
    "escalation.returned": N_("Returned to the community"),
    "escalation.resolved": N_("Escalation resolved"),
    "escalation.ticket_updated": N_("Helpdesk ticket updated"),
    "triage.corrected": N_("Triage corrected"),
    "service_policy.saved": N_("Service policy saved"),
    "webhook.created": N_("Webhook added"),
    "webhook.updated": N_("Webhook changed"),
    "webhook.deleted": N_("Webhook removed"),
    "webhook.secret_rotated": N_("Webhook secret replaced"),
    "webhook.redelivered": N_("Webhook delivery sent again"),
}

TARGETS = {
    "post": N_("Post"),
    "thread": N_("Thread"),
    "user": N_("Member"),
    "article": N_("Article"),
    "brand": N_("Brand"),
    "forum": N_("Forum"),
    "escalation": N_("Escalation"),
    "webhook": N_("Webhook"),
}

FIELDS = {
    "visibility": N_("Visibility"),
    "status": N_("Status"),
    "reason": N_("Reason"),
    "duplicate_of": N_("Duplicate of"),
    "not_duplicate_of": N_("Not a duplicate of"),
    "forum": N_("Forum"),
    "into": N_("Merged into"),
    "posts": N_("Posts"),
    "suspended_until": N_("Suspended until"),
    "silenced_until": N_("Read-only until"),
    "posts_hidden": N_("Posts hidden"),
    "posts_restored": N_("Posts restored"),
    "trust_level": N_("Trust level"),
    "role": N_("Role"),
    "tags": N_("Tags"),
    "assigned_agent_id": N_("Agent"),
    "flag_hide_weight": N_("Flag weight that hides a post"),
    "pattern": N_("Word or pattern"),
    "regex": N_("Regular expression"),
    "mode": N_("Mode"),
    "synonyms": N_("Synonyms"),
    "solution_threshold": N_("Community solution threshold"),
    "search_model": N_("Semantic search model"),
    "search_model_options": N_("Embedding service"),
    "authorization": N_("Authorization header"),
    "targets": N_("SLA targets"),
    "business_hours": N_("Business hours"),
    "triage_rules": N_("Priority rules"),
    "expert_delay_factor": N_("Experts invited after"),
    "expert_daily_invitations": N_("Invitations per expert a day"),
    "ticket_ref": N_("Helpdesk ticket"),
    "ticket_status": N_("Ticket status"),
    "ticket_url": N_("Ticket address"),
    "secret_prefix": N_("Secret"),
    "url": N_("Address"),
    "events": N_("Events"),
    "active": N_("Active"),
    "message_id": N_("Message"),
    "thread_id": N_("Thread"),
    "resolution": N_("Outcome"),
    "priority": N_("Priority"),
    "interaction_type": N_("Type"),
    "sentiment": N_("Sentiment"),
    "sentiment_score": N_("Sentiment score"),
    "author_segment": N_("Segment"),
    "needs_response": N_("Needs a response"),
    "name": N_("Name"),
    "slug": N_("Address"),
    "description": N_("Description"),
    "default_locale": N_("Language"),
    "code_of_conduct": N_("Code of conduct"),
    "contact_email": N_("Contact e-mail"),
    "article_threshold": N_("Article threshold"),
    "review_period_days": N_("Review period (days)"),
    "access": N_("Who may read"),
    "moderation_policy": N_("Moderation"),
    "order": N_("Order"),
    "archived": N_("Archived"),
    "brand": N_("Brand"),
    "theme": N_("Colours"),
    "footer_links": N_("Footer links"),
    "host": N_("Host name"),
    "logo_key": N_("Logo"),
    "favicon_key": N_("Favicon"),
}


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Entry:
    row: AuditLog
    action: str
    target: str
    actor_role: str
    changes: list[Change]
    reason: str


def action_label(action: str) -> str:
    known = ACTIONS.get(action)
    return _(known) if known else action


# Fields that hold the id of a thread, shown as "#12".
_THREAD_IDS = {"thread_id", "into", "duplicate_of", "not_duplicate_of"}


def _value(row: AuditLog, key: str, value: Any, users: Mapping[int, User]) -> str:
    if key == "assigned_agent_id" and isinstance(value, int):
        person = users.get(value)
        return f"@{person.username}" if person else f"#{value}"
    if key in _THREAD_IDS and isinstance(value, int):
        return f"#{value}"
    if key == "reason" and isinstance(value, str) and row.target_type == "escalation":
        return label(f"escreason:{value}")
    if key == "status" and isinstance(value, str) and row.target_type == "escalation":
        return label(f"esc:{value}")
    if key in ("status", "to") and isinstance(value, str) and row.target_type == "article":
        return label(f"article:{value}")
    if key == "mode" and isinstance(value, str):
        return label(f"filter:{value}")
    return readable.value_text(value, FIELDS)


def changes(row: AuditLog, users: Mapping[int, User] | None = None) -> list[Change]:
    """Each field the action touched, with its value before and after ("–" for none)."""
    before: Mapping[str, Any] = row.before or {}
    after: Mapping[str, Any] = row.after or {}
    people = users or {}
    found: list[Change] = []
    for key in dict.fromkeys([*before, *after]):
        old = _value(row, key, before[key], people) if key in before else readable.EMPTY
        new = _value(row, key, after[key], people) if key in after else readable.EMPTY
        if old == new == readable.EMPTY:
            continue  # nothing on either side: nothing to tell
        found.append(Change(field=readable.key_label(key, FIELDS), old=old, new=new))
    return found


def user_ids(rows: list[AuditLog]) -> set[int]:
    """People a change names by id (an escalation's agent), to look up once for the page."""
    found: set[int] = set()
    for row in rows:
        for side in (row.before or {}, row.after or {}):
            agent = side.get("assigned_agent_id")
            if isinstance(agent, int):
                found.add(agent)
    return found


def describe(row: AuditLog, users: Mapping[int, User] | None = None) -> Entry:
    target = TARGETS.get(row.target_type)
    return Entry(
        row=row,
        action=action_label(row.action),
        target=_(target) if target else row.target_type,
        actor_role=label(row.actor_role) if row.actor_role else "",
        changes=changes(row, users),
        reason=_reason(row),
    )


def _reason(row: AuditLog) -> str:
    """The reason as written, or in words where the system wrote a code (an escalation's)."""
    if row.reason and row.target_type == "escalation":
        return (
            label(f"escreason:{row.reason}") if f"escreason:{row.reason}" in LABELS else row.reason
        )
    return row.reason or ""


# --- which rows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit rows to list, newest first. Empty fields do not filter."""

    action: str = ""  # the start of the action code: "thread." lists every thread action
    target_type: str = ""
    target_id: str = ""
    actor: str = ""  # a username; one nobody has matches no row
    since: datetime | None = None
    before: int | None = None  # rows with a smaller id: the next page
    limit: int = 50

    @classmethod
    def from_query(
        cls,
        *,
        action: str,
        target_type: str,
        target_id: str,
        actor: str,
        since: str,
        before: int | None,
        limit: int,
    ) -> AuditFilter:
        """The page's query string: over-long values are cut to the column sizes (a pasted
        code still finds its rows) and `since` is a date, read as UTC when it names no zone."""
        start: datetime | None = None
        if since:
            try:
                start = datetime.fromisoformat(since[:40])
            except ValueError as exc:
                raise FormErrors({"since": _("Use a date like 2026-11-25.")}) from exc
            start = start if start.tzinfo else start.replace(tzinfo=UTC)
        return cls(
            action=action[:60],
            target_type=target_type[:30],
            target_id=target_id[:40],
            actor=actor,
            since=start,
            before=before,
            limit=limit,
        )


def audit_entries(db: Session, wanted: AuditFilter) -> list[AuditLog]:
    statement = select(AuditLog).order_by(AuditLog.id.desc()).limit(wanted.limit)
    if wanted.action:
        statement = statement.where(AuditLog.action.startswith(wanted.action))
    if wanted.target_type:
        statement = statement.where(AuditLog.target_type == wanted.target_type)
    if wanted.target_id:
        statement = statement.where(AuditLog.target_id == wanted.target_id)
    if wanted.actor:
        try:
            actor = community_service.get_user_by_username(db, wanted.actor)
        except NotFound:
            return []
        statement = statement.where(AuditLog.actor_id == actor.id)
    if wanted.since is not None:
        statement = statement.where(AuditLog.created_at >= wanted.since)
    # 0 is no page: ids start at 1.
    if wanted.before:
        statement = statement.where(AuditLog.id < wanted.before)
    return list(db.scalars(statement))


def people_named(db: Session, rows: list[AuditLog]) -> dict[int, User]:
    """Everyone the rows name (who acted, and the agents a change names), by id."""
    named = {row.actor_id for row in rows if row.actor_id} | user_ids(rows)
    return {person.id: person for person in db.scalars(select(User).where(User.id.in_(named)))}


def history_of(db: Session, member: User, *, limit: int = 30) -> list[AuditLog]:
    """What was done to a member's account, newest first."""
    return list(
        db.scalars(
            select(AuditLog)
            .where(AuditLog.target_type == "user", AuditLog.target_id == str(member.id))
            .order_by(AuditLog.id.desc())
            .limit(limit)
        )
    )
