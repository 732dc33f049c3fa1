"""Readers' feedback on KB articles, and the freshness review it feeds: the published articles
that are old, losing readers' approval, or whose source thread has new answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from community.core.clock import utcnow
from community.core.errors import NotFound
from community.core.i18n import gettext as _
from community.core.models import Brand, User
from kb.models import Article, ArticleFeedback, ArticleStatus

# An article is losing approval when fewer than half of at least five recent votes found it
# helpful.
FALLING_RATIO = 0.5
FALLING_MIN_VOTES = 5


def record_feedback(
    db: Session,
    article: Article,
    *,
    user: User | None,
    visitor_key: str,
    helpful: bool,
    comment: str | None,
) -> ArticleFeedback:
    """One answer per person (or anonymous visitor) per article per day; changing it moves the
    counts rather than adding to them."""
    if not article.is_live:
        raise NotFound()
    today: date = utcnow().date()
    key = f"user:{user.id}" if user else visitor_key
    key = key[:32]
    existing = db.scalar(
        select(ArticleFeedback).where(
            ArticleFeedback.article_id == article.id,
            ArticleFeedback.visitor_key == key,
            ArticleFeedback.day == today,
        )
    )
    text = (comment or "").strip()[:1000] or None
    if existing is not None:
        if existing.helpful != helpful:
            _count(article, existing.helpful, -1)
            _count(article, helpful, +1)
            existing.helpful = helpful
        existing.comment = text or existing.comment
        return existing
    feedback = ArticleFeedback(
        article_id=article.id,
        user_id=user.id if user else None,
        visitor_key=key,
        day=today,
        helpful=helpful,
        comment=text,
    )
    try:
        with db.begin_nested():
            db.add(feedback)
    except IntegrityError:  # the same visitor twice at once: the first answer stands
        return feedback
    _count(article, helpful, +1)
    return feedback


def _count(article: Article, helpful: bool, delta: int) -> None:
    if helpful:
        article.helpful_yes = Article.helpful_yes + delta
    else:
        article.helpful_no = Article.helpful_no + delta


@dataclass
class ReviewItem:
    article: Article
    reasons: list[str]


def needs_review(db: Session, brand: Brand) -> list[ReviewItem]:
    """Published articles that are old, losing readers' approval, or whose thread moved on."""
    now = utcnow()
    stale_before = now - timedelta(days=brand.review_period_days)
    recent_since = now - timedelta(days=30)
    items: list[ReviewItem] = []
    live = db.scalars(
        select(Article)
        .where(
            Article.brand_id == brand.id,
            Article.status == ArticleStatus.PUBLISHED,
            Article.obsolete.is_(False),
        )
        .options(selectinload(Article.source_thread))
    )
    for article in live:
        reasons = []
        if article.last_verified_at is None or article.last_verified_at < stale_before:
            reasons.append(_("not verified for %(days)d days") % {"days": brand.review_period_days})
        yes, no = _recent_feedback(db, article.id, recent_since)
        if yes + no >= FALLING_MIN_VOTES and yes / (yes + no) < FALLING_RATIO:
            reasons.append(
                _("only %(percent)d%% found it helpful lately")
                % {"percent": 100 * yes // (yes + no)}
            )
        source = article.source_thread
        if source is not None and source.reply_count > article.source_reply_count:
            reasons.append(_("the source thread has new answers"))
        if reasons:
            items.append(ReviewItem(article=article, reasons=reasons))
    return items


def _recent_feedback(db: Session, article_id: int, since: object) -> tuple[int, int]:
    rows = db.execute(
        select(ArticleFeedback.helpful, func.count())
        .where(ArticleFeedback.article_id == article_id, ArticleFeedback.created_at >= since)
        .group_by(ArticleFeedback.helpful)
    ).all()
    counts = {bool(helpful): int(count) for helpful, count in rows}
    return counts.get(True, 0), counts.get(False, 0)
