"""Admins manage a brand's saved replies: write, change, archive and bring back. Every change
is checked field by field (FormErrors naming the field; nothing changes) and audited."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import FormErrors, NotFound
from community.core.i18n import SUPPORTED_LOCALES
from community.core.i18n import gettext as _
from community.core.models import Brand, User
from community.core.policy import can_manage_saved_replies, ensure_can_manage_saved_replies
from crowdservice.saved_replies.models import SavedReply, SuggestedAction
from crowdservice.saved_replies.placeholders import PLACEHOLDERS, unknown_placeholders
from kb.models import Article

MAX_TITLE = 120
MAX_BODY = 30_000
# An article by number, by path or by link ("7", "/kb/articles/7", "https://.../kb/articles/7").
_ARTICLE_REF = re.compile(r"^(?:\d{1,18}|(?:\S*)/kb/articles/(\d{1,18})/?)$")


@dataclass(frozen=True, slots=True)
class ReplyFields:
    """What an admin sends for a saved reply (from the form or the API), not yet checked."""

    title: str
    locale: str
    body: str
    action: str = SuggestedAction.ANSWER.value
    kb_article_id: int | None = None


def parse_article_ref(text: str) -> int | None:
    """The article number typed in the form (a number, a path or a link); None when empty."""
    raw = text.strip()
    if not raw:
        return None
    found = _ARTICLE_REF.match(raw[:500])
    if found is None:
        raise FormErrors(
            {"kb_article_id": _("Give the number or the link of a knowledge-base article.")}
        )
    return int(found.group(1) or raw)


def _field_errors(db: Session, brand: Brand, fields: ReplyFields) -> dict[str, str]:
    errors: dict[str, str] = {}
    title = fields.title.strip()
    if not 1 <= len(title) <= MAX_TITLE:
        errors["title"] = _("Give the reply a title of 1 to 120 characters.")
    if not fields.body.strip() or len(fields.body) > MAX_BODY:
        errors["body"] = _("Write the reply (at most 30,000 characters).")
    else:
        unknown = unknown_placeholders(fields.body)
        if unknown:
            errors["body"] = _(
                "Unknown placeholders: %(names)s. The placeholders are %(known)s."
            ) % {
                "names": ", ".join(f"{{{name}}}" for name in unknown),
                "known": ", ".join(f"{{{name}}}" for name in PLACEHOLDERS),
            }
    if fields.locale not in SUPPORTED_LOCALES:
        errors["locale"] = _("Choose the language the reply is written in.")
    if fields.action not in {action.value for action in SuggestedAction}:
        errors["action"] = _("Choose what the reply suggests doing.")
    if fields.kb_article_id is not None:
        wanted = fields.kb_article_id
        article = db.get(Article, wanted) if 0 < wanted < 2**63 else None
        if article is None or article.brand_id != brand.id or not article.is_live:
            errors["kb_article_id"] = _(
                "Choose a published knowledge-base article of this brand, or leave it empty."
            )
    return errors


def _duplicate_title(
    db: Session, brand: Brand, title: str, locale: str, own_id: int | None
) -> bool:
    query = select(SavedReply.id).where(
        SavedReply.brand_id == brand.id,
        SavedReply.locale == locale,
        func.lower(SavedReply.title) == title.lower(),
    )
    if own_id is not None:
        query = query.where(SavedReply.id != own_id)
    return db.scalar(query.limit(1)) is not None


def _duplicate_error() -> FormErrors:
    return FormErrors(
        {"title": _("A saved reply with this title already exists in this language.")}
    )


def _checked(db: Session, brand: Brand, fields: ReplyFields, own_id: int | None) -> dict[str, Any]:
    """The values to store, or FormErrors naming every field that is wrong."""
    errors = _field_errors(db, brand, fields)
    title = fields.title.strip()
    checkable = "title" not in errors and "locale" not in errors
    if checkable and _duplicate_title(db, brand, title, fields.locale, own_id):
        errors["title"] = _duplicate_error().errors["title"]
    if errors:
        raise FormErrors(errors)
    return {
        "title": title,
        "locale": fields.locale,
        "body": fields.body.strip(),
        "action": SuggestedAction(fields.action),
        "kb_article_id": fields.kb_article_id,
    }


def described(reply: SavedReply) -> dict[str, Any]:
    """What the audit log keeps of a saved reply (the body is long and in the row itself)."""
    return {
        "title": reply.title,
        "locale": reply.locale,
        "action": reply.action.value,
        "kb_article_id": reply.kb_article_id,
        "archived": reply.archived_at is not None,
    }


def _audit(
    db: Session, admin: User, action: str, reply: SavedReply, before: dict[str, Any] | None,
    ip: str | None,
) -> None:  # fmt: skip
    record_audit(
        db, actor=admin, action=action, target_type="saved_reply", target_id=reply.id,
        before=before, after=described(reply), ip=ip,
    )  # fmt: skip


def _flush_unique(db: Session, reply: SavedReply) -> None:
    """Flush in a savepoint: two admins saving the same title at once get a FormErrors, not a
    500, and the caller's transaction stays usable."""
    try:
        with db.begin_nested():
            db.add(reply)
            db.flush()
    except IntegrityError as exc:
        raise _duplicate_error() from exc


