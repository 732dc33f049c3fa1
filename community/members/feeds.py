"""Atom feeds (RFC 4287) of a forum's and a tag's latest threads.

A feed is public content only, whoever asks: feed readers fetch without a session, and one
document for everyone can be cached anywhere. So: visible threads (never held, hidden, deleted
or merged ones), in public forums (never a restricted one, even for its staff), of brands that
are not archived. An archived forum's threads stay readable, as on its pages.

Each entry is a thread: its title, its page, the asker's display name, when it was asked and
last active, its tags, and the question's text (the sanitized HTML reduced to plain text and
shortened: a summary, not the post). Links are absolute, from BASE_URL. The ETag is a hash of
what the document shows, so an unchanged feed answers 304 to If-None-Match.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import lxml.html
from lxml import etree
from lxml.etree import ParserError
from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload, selectinload

from community.core.errors import NotFound
from community.core.models import (
    Brand,
    Forum,
    ForumAccess,
    Post,
    Tag,
    Thread,
    Visibility,
    thread_tags,
)

ATOM_NS = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml"
ENTRIES = 30
SUMMARY_CHARS = 400
GENERATOR = "Support community"
# Characters XML 1.0 cannot hold (C0 controls but tab and line breaks, lone surrogates,
# U+FFFE/U+FFFF): dropped, since a title or post may hold anything a browser sent.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Feed:
    """A feed to write: what it is about and its threads, newest first."""

    title: str
    brand_name: str
    page_path: str  # the forum's or tag's page on this site
    brand_host: str | None  # the brand's own host name, where its links point when it has one
    feed_path: str
    language: str
    threads: list[Thread]
    summaries: dict[int, str]  # thread id -> the question's text, shortened
    updated: datetime

    @property
    def etag(self) -> str:
        parts = [self.feed_path, self.title, self.updated.isoformat()] + [
            f"{thread.id}:{thread.last_activity_at.isoformat()}:{thread.title}:"
            f"{self.summaries.get(thread.id, '')}"
            for thread in self.threads
        ]
        return '"' + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32] + '"'


def tag_path(brand_slug: str, name: str) -> str:
    return f"/b/{quote(brand_slug, safe='')}/tags/{quote(name, safe='')}"


def _public_threads() -> Select[Thread]:
    return (
        select(Thread)
        .join(Forum, Forum.id == Thread.forum_id)
        .join(Brand, Brand.id == Forum.brand_id)
        .where(
            Thread.visibility == Visibility.VISIBLE,
            Thread.merged_into_id.is_(None),
            Forum.access == ForumAccess.PUBLIC,
            Brand.archived_at.is_(None),
        )
        .order_by(Thread.created_at.desc(), Thread.id.desc())
        .limit(ENTRIES)
        .options(joinedload(Thread.author), selectinload(Thread.tags))
    )


def public_forum(db: Session, brand_slug: str, forum_slug: str) -> Forum:
    """A forum whose feed exists: public, of a brand that is not archived (else 404)."""
    forum = db.scalar(
        select(Forum)
        .join(Brand, Brand.id == Forum.brand_id)
        .where(
            Brand.slug == brand_slug,
            Forum.slug == forum_slug,
            Forum.access == ForumAccess.PUBLIC,
            Brand.archived_at.is_(None),
        )
        .options(joinedload(Forum.brand))
    )
    if forum is None:
        raise NotFound()
    return forum


def public_tag(db: Session, brand_slug: str, name: str) -> tuple[Brand, Tag]:
    row = db.execute(
        select(Brand, Tag)
        .join(Tag, Tag.brand_id == Brand.id)
        .where(Brand.slug == brand_slug, Brand.archived_at.is_(None), Tag.name == name.lower())
    ).first()
    if row is None:
        raise NotFound()
    return row[0], row[1]


def forum_threads(db: Session, forum: Forum) -> list[Thread]:
    return list(db.scalars(_public_threads().where(Thread.forum_id == forum.id)))


def tag_threads(db: Session, tag: Tag) -> list[Thread]:
    tagged = select(thread_tags.c.thread_id).where(thread_tags.c.tag_id == tag.id)
    return list(db.scalars(_public_threads().where(Thread.id.in_(tagged))))


def summary_text(html: str, limit: int = SUMMARY_CHARS) -> str:
    """The text of sanitized post HTML, whitespace collapsed, cut at a word near `limit`."""
    try:
        text = lxml.html.fragment_fromstring(html, create_parent="div").text_content()
    except (ParserError, ValueError):
        text = ""
    text = " ".join(_NOT_XML.sub("", text).split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut + "…"


def summaries(db: Session, threads: list[Thread]) -> dict[int, str]:
    """Each thread's question, as summary text: one statement for all of them."""
    if not threads:
        return {}
    rows = db.execute(
        select(Post.thread_id, Post.body_html).where(
            Post.thread_id.in_([thread.id for thread in threads]),
            Post.is_question.is_(True),
            Post.visibility == Visibility.VISIBLE,
        )
    ).all()
    return {thread_id: summary_text(html or "") for thread_id, html in rows}


