"""Loads the demo community (community/demo_content.py) into an empty database."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core import indexing
from community.core.auth import Passwords
from community.core.clock import utcnow
from community.core.identity import normalise_username
from community.core.markdown import HTML_VERSION, render_markdown
from community.core.models import (
    Brand,
    Forum,
    Post,
    Role,
    Tag,
    Thread,
    ThreadKind,
    ThreadStatus,
    User,
)
from community.demo_content import (
    ARTICLES,
    BRAND,
    DEMO_PASSWORD,
    FORUMS,
    SAVED_REPLIES,
    SYNONYMS,
    USERS,
)
from community.demo_threads import THREADS, DemoThread
from crowdservice import sla, triage
from crowdservice.saved_replies.models import SavedReply, SuggestedAction
from kb.models import Article, ArticleCredit, ArticleStatus, ArticleVersion


def has_any_brand(db: Session) -> bool:
    return (db.scalar(select(func.count()).select_from(Brand)) or 0) > 0


def seed_demo(db: Session, passwords: Passwords) -> Brand:
    """Create the Acme brand, its forums, users of every role and threads in two languages."""
    now = utcnow()
    brand = Brand(**BRAND)
    db.add(brand)
    db.flush()
    forums = {}
    for position, spec in enumerate(FORUMS):
        forum = Forum(brand_id=brand.id, position=position, **spec)
        db.add(forum)
        forums[spec["slug"]] = forum
    password_hash = passwords.hash(DEMO_PASSWORD)
    users = {}
    for index, (username, display_name, role, locale, reputation, trust) in enumerate(USERS):
        display, key = normalise_username(username)
        user = User(
            username=display,
            username_key=key,
            email=f"{key}@demo.acme.example",
            email_key=f"{key}@demo.acme.example",
            email_verified_at=now,
            display_name=display_name,
            password_hash=password_hash,
            role=Role(role),
            locale=locale,
            reputation=reputation,
            trust_level=trust,
            created_at=now - timedelta(days=400 - index * 20),
            password_changed_at=now,
        )
        db.add(user)
        users[username] = user
    db.flush()

    for thread_spec in THREADS:
        _add_thread(db, thread_spec, forums[thread_spec["forum"]], users, now)
    db.flush()
    brand.synonyms = SYNONYMS
    _add_articles(db, brand, users, now)
    _add_saved_replies(db, brand, users["acme_admin"], now)
    # The worker scores, promotes and indexes everything on its first run.
    thread_ids = list(db.scalars(select(Thread.id).join(Forum).where(Forum.brand_id == brand.id)))
    for thread_id in thread_ids:
        indexing.thread_changed(db, thread_id)
    _triage(db, thread_ids)
    db.flush()
    return brand


def _triage(db: Session, thread_ids: list[int]) -> None:
    """Triage every demo thread and give the unanswered ones their deadlines: they are days
    old, so the worker's first sweep escalates them and the agent workspace has work to show."""
    triage.triage_many(db, thread_ids)
    for thread in db.scalars(select(Thread).where(Thread.id.in_(thread_ids))):
        if thread.reply_count == 0 and thread.status == ThreadStatus.OPEN:
            sla.set_due_times(db, thread, thread.priority)


def _add_saved_replies(db: Session, brand: Brand, admin: User, now: datetime) -> None:
    """A few saved replies in both languages, so the agent workspace's answer box has some."""
    for spec in SAVED_REPLIES:
        article_id = None
        if spec["article"]:
            article_id = db.scalar(select(Article.id).where(Article.title == spec["article"]))
        db.add(
            SavedReply(
                brand_id=brand.id,
                title=spec["title"],
                locale=spec["locale"],
                body=spec["body"],
                action=SuggestedAction(spec["action"]),
                kb_article_id=article_id,
                usage_count=0,
                created_by_id=admin.id,
                created_at=now,
                updated_at=now,
            )
        )