def create_reply(
    db: Session, admin: User, brand: Brand, fields: ReplyFields, *, ip: str | None = None
) -> SavedReply:
    ensure_can_manage_saved_replies(admin, brand.id)
    values = _checked(db, brand, fields, None)
    now = utcnow()
    reply = SavedReply(
        brand_id=brand.id, created_by_id=admin.id, created_at=now, updated_at=now, usage_count=0,
        **values,
    )  # fmt: skip
    _flush_unique(db, reply)
    _audit(db, admin, "saved_reply.created", reply, None, ip)
    return reply


def update_reply(
    db: Session, admin: User, reply: SavedReply, fields: ReplyFields, *, ip: str | None = None
) -> SavedReply:
    ensure_can_manage_saved_replies(admin, reply.brand_id)
    brand = db.get(Brand, reply.brand_id)
    assert brand is not None  # the foreign key cascades: a reply never outlives its brand
    values = _checked(db, brand, fields, reply.id)
    before = described(reply)
    for name, value in values.items():
        setattr(reply, name, value)
    reply.updated_at = utcnow()
    _flush_unique(db, reply)
    _audit(db, admin, "saved_reply.updated", reply, before, ip)
    return reply


def set_archived(
    db: Session, admin: User, reply: SavedReply, archived: bool, *, ip: str | None = None
) -> SavedReply:
    """Archive (no longer offered to agents, kept with its usage) or bring back a reply."""
    ensure_can_manage_saved_replies(admin, reply.brand_id)
    if (reply.archived_at is not None) == archived:
        return reply  # already so: nothing to change or to audit
    before = described(reply)
    now = utcnow()
    reply.archived_at = now if archived else None
    reply.updated_at = now
    db.flush()
    action = "saved_reply.archived" if archived else "saved_reply.unarchived"
    _audit(db, admin, action, reply, before, ip)
    return reply


def access_managed_reply(
    db: Session, admin: User, reply_id: int, brand: Brand | None = None
) -> SavedReply:
    """The reply, for an admin (of `brand`, when given: another brand's id is a 404)."""
    ensure_can_manage_saved_replies(admin, None)
    reply = db.get(SavedReply, reply_id) if 0 < reply_id < 2**63 else None
    if reply is None or (brand is not None and reply.brand_id != brand.id):
        raise NotFound()
    if not can_manage_saved_replies(admin, reply.brand_id):
        raise NotFound()
    return reply


def brand_replies(db: Session, admin: User, brand: Brand, *, archived: bool) -> list[SavedReply]:
    """The brand's replies for the admin list: current ones, or the archived ones."""
    ensure_can_manage_saved_replies(admin, brand.id)
    state = SavedReply.archived_at.is_not(None) if archived else SavedReply.archived_at.is_(None)
    return list(
        db.scalars(
            select(SavedReply)
            .where(SavedReply.brand_id == brand.id, state)
            .order_by(SavedReply.locale, SavedReply.usage_count.desc(), SavedReply.title)
        )
    )