def _updated(threads: list[Thread], fallback: datetime) -> datetime:
    return max((thread.last_activity_at for thread in threads), default=fallback)


def forum_feed(db: Session, brand_slug: str, forum_slug: str) -> Feed:
    forum = public_forum(db, brand_slug, forum_slug)
    threads = forum_threads(db, forum)
    brand = forum.brand
    return Feed(
        title=f"{forum.name} · {brand.name}",
        brand_name=brand.name,
        brand_host=brand.host,
        page_path=f"/b/{quote(brand.slug, safe='')}/{quote(forum.slug, safe='')}",
        feed_path=f"/b/{quote(brand.slug, safe='')}/{quote(forum.slug, safe='')}/feed.atom",
        language=brand.default_locale,
        threads=threads,
        summaries=summaries(db, threads),
        updated=_updated(threads, forum.created_at),
    )


def tag_feed(db: Session, brand_slug: str, name: str) -> Feed:
    brand, tag = public_tag(db, brand_slug, name)
    threads = tag_threads(db, tag)
    path = tag_path(brand.slug, tag.name)
    return Feed(
        title=f"{tag.name} · {brand.name}",
        brand_name=brand.name,
        brand_host=brand.host,
        page_path=path,
        feed_path=f"{path}/feed.atom",
        language=brand.default_locale,
        threads=threads,
        summaries=summaries(db, threads),
        updated=_updated(threads, brand.created_at),
    )


# --- writing ---------------------------------------------------------------------------------


def _text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes in some paths; every stored time is UTC.
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)


def _stamp(value: datetime) -> str:
    return _utc(value).isoformat().replace("+00:00", "Z")


def http_date(value: datetime) -> str:
    """For Last-Modified (RFC 9110's IMF-fixdate)."""
    return _utc(value).strftime("%a, %d %b %Y %H:%M:%S GMT")


def _add(parent: etree._Element, tag: str, text: str | None = None, **attributes: str) -> None:
    element = etree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attributes)
    if text is not None:
        element.text = _text(text)


def _entry(feed_element: etree._Element, base_url: str, thread: Thread, summary: str) -> None:
    entry = etree.SubElement(feed_element, f"{{{ATOM_NS}}}entry")
    link = f"{base_url}/t/{thread.id}"
    _add(entry, "id", link)
    _add(entry, "title", thread.title)
    _add(entry, "link", rel="alternate", type="text/html", href=link)
    _add(entry, "published", _stamp(thread.created_at))
    _add(entry, "updated", _stamp(thread.last_activity_at))
    if thread.author is not None:
        author = etree.SubElement(entry, f"{{{ATOM_NS}}}author")
        _add(author, "name", thread.author.display_name)
    for tag in thread.tags:
        _add(entry, "category", term=_text(tag.name))
    if summary:
        _add(entry, "summary", summary, type="text")


def render(feed: Feed, base_url: str) -> bytes:
    """The Atom document, UTF-8 with its XML declaration."""
    base = base_url.rstrip("/")
    root = etree.Element(f"{{{ATOM_NS}}}feed", nsmap={None: ATOM_NS})
    root.set("{http://www.w3.org/XML/1998/namespace}lang", feed.language)
    _add(root, "id", base + feed.feed_path)
    _add(root, "title", feed.title)
    _add(root, "updated", _stamp(feed.updated))
    _add(root, "link", rel="self", type=MEDIA_TYPE, href=base + feed.feed_path)
    _add(root, "link", rel="alternate", type="text/html", href=base + feed.page_path)
    _add(root, "generator", GENERATOR)
    # Entries by former members have no author of their own: the feed's stands for them.
    author = etree.SubElement(root, f"{{{ATOM_NS}}}author")
    _add(author, "name", feed.brand_name)
    for thread in feed.threads:
        _entry(root, base, thread, feed.summaries.get(thread.id, ""))
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
