"""What goes into the search indexes: plain text from sanitized HTML, one field per language
(title_en / title_es ...) so Meilisearch's localized attributes tokenize each correctly."""

from __future__ import annotations

import html
import re
from typing import Any

import nh3

from community.core.models import ForumAccess, Post, Thread, Visibility
from kb.models import Article, Solution

BODY_LIMIT = 20_000
_SPACES = re.compile(r"\s+")


def plain_text(markup: str, limit: int = BODY_LIMIT) -> str:
    text = html.unescape(nh3.clean(markup, tags=set()))
    return _SPACES.sub(" ", text).strip()[:limit]


def _lang(locale: str) -> str:
    return "es" if locale == "es" else "en"


def _access(thread: Thread) -> dict[str, Any]:
    """Who may find a thread (kb.search_access): its forum's access level, and whether its brand
    is archived. Changing either indexes the documents again (community.core.indexing)."""
    return {
        "access": thread.forum.access.value,
        "brand_archived": thread.forum.brand.archived_at is not None,
    }


def thread_document(thread: Thread, posts: list[Post]) -> dict[str, Any]:
    lang = _lang(thread.locale)
    question = next((post for post in posts if post.is_question), None)
    answers = sorted(
        (p for p in posts if not p.is_question and p.visibility == Visibility.VISIBLE),
        key=lambda post: (post.id != thread.accepted_post_id, -post.score, post.id),
    )
    answer_text = " ".join(plain_text(post.body_html, 4000) for post in answers[:5])
    return {
        "id": str(thread.id),
        "thread_id": thread.id,
        "brand": thread.forum.brand.slug,
        "forum": thread.forum.slug,
        "forum_name": thread.forum.name,
        **_access(thread),
        f"title_{lang}": thread.title,
        f"question_{lang}": plain_text(question.body_html) if question else "",
        f"answers_{lang}": answer_text[:BODY_LIMIT],
        "tags": [tag.name for tag in thread.tags],
        "kind": thread.kind.value,
        "status": thread.status.value,
        "solved": thread.accepted_post_id is not None,
        "locale": thread.locale,
        "usefulness": thread.usefulness,
        "score": thread.score,
        "reply_count": thread.reply_count,
        # A thread closed as a duplicate stands for its original in the suggestions.
        "duplicate_of": thread.duplicate_of_id,
        "created_at": int(thread.created_at.timestamp()),
        "last_activity_at": int(thread.last_activity_at.timestamp()),
        "url": f"/t/{thread.id}",
    }


def solution_document(solution: Solution, posts: list[Post]) -> dict[str, Any]:
    thread = solution.thread
    lang = _lang(thread.locale)
    question = next((post for post in posts if post.is_question), None)
    accepted = next((post for post in posts if post.id == thread.accepted_post_id), None)
    question_text = plain_text(question.body_html) if question else ""
    answer_text = plain_text(accepted.body_html) if accepted else ""
    return {
        "id": f"solution-{thread.id}",
        "type": "solution",
        "entry_id": thread.id,
        "brand": thread.forum.brand.slug,
        "forum": thread.forum.slug,
        **_access(thread),
        f"title_{lang}": thread.title,
        f"summary_{lang}": question_text[:300],
        f"body_{lang}": f"{question_text} {answer_text}"[:BODY_LIMIT],
        "tags": [tag.name for tag in thread.tags],
        "locale": thread.locale,
        "usefulness": thread.usefulness,
        "author": accepted.author.display_name if accepted and accepted.author else None,
        "updated_at": int(thread.last_activity_at.timestamp()),
        "url": f"/t/{thread.id}",
    }


def article_document(article: Article) -> dict[str, Any]:
    lang = _lang(article.locale)
    helpful_total = article.helpful_yes + article.helpful_no
    ratio = article.helpful_yes / helpful_total if helpful_total else 0.5
    return {
        "id": f"article-{article.id}",
        "type": "article",
        "entry_id": article.id,
        "brand": article.brand.slug,
        "forum": article.forum.slug if article.forum else None,
        # A published article is everyone's (kb.service.access_article), whatever its forum.
        "access": ForumAccess.PUBLIC.value,
        "brand_archived": article.brand.archived_at is not None,
        f"title_{lang}": article.title,
        f"summary_{lang}": article.summary,
        f"body_{lang}": plain_text(article.body_html),
        "tags": article.tag_list,
        "locale": article.locale,
        # Curated articles rank above raw solutions of similar relevance.
        "usefulness": round(60 + 40 * ratio, 3),
        "updated_at": int(article.updated_at.timestamp()),
        "url": f"/kb/articles/{article.id}",
    }