def _add_articles(db: Session, brand: Brand, users: dict[str, User], now: datetime) -> None:
    for spec in ARTICLES:
        thread = db.scalar(select(Thread).where(Thread.title == spec["source_title"]))
        author = users[spec["author"]]
        article = Article(
            brand_id=brand.id,
            forum_id=thread.forum_id if thread else None,
            source_thread_id=thread.id if thread else None,
            source_reply_count=thread.reply_count if thread else 0,
            title=spec["title"],
            summary=spec["summary"],
            body_source=spec["body"],
            body_html=render_markdown(spec["body"]),
            tags=" ".join(spec["tags"]),
            locale=spec["locale"],
            status=ArticleStatus.PUBLISHED,
            owner_id=author.id,
            last_verified_at=now - timedelta(days=10),
            published_at=now - timedelta(days=10),
            created_at=now - timedelta(days=12),
            updated_at=now - timedelta(days=10),
        )
        db.add(article)
        db.flush()
        if thread is not None and thread.accepted_post_id is not None:
            accepted = db.get(Post, thread.accepted_post_id)
            if accepted is not None:
                db.add(
                    ArticleCredit(
                        article_id=article.id, user_id=accepted.author_id, post_id=accepted.id
                    )
                )
        db.add(
            ArticleVersion(
                article_id=article.id,
                number=1,
                editor_id=author.id,
                title=article.title,
                summary=article.summary,
                body_source=article.body_source,
                tags=article.tags,
                status=ArticleStatus.PUBLISHED,
                note="demo",
            )
        )
        indexing.article_changed(db, article.id)


def _tag(db: Session, brand_id: int, name: str) -> Tag:
    tag = db.scalar(select(Tag).where(Tag.brand_id == brand_id, Tag.name == name))
    if tag is None:
        tag = Tag(brand_id=brand_id, name=name, thread_count=0)
        db.add(tag)
        db.flush()
    return tag


def _add_thread(
    db: Session, spec: DemoThread, forum: Forum, users: dict[str, User], now: datetime
) -> None:
    created = now - timedelta(days=spec["days_ago"], hours=3)
    author = users[spec["author"]]
    thread = Thread(
        forum_id=forum.id,
        author_id=author.id,
        title=spec["title"],
        kind=ThreadKind(spec["kind"]),
        locale=spec["locale"],
        view_count=spec["views"],
        helpful_count=spec["helpful"],
        created_at=created,
        updated_at=created,
        last_activity_at=created,
    )
    names = spec.get("tags", [])
    thread.tags = [_tag(db, forum.brand_id, name) for name in names]
    for tag in thread.tags:
        tag.thread_count += 1
    db.add(thread)
    db.flush()
    db.add(
        Post(
            thread_id=thread.id,
            author_id=author.id,
            is_question=True,
            body_source=spec["body"],
            body_html=render_markdown(spec["body"]),
            html_version=HTML_VERSION,
            created_at=created,
            updated_at=created,
        )
    )
    for offset, (username, body, up, down, accepted, official) in enumerate(
        spec["answers"], start=1
    ):
        answered_at = created + timedelta(hours=offset * 2)
        post = Post(
            thread_id=thread.id,
            author_id=users[username].id,
            body_source=body,
            body_html=render_markdown(body),
            html_version=HTML_VERSION,
            upvotes=up,
            downvotes=down,
            score=up - down,
            is_official=official,
            created_at=answered_at,
            updated_at=answered_at,
        )
        db.add(post)
        db.flush()
        thread.reply_count += 1
        thread.last_activity_at = answered_at
        thread.first_response_at = thread.first_response_at or answered_at
        thread.score = max(thread.score, post.score)
        if accepted:
            thread.accepted_post_id = post.id
    if thread.accepted_post_id:
        thread.status = ThreadStatus.SOLVED
    elif spec["answers"]:
        thread.status = ThreadStatus.ANSWERED
    forum.thread_count += 1
    forum.post_count += 1 + len(spec["answers"])
    if forum.last_activity_at is None or thread.last_activity_at > forum.last_activity_at:
        forum.last_activity_at = thread.last_activity_at
