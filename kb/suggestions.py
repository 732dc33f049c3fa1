"""Suggestions while asking: answers that may already exist for the question being typed, from
the KB and the community, ranked together by one federated search (keywords and, with a model,
meaning); a database query when Meilisearch is down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.forum_access import readable_forums_clause
from community.core.models import Brand, Forum, Post, Thread, ThreadStatus, Visibility
from kb.documents import plain_text
from kb.models import Article, ArticleStatus
from kb.search import SearchEngine, SearchUnavailable
from kb.search_access import Reader, SearchAccess, search_access
from kb.search_queries import Semantic, lexical_queries
from kb.service_search import (
    QUERY_MAX,
    Hit,
    database_kb_hits,
    database_thread_hits,
    marked,
    search_words,
    semantic_for,
)

# Every visible thread with an answer may hold the answer, solved or not; a thread closed as a
# duplicate comes back too, to be replaced by its original. Closed threads are never suggested.
SUGGESTABLE_THREADS = '(reply_count > 0 AND status != "closed") OR duplicate_of > 0'
# Candidates fetched before duplicates are replaced and repeats dropped: more than are shown.
SUGGEST_CANDIDATES = 20
# A KB entry or a solved thread outranks an answered thread that matches exactly as well, not
# one that matches better. Measured on the dumps' duplicates (half the originals answered but
# not solved), every multiplicative boost cost originals in the first five: 1.02 one pair, 1.05
# three (README, "Measuring relevance on real data"). The `boost` parameter stays for the
# evaluation's variants.
SUGGEST_BOOST = 1.0
# How a typed question becomes queries (kb.search_queries.lexical_queries). With a model: the whole
# title, hybrid (keywords and meaning; the meaning finds what a rare or misspelled word would
# hide). Without one: the whole title and the title without each of its words in turn, so one
# rare or misspelled word cannot hide every other match.
SUGGEST_RULE = "frequency"
SUGGEST_LEXICAL_RULE = "drop-one-weighted"
# The share of the semantic ranking in the hybrid query (Meilisearch's semanticRatio).
# Chosen with make eval-relevance on the duplicate pairs of the three dumps (README,
# "Measuring relevance on real data"): 0.7 found the original first most often (MRR 0.57 against
# 0.48 at 0.5, for one pair less in the first five).
SUGGEST_SEMANTIC_RATIO = 0.7
# Shorter titles are not searched (too little to go on); the ask session starts at this length.
SUGGEST_MIN_CHARS = 4


def typed_title(title: str) -> str:
    """The title as searched: spaces collapsed, cut to the longest query."""
    return " ".join(title.split())[:QUERY_MAX]


@dataclass(frozen=True)
class _Candidate:
    kind: str  # "article", "solution" (a thread in the KB) or "thread"
    entry_id: int  # the article's id, or the thread's
    score: float


def suggest(
    db: Session,
    engine: SearchEngine,
    brand: Brand,
    title: str,
    *,
    locale: str,
    limit: int = 5,
    boost: float = SUGGEST_BOOST,
    rule: str | None = None,
    semantic_ratio: float = SUGGEST_SEMANTIC_RATIO,
    model: str | None = None,
    reader: Reader | None = None,
) -> tuple[list[Hit], bool]:
    """Answers that may already exist for a question being typed: KB entries and every visible
    thread with an answer, interleaved by relevance (keywords and, when the brand has a model
    that runs, meaning), KB entries and solved threads boosted; a thread closed as a duplicate
    stands for its original. Only what `reader` (None: a visitor) may read, as in search
    (kb.search_access). (hits, degraded)."""
    text = typed_title(title)
    access = search_access(db, brand, reader)
    if len(text) < SUGGEST_MIN_CHARS or access.nothing:
        return [], False
    try:
        semantic = semantic_for(engine, brand, text, locale, semantic_ratio, model=model)
        if rule is None:
            rule = SUGGEST_RULE if semantic is not None else SUGGEST_LEXICAL_RULE
        candidates = _suggest_from_meili(engine, brand, text, locale, boost, rule, semantic, access)
        degraded = False
    except SearchUnavailable:
        candidates = _suggest_from_database(db, brand, text, reader)
        degraded = True
    return _suggestion_hits(db, brand, candidates, limit, reader), degraded


def _suggest_from_meili(
    engine: SearchEngine,
    brand: Brand,
    text: str,
    locale: str,
    boost: float,
    rule: str,
    semantic: Semantic | None,
    access: SearchAccess,
) -> list[_Candidate]:
    """One federated search over both indexes: Meilisearch merges the hybrid and keyword
    queries' hits by ranking score (weighted); KB entries and solved threads win ties."""
    threads_uid, kb_uid = engine.threads_index(brand.slug), engine.kb_index(brand.slug)
    hits = engine.federated(
        lexical_queries(
            threads_uid,
            text,
            filters=(SUGGESTABLE_THREADS, *access.filters()),
            rule=rule,
            semantic=semantic,
        )
        + lexical_queries(
            kb_uid, text, filters=tuple(access.filters(kb=True)), rule=rule, semantic=semantic
        ),
        limit=SUGGEST_CANDIDATES,
        locale=locale,
        attributes=["type", "entry_id", "thread_id", "solved", "duplicate_of"],
    )
    return ranked_candidates(hits, boost)


