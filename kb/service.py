"""Curated KB articles: drafting from a thread's best answers, versions, the publishing workflow
and the curators' queues. Agents and admins curate; everyone reads what is published. Readers'
feedback and the freshness review are in `kb.article_feedback`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, selectinload

from community.core import indexing, language
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import FormErrors, NotFound
from community.core.forum_access import readable_forums_clause
from community.core.i18n import gettext as _
from community.core.markdown import render_markdown
from community.core.models import Brand, Forum, Post, Thread, User, Visibility
from community.core.policy import Reader, can_curate, ensure_brand_shown, ensure_curator
from community.threads import clean_body, clean_tags, clean_title
from kb import pii
from kb.models import (
    Article,
    ArticleCredit,
    ArticleStatus,
    ArticleVersion,
    CandidateStatus,
    PromotionCandidate,
    Solution,
)
from kb.schemas import ArticleCreateIn, ArticleIn

TRANSITIONS = {
    ArticleStatus.DRAFT: {ArticleStatus.IN_REVIEW, ArticleStatus.PUBLISHED, ArticleStatus.ARCHIVED},
    ArticleStatus.IN_REVIEW: {ArticleStatus.DRAFT, ArticleStatus.PUBLISHED, ArticleStatus.ARCHIVED},
    ArticleStatus.PUBLISHED: {ArticleStatus.DRAFT, ArticleStatus.ARCHIVED},
    ArticleStatus.ARCHIVED: {ArticleStatus.DRAFT},
}
SUMMARY_MAX = 500
BODY_MAX = 50_000


def next_statuses(status: str) -> list[str]:
    """Where an article in `status` may go next (for the curator's buttons)."""
    current = ArticleStatus(status)
    order = list(ArticleStatus)
    return [target.value for target in order if target in TRANSITIONS[current]]


# --- drafting ----------------------------------------------------------------------------------


@dataclass
class Draft:
    title: str
    summary: str
    body: str
    tags: list[str]
    locale: str
    forum_id: int | None
    source_thread_id: int | None
    credited: list[Post] = field(default_factory=list)


def draft_from_thread(db: Session, thread: Thread, answer_ids: list[int] | None = None) -> Draft:
    """An editor pre-filled with the question and the chosen (else the best) answers."""
    posts = list(
        db.scalars(
            select(Post)
            .where(Post.thread_id == thread.id, Post.visibility == Visibility.VISIBLE)
            .options(selectinload(Post.author))
            .order_by(Post.id)
        )
    )
    question = next((post for post in posts if post.is_question), None)
    answers = [post for post in posts if not post.is_question]
    if answer_ids:
        chosen = [post for post in answers if post.id in set(answer_ids)]
    else:
        ranked = sorted(
            answers, key=lambda post: (post.id != thread.accepted_post_id, -post.score, post.id)
        )
        chosen = [post for post in ranked if post.id == thread.accepted_post_id or post.score > 0]
        chosen = chosen[:3] or ranked[:1]
    sections = []
    if question is not None:
        sections.append(f"## {_('The question')}\n\n{question.body_source}")
    for post in chosen:
        sections.append(f"## {_('Solution')}\n\n{post.body_source}")
    summary = " ".join(question.body_source.split())[:200] if question else ""
    return Draft(
        title=thread.title,
        summary=summary,
        body="\n\n".join(sections),
        tags=[tag.name for tag in thread.tags],
        locale=thread.locale,
        forum_id=thread.forum_id,
        source_thread_id=thread.id,
        credited=chosen,
    )


def personal_data(db: Session, text: str, thread: Thread | None) -> list[pii.Finding]:
    names: list[str] = []
    if thread is not None:
        authors = db.scalars(
            select(User)
            .join(Post, Post.author_id == User.id)
            .where(Post.thread_id == thread.id)
            .distinct()
        )
        for author in authors:
            names += [author.username, author.display_name]
            first = author.display_name.split()[0] if author.display_name.split() else ""
            if first[:1].isupper() and first.isalpha():
                names.append(first)  # people sign with their first name
    return pii.find_personal_data(text, names)


def _clean(data: ArticleIn) -> tuple[str, str, str, list[str]]:
    errors: dict[str, str] = {}
    title = body = ""
    tags: list[str] = []
    try:
        title = clean_title(data.title)
    except FormErrors as exc:
        errors.update(exc.errors)
    try:
        body = clean_body(data.body)
        if len(body) > BODY_MAX:
            errors["body"] = _("Articles are at most %(max)d characters long.") % {"max": BODY_MAX}
    except FormErrors as exc:
        errors.update(exc.errors)
    try:
        tags = clean_tags(data.tags)
    except FormErrors as exc:
        errors.update(exc.errors)
    summary = " ".join(data.summary.split())[:SUMMARY_MAX]
    if errors:
        raise FormErrors(errors)
    return title, summary, body, tags


def _version(article: Article, number: int, editor: User, note: str | None) -> ArticleVersion:
    return ArticleVersion(
        article_id=article.id,
        number=number,
        editor_id=editor.id,
        title=article.title,
        summary=article.summary,
        body_source=article.body_source,
        tags=article.tags,
        status=article.status,
        note=note,
    )


def create_article(db: Session, agent: User, brand: Brand, data: ArticleCreateIn) -> Article:
    ensure_curator(agent, brand.id)
    title, summary, body, tags = _clean(data)
    thread = db.get(Thread, data.source_thread_id) if data.source_thread_id else None
    if data.source_thread_id and (thread is None or thread.forum.brand_id != brand.id):
        raise NotFound()
    forum_id = data.forum_id if _forum_in_brand(db, brand, data.forum_id) else None
    html = render_markdown(body)
    now = utcnow()
    article = Article(
        brand_id=brand.id,
        forum_id=forum_id or (thread.forum_id if thread else None),
        source_thread_id=thread.id if thread else None,
        source_reply_count=thread.reply_count if thread else 0,
        title=title,
        summary=summary,
        body_source=body,
        body_html=html,
        tags=" ".join(tags),
        locale=data.locale or _detected_locale(title, summary, html, brand.default_locale),
        status=ArticleStatus.DRAFT,
        owner_id=agent.id,
        created_at=now,
        updated_at=now,
    )
    db.add(article)
    db.flush()
    if thread is not None:
        credited = db.scalars(
            select(Post).where(
                Post.id.in_(data.credited_post_ids),
                Post.thread_id == thread.id,
                Post.is_question.is_(False),
            )
        )
        for post in credited:
            db.add(ArticleCredit(article_id=article.id, user_id=post.author_id, post_id=post.id))
        candidate = db.scalar(
            select(PromotionCandidate).where(PromotionCandidate.thread_id == thread.id)
        )
        if candidate is not None and candidate.status == CandidateStatus.SUGGESTED:
            candidate.status = CandidateStatus.PROMOTED
            candidate.article_id = article.id
    db.add(_version(article, 1, agent, data.note))
    record_audit(
        db, actor=agent, action="kb.article_created", target_type="article", target_id=article.id
    )
    db.flush()
    return article


def _detected_locale(title: str, summary: str, body_html: str, fallback: str) -> str:
    return language.detect_post_language(f"{title}\n{summary}", body_html, fallback=fallback)


def _forum_in_brand(db: Session, brand: Brand, forum_id: int | None) -> bool:
    if forum_id is None:
        return False
    forum = db.get(Forum, forum_id)
    return forum is not None and forum.brand_id == brand.id


def update_article(db: Session, agent: User, article: Article, data: ArticleIn) -> Article:
    """Every save is a new version."""
    ensure_curator(agent, article.brand_id)
    title, summary, body, tags = _clean(data)
    article.title, article.summary, article.body_source = title, summary, body
    article.body_html = render_markdown(body)
    article.tags = " ".join(tags)
    article.locale = data.locale or _detected_locale(
        title, summary, article.body_html, article.locale
    )
    if _forum_in_brand(db, article.brand, data.forum_id):
        article.forum_id = data.forum_id
    article.updated_at = utcnow()
    number = (
        db.scalar(
            select(func.max(ArticleVersion.number)).where(ArticleVersion.article_id == article.id)
        )
        or 0
    )
    db.add(_version(article, number + 1, agent, data.note))
    indexing.article_changed(db, article.id)
    db.flush()
    return article


def change_status(db: Session, agent: User, article: Article, status: ArticleStatus) -> Article:
    ensure_curator(agent, article.brand_id)
    if status == article.status:
        return article
    if status not in TRANSITIONS[article.status]:
        raise FormErrors({"status": _("That change of status is not possible.")})
    before = article.status
    article.status = status
    now = utcnow()
    if status == ArticleStatus.PUBLISHED:
        article.published_at = article.published_at or now
        article.last_verified_at = now
        article.obsolete = False
        article.owner_id = article.owner_id or agent.id
    article.updated_at = now
    number = (
        db.scalar(
            select(func.max(ArticleVersion.number)).where(ArticleVersion.article_id == article.id)
        )
        or 0
    )
    db.add(_version(article, number + 1, agent, f"{before.value} → {status.value}"))
    record_audit(
        db,
        actor=agent,
        action="kb.article_status",
        target_type="article",
        target_id=article.id,
        before={"status": before.value},
        after={"status": status.value},
    )
    indexing.article_changed(db, article.id)
    if article.source_thread_id is not None:
        indexing.thread_changed(db, article.source_thread_id)  # its solution may step aside
    db.flush()
    return article


def verify(db: Session, agent: User, article: Article) -> Article:
    """An agent confirms the article is still right: it leaves the needs-review list."""
    ensure_curator(agent, article.brand_id)
    article.last_verified_at = utcnow()
    article.owner_id = article.owner_id or agent.id
    if article.source_thread is not None:
        article.source_reply_count = article.source_thread.reply_count
    record_audit(
        db, actor=agent, action="kb.article_verified", target_type="article", target_id=article.id
    )
    return article


def mark_obsolete(db: Session, agent: User, article: Article) -> Article:
    ensure_curator(agent, article.brand_id)
    article.obsolete = True
    if article.status == ArticleStatus.PUBLISHED:
        article.status = ArticleStatus.ARCHIVED
    article.updated_at = utcnow()
    record_audit(
        db, actor=agent, action="kb.article_obsolete", target_type="article", target_id=article.id
    )
    indexing.article_changed(db, article.id)
    if article.source_thread_id is not None:
        indexing.thread_changed(db, article.source_thread_id)
    db.flush()
    return article


# --- reading -----------------------------------------------------------------------------------


def access_article(db: Session, user: User | None, article_id: int) -> Article:
    article = db.scalar(
        select(Article)
        .where(Article.id == article_id)
        .options(
            selectinload(Article.brand),
            selectinload(Article.credits).selectinload(ArticleCredit.user),
            selectinload(Article.source_thread),
            selectinload(Article.owner),
        )
    )
    if article is None:
        raise NotFound()
    ensure_brand_shown(article.brand, user)  # an archived brand's articles are gone
    if not article.is_live and not can_curate(user, article.brand_id):
        raise NotFound()
    return article


def access_curated_article(db: Session, agent: User, article_id: int) -> Article:
    """An article its brand's curators work on (the editor, its versions); another brand's
    curators are refused as anyone else is."""
    article = access_article(db, agent, article_id)
    ensure_curator(agent, article.brand_id)
    return article


def versions(db: Session, article: Article) -> list[ArticleVersion]:
    return list(
        db.scalars(
            select(ArticleVersion)
            .where(ArticleVersion.article_id == article.id)
            .options(selectinload(ArticleVersion.editor))
            .order_by(ArticleVersion.number)
        )
    )


@dataclass(frozen=True)
class ArticleLink:
    id: int
    title: str


def _live_article(column: Any) -> Any:
    return (
        select(column)
        .where(
            Article.source_thread_id == Thread.id,
            Article.status == ArticleStatus.PUBLISHED,
            Article.obsolete.is_(False),
        )
        .order_by(Article.id.desc())
        .limit(1)
        .correlate(Thread)
        .scalar_subquery()
    )


# What the thread page shows of the KB, as columns of the thread's own statement
# (community.threads.access_thread_with): the live article promoted from the thread, and
# whether the thread is a live community solution. Read them back with kb_status_of.
THREAD_KB_COLUMNS = (
    _live_article(Article.id),
    _live_article(Article.title),
    exists()
    .where(Solution.thread_id == Thread.id, Solution.withdrawn_at.is_(None))
    .correlate(Thread),
)


def kb_status_of(values: Sequence[Any]) -> tuple[ArticleLink | None, bool]:
    """THREAD_KB_COLUMNS' values (in that order) as thread_kb_status returns them."""
    article_id, title, live_solution = values
    return (ArticleLink(article_id, title) if article_id is not None else None), bool(live_solution)


def thread_kb_status(db: Session, thread_id: int) -> tuple[ArticleLink | None, bool]:
    """What the thread page shows of the KB, in one statement: the live article promoted from
    the thread (its link only: the bodies are the largest columns an article has), and whether
    the thread is a live community solution."""
    live_solution = exists().where(Solution.thread_id == Thread.id, Solution.withdrawn_at.is_(None))
    row = db.execute(
        select(Article.id, Article.title, live_solution)
        .select_from(Thread)
        .outerjoin(
            Article,
            and_(
                Article.source_thread_id == Thread.id,
                Article.status == ArticleStatus.PUBLISHED,
                Article.obsolete.is_(False),
            ),
        )
        .where(Thread.id == thread_id)
        .order_by(Article.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None, False
    article = ArticleLink(row[0], row[1]) if row[0] is not None else None
    return article, bool(row[2])


def published(db: Session, brand: Brand, *, limit: int = 10) -> list[Article]:
    return list(
        db.scalars(
            select(Article)
            .where(
                Article.brand_id == brand.id,
                Article.status == ArticleStatus.PUBLISHED,
                Article.obsolete.is_(False),
            )
            .order_by(Article.helpful_yes.desc(), Article.published_at.desc())
            .limit(limit)
        )
    )


def recent_solutions(
    db: Session, brand: Brand, *, limit: int = 10, reader: Reader | None = None
) -> list[Thread]:
    """The newest community solutions, of forums `reader` (None: a visitor) may read."""
    return list(
        db.scalars(
            select(Thread)
            .join(Solution, Solution.thread_id == Thread.id)
            .join(Forum, Forum.id == Thread.forum_id)
            .where(
                Solution.brand_id == brand.id,
                Solution.withdrawn_at.is_(None),
                Thread.visibility == Visibility.VISIBLE,
                readable_forums_clause(reader, brand.id),
            )
            .order_by(Solution.promoted_at.desc())
            .limit(limit)
        )
    )


def candidates(db: Session, brand: Brand) -> list[PromotionCandidate]:
    """Suggestions whose thread is public (one hidden, held or merged meanwhile waits out of
    sight: agents would otherwise draft articles from content members cannot see)."""
    return list(
        db.scalars(
            select(PromotionCandidate)
            .join(Thread, Thread.id == PromotionCandidate.thread_id)
            .where(
                PromotionCandidate.brand_id == brand.id,
                PromotionCandidate.status == CandidateStatus.SUGGESTED,
                Thread.visibility == Visibility.VISIBLE,
                Thread.merged_into_id.is_(None),
            )
            .options(selectinload(PromotionCandidate.thread))
            .order_by(PromotionCandidate.score.desc())
        )
    )


def dismiss_candidate(db: Session, agent: User, candidate_id: int) -> PromotionCandidate:
    ensure_curator(agent, None)
    candidate = db.get(PromotionCandidate, candidate_id)
    if candidate is None or not can_curate(agent, candidate.brand_id):
        raise NotFound()
    candidate.status = CandidateStatus.DISMISSED
    candidate.updated_at = utcnow()
    return candidate


def drafts(db: Session, brand: Brand) -> list[Article]:
    return list(
        db.scalars(
            select(Article)
            .where(
                Article.brand_id == brand.id,
                Article.status.in_([ArticleStatus.DRAFT, ArticleStatus.IN_REVIEW]),
            )
            .order_by(Article.updated_at.desc())
        )
    )
