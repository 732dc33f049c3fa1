"""A closed known issue's summary and timeline, turned into a draft KB article the agent then
edits in the article editor (kb.service does the drafting, its checks and its audit)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from community.core import policy
from community.core.audit import record_audit
from community.core.errors import Conflict, NotFound
from community.core.i18n import gettext as _
from community.core.models import Brand, User
from crowdservice.known_issues.forms import status_label
from crowdservice.known_issues.models import KnownIssue
from kb import service as kb_service
from kb.models import Article
from kb.schemas import ArticleCreateIn

_BODY_LIMIT = 45_000  # below the article limit, so a long timeline never makes it refuse


def article_body(issue: KnownIssue) -> str:
    """ "What happened" (the summary), then the updates, the latest first."""
    happened, updates = _("What happened"), _("Updates")
    parts = [f"## {happened}", issue.summary or issue.title, f"## {updates}"]
    for update in reversed(issue.updates):
        day = update.created_at.date().isoformat()
        line = f"**{day} · {status_label(update.status)}**"
        parts.append(f"{line}\n\n{update.body}" if update.body else line)
    return "\n\n".join(parts)[:_BODY_LIMIT]


def to_article(db: Session, agent: User, issue: KnownIssue) -> Article:
    """The draft made from this issue: made once, then the same one on every later call."""
    policy.ensure_can_announce(agent, issue.brand_id)
    if issue.article_id is not None:
        existing = db.get(Article, issue.article_id)
        if existing is not None:
            return existing
    if issue.closed_at is None:
        raise Conflict(_("Close the known issue before turning it into an article."))
    brand = db.get(Brand, issue.brand_id)
    if brand is None:
        raise NotFound()
    data = ArticleCreateIn(
        title=issue.title,
        summary=" ".join(issue.summary.split())[:300],
        body=article_body(issue),
        tags=issue.tags[:10],
        forum_id=issue.forum_ids[0] if issue.forum_ids else None,
        note=_("Made from a known issue."),
    )
    article = kb_service.create_article(db, agent, brand, data)
    issue.article_id = article.id
    db.flush()
    record_audit(
        db, actor=agent, action="known_issue.article_made", target_type="known_issue",
        target_id=issue.id, after={"article_id": article.id},
    )  # fmt: skip
    return article