def ranked_candidates(hits: list[dict[str, Any]], boost: float) -> list[_Candidate]:
    """Federated hits by score, KB entries and solved threads multiplied by `boost` and first
    among equals, then in Meilisearch's order."""
    candidates = []
    preferred: set[tuple[str, int]] = set()
    for hit in hits:
        score = float((hit.get("_federation") or {}).get("weightedRankingScore", 0.0))
        kind, entry_id = _candidate_key(hit)
        if kind != "thread" or (hit.get("solved") and not hit.get("duplicate_of")):
            score *= boost
            preferred.add((kind, entry_id))
        candidates.append(_Candidate(kind, entry_id, score))
    candidates.sort(key=lambda c: (-c.score, (c.kind, c.entry_id) not in preferred))
    return candidates


def _candidate_key(hit: dict[str, Any]) -> tuple[str, int]:
    """What a hit stands for: a KB entry, or a thread (a duplicate's original)."""
    if hit.get("thread_id") is None:
        return str(hit.get("type")), int(hit.get("entry_id") or 0)
    if hit.get("duplicate_of"):
        return "thread", int(hit["duplicate_of"])
    return "thread", int(hit["thread_id"])


def _suggest_from_database(
    db: Session, brand: Brand, text: str, reader: Reader | None
) -> list[_Candidate]:
    words = search_words(text)
    found = database_kb_hits(db, brand, words, {}, reader) + database_thread_hits(
        db, brand, words, {}, reader
    )
    return [_Candidate(hit.kind, hit.entry_id, 0.0) for hit in found[:SUGGEST_CANDIDATES]]


def _suggestion_hits(
    db: Session, brand: Brand, candidates: list[_Candidate], limit: int, reader: Reader | None
) -> list[Hit]:
    """The candidates as hits, in order, checked against the database (visible, not closed,
    answered, in a forum the reader may read; an original the index did not vouch for is
    checked here), each thread once."""
    threads = _suggestable_threads(
        db, brand, {c.entry_id for c in candidates if c.kind != "article"}, reader
    )
    articles = _published_articles(
        db, brand, {c.entry_id for c in candidates if c.kind == "article"}
    )
    # A thread found both in the KB (as a community solution) and in the threads index is one
    # suggestion: the KB entry, wherever either ranked.
    in_kb = {c.entry_id for c in candidates if c.kind == "solution"}
    hits: list[Hit] = []
    seen: set[str] = set()
    for found in candidates:
        candidate = (
            _Candidate("solution", found.entry_id, found.score)
            if found.kind == "thread" and found.entry_id in in_kb
            else found
        )
        hit = _suggestion_hit(candidate, threads, articles)
        if hit is None or hit.url in seen:
            continue
        seen.add(hit.url)
        hits.append(hit)
        if len(hits) == limit:
            break
    _add_question_snippets(db, hits)
    return hits


def _suggestable_threads(
    db: Session, brand: Brand, thread_ids: set[int], reader: Reader | None
) -> dict[int, Thread]:
    return {
        thread.id: thread
        for thread in db.scalars(
            select(Thread)
            .join(Forum, Forum.id == Thread.forum_id)
            .where(
                Thread.id.in_(thread_ids),
                Forum.brand_id == brand.id,
                readable_forums_clause(reader, brand.id),
                Thread.visibility == Visibility.VISIBLE,
                Thread.merged_into_id.is_(None),
                Thread.status != ThreadStatus.CLOSED,
                Thread.reply_count > 0,
            )
        )
    }


def _published_articles(db: Session, brand: Brand, article_ids: set[int]) -> dict[int, Article]:
    return {
        article.id: article
        for article in db.scalars(
            select(Article).where(
                Article.id.in_(article_ids),
                Article.brand_id == brand.id,
                Article.status == ArticleStatus.PUBLISHED,
                Article.obsolete.is_(False),
            )
        )
    }


def _add_question_snippets(db: Session, hits: list[Hit]) -> None:
    """A thread's snippet is the start of its question, loaded for the shown hits only."""
    questions = {
        post.thread_id: post
        for post in db.scalars(
            select(Post).where(
                Post.thread_id.in_([hit.entry_id for hit in hits if hit.kind != "article"]),
                Post.is_question.is_(True),
            )
        )
    }
    for hit in hits:
        if hit.kind != "article" and hit.entry_id in questions:
            hit.snippet = marked(plain_text(questions[hit.entry_id].body_html, 240))


def _suggestion_hit(
    candidate: _Candidate, threads: dict[int, Thread], articles: dict[int, Article]
) -> Hit | None:
    if candidate.kind == "article":
        article = articles.get(candidate.entry_id)
        if article is None:
            return None
        return Hit(
            kind="article",
            entry_id=article.id,
            title=article.title,
            url=f"/kb/articles/{article.id}",
            snippet=marked(article.summary),
            title_html=marked(article.title),
            locale=article.locale,
            state="article",
        )
    thread = threads.get(candidate.entry_id)
    if thread is None:
        return None
    solved = thread.accepted_post_id is not None
    return Hit(
        kind="solution" if candidate.kind == "solution" and solved else "thread",
        entry_id=thread.id,
        title=thread.title,
        url=f"/t/{thread.id}",
        snippet=Markup(""),
        title_html=marked(thread.title),
        status=thread.status.value,
        locale=thread.locale,
        state="solved" if solved else "answered",
    )
