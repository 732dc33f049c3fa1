"""Agents use the saved replies: finding one from the answer box, filling its placeholders for
the thread at hand, and counting a use when the answer it went into is sent."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.errors import NotFound
from community.core.i18n import gettext as _
from community.core.i18n import override
from community.core.models import Brand, Thread, User
from community.core.policy import can_use_saved_replies, ensure_can_use_saved_replies
from crowdservice.saved_replies.models import SavedReply
from crowdservice.saved_replies.placeholders import fill, plain_markdown
from kb.models import Article

SEARCH_LIMIT = 20
# A brand keeps tens of saved replies, not thousands: they are filtered in Python, so the
# match ignores case and accents the same way on SQLite and PostgreSQL.
MAX_SCANNED = 2000
MAX_QUERY = 200


def folded(text: str) -> str:
    """`text` without case or accents: "Número" and "numero" match."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def search(
    db: Session, agent: User, brand: Brand, query: str, locale: str, *, limit: int = SEARCH_LIMIT
) -> list[SavedReply]:
    """The brand's current replies whose title or body has every word of `query`: those in
    `locale` (the thread's language) first, then the most used. An empty query lists the most
    used."""
    ensure_can_use_saved_replies(agent, brand.id)
    words = folded(query[:MAX_QUERY]).split()
    rows = db.scalars(
        select(SavedReply)
        .where(SavedReply.brand_id == brand.id, SavedReply.archived_at.is_(None))
        .order_by(SavedReply.usage_count.desc(), SavedReply.id)
        .limit(MAX_SCANNED)
    )
    found = [
        reply
        for reply in rows
        if all(word in folded(f"{reply.title}\n{reply.body}") for word in words)
    ]
    found.sort(key=lambda reply: (reply.locale != locale, -reply.usage_count, reply.title))
    return found[:limit]


def usable_reply(db: Session, agent: User, brand_id: int, reply_id: int) -> SavedReply:
    """A reply an agent may insert: of this brand and not archived; otherwise a 404."""
    ensure_can_use_saved_replies(agent, brand_id)
    reply = db.get(SavedReply, reply_id) if 0 < reply_id < 2**63 else None
    if reply is None or reply.brand_id != brand_id or reply.archived_at is not None:
        raise NotFound()
    return reply


@dataclass(frozen=True, slots=True)
class FilledReply:
    """A saved reply with its placeholders filled for one thread, ready to edit and send."""

    reply: SavedReply
    body: str


def kb_link(db: Session, reply: SavedReply, brand: Brand, similar_path: str | None) -> str:
    """Where `{kb_link}` points: the reply's own article while it is live, else the KB entry
    most like the thread, else the brand's knowledge-base home."""
    return pinned_article_path(db, reply) or similar_path or f"/b/{brand.slug}/kb"


def pinned_article_path(db: Session, reply: SavedReply) -> str | None:
    """The path of the reply's own article, while it is live and of the reply's brand."""
    if reply.kb_article_id is None:
        return None
    article = db.get(Article, reply.kb_article_id)
    if article is None or article.brand_id != reply.brand_id or not article.is_live:
        return None
    return f"/kb/articles/{article.id}"


def fill_reply(
    db: Session, agent: User, thread: Thread, reply: SavedReply, *, similar_path: str | None
) -> FilledReply:
    """The reply's body for `thread` (its forum and brand loaded): names and titles as plain
    text (never Markdown links or HTML), the KB link as a site path."""
    ensure_can_use_saved_replies(agent, thread.brand_id)
    brand = thread.forum.brand
    author = thread.author
    if author is None or author.deactivated_at is not None:
        with override(reply.locale):
            author_name = _("customer")  # the author's account is gone: a neutral word
    else:
        author_name = plain_markdown(author.display_name)
    values = {
        "author_name": author_name,
        "thread_title": plain_markdown(thread.title),
        "kb_link": kb_link(db, reply, brand, similar_path),
        "agent_name": plain_markdown(agent.display_name),
    }
    return FilledReply(reply=reply, body=fill(reply.body, values))


def count_use(db: Session, agent: User, brand_id: int, raw_id: str) -> bool:
    """Count one use of the reply the sent answer started from (the hidden `saved_reply`
    field). One conditional UPDATE, so two agents sending at once both count; a reply of
    another brand, an archived one or a made-up id counts nothing. True when counted."""
    text = raw_id.strip()
    if (
        not can_use_saved_replies(agent, brand_id)
        or not (text.isascii() and text.isdigit())
        or len(text) > 18
    ):
        return False
    result = db.execute(
        update(SavedReply)
        .where(
            SavedReply.id == int(text),
            SavedReply.brand_id == brand_id,
            SavedReply.archived_at.is_(None),
        )
        .values(usage_count=SavedReply.usage_count + 1, last_used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)
