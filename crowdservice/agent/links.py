"""Linking a KB entry or a solved thread: one click posts an official answer pointing to it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.i18n import override
from community.core.models import Forum, Post, Thread, User, Visibility
from crowdservice.agent.actions import public_locale, respond
from crowdservice.models import Escalation
from kb.models import Article

_ARTICLE_PATH = re.compile(r"(?:^|/)kb/articles/(\d+)(?:[/?#]|$)")
_THREAD_PATH = re.compile(r"(?:^|/)t/(\d+)(?:[/?#]|$)")
_TYPED_ID = re.compile(r"^(article|solution|thread):(\d+)$")
_MARKDOWN_SPECIAL = re.compile(r"([\\\[\]*_`<>])")


@dataclass(frozen=True, slots=True)
class LinkTarget:
    kind: str  # "article" or "thread"
    entry_id: int
    title: str
    path: str


def resolve_link(db: Session, escalation: Escalation, url_or_id: str) -> LinkTarget:
    """What "link this answer" points to: a live article of the brand, or another visible thread
    of the brand. Accepts a URL or path (/kb/articles/7, /t/42) or a typed id (article:7,
    thread:42, solution:42 as the similar-entries list gives them)."""
    kind, entry_id = _parse_link(url_or_id)
    brand_id = escalation.brand_id
    if kind == "article":
        article = db.get(Article, entry_id)
        if article is None or article.brand_id != brand_id or not article.is_live:
            raise NotFound()
        return LinkTarget("article", article.id, article.title, f"/kb/articles/{article.id}")
    target = db.scalar(
        select(Thread)
        .join(Forum, Forum.id == Thread.forum_id)
        .where(
            Thread.id == entry_id,
            Forum.brand_id == brand_id,
            Thread.visibility == Visibility.VISIBLE,
        )
    )
    if target is None or target.id == escalation.thread_id:
        raise NotFound()
    return LinkTarget("thread", target.id, target.title, f"/t/{target.id}")


def _parse_link(url_or_id: str) -> tuple[str, int]:
    raw = url_or_id.strip()[:500]
    typed = _TYPED_ID.match(raw)
    if typed:
        return ("article" if typed.group(1) == "article" else "thread"), int(typed.group(2))
    for kind, pattern in (("article", _ARTICLE_PATH), ("thread", _THREAD_PATH)):
        found = pattern.search(raw)
        if found:
            return kind, int(found.group(1))
    raise FormErrors({"link": _("Paste the link of a knowledge-base article or a solved thread.")})


def link_answer(db: Session, agent: User, escalation: Escalation, url_or_id: str) -> Post:
    """One click: an official answer pointing to a KB article or a solved thread."""
    target = resolve_link(db, escalation, url_or_id)
    thread = escalation.thread
    with override(public_locale(thread)):
        intro = _("This may answer your question:")
    title = _MARKDOWN_SPECIAL.sub(r"\\\1", target.title)
    return respond(db, agent, escalation, f"{intro} [{title}]({target.path})")
