"""Known issues through the service: publishing with every field checked, updates, fixing,
closing and reopening, editing, following, and turning a closed issue into a draft article."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.errors import Conflict, FormErrors, PermissionDenied
from community.core.models import Brand, Forum, Role, Tag, User
from community.core.outbox import OutboxEvent
from crowdservice.known_issues import article, service
from crowdservice.known_issues.forms import IssueForm
from crowdservice.known_issues.models import (
    KnownIssue,
    KnownIssueFollower,
    KnownIssueStatus,
    KnownIssueUpdate,
)
from crowdservice.known_issues.notices import FIXED_EVENT
from kb.models import Article, ArticleStatus

UserFactory = Callable[..., User]


@pytest.fixture
def agent(make_user: UserFactory) -> User:
    return make_user("ava", role=Role.AGENT)


@pytest.fixture
def brand(db: Session, forum: Forum) -> Brand:
    found = db.get(Brand, forum.brand_id)
    assert found is not None
    db.add_all([Tag(brand_id=found.id, name="esim"), Tag(brand_id=found.id, name="billing")])
    db.commit()
    return found


def _publish(db: Session, agent: User, brand: Brand, **fields: object) -> KnownIssue:
    form = IssueForm(title="Sign-in fails with error 502", summary="Use the app **meanwhile**.")
    for name, value in fields.items():
        setattr(form, name, value)
    issue = service.publish(db, agent, brand, form)
    db.commit()
    return issue


def _errors(db: Session, agent: User, brand: Brand, **fields: object) -> dict[str, str]:
    with pytest.raises(FormErrors) as caught:
        _publish(db, agent, brand, **fields)
    db.rollback()
    assert db.scalar(select(KnownIssue.id)) is None  # nothing was written
    return caught.value.errors


def _fixed_events(db: Session) -> list[OutboxEvent]:
    return list(db.scalars(select(OutboxEvent).where(OutboxEvent.kind == FIXED_EVENT)))


def test_publishing_stores_the_issue_its_first_update_and_an_audit_row(
    db: Session, agent: User, brand: Brand, forum: Forum
) -> None:
    issue = _publish(
        db, agent, brand,
        match_terms=["502, can't sign in\nError 502", "  login  ", "ERROR 502,,"],
        forum_ids=[str(forum.id)], tags=["ESIM, billing"],
    )  # fmt: skip

    assert issue.status == KnownIssueStatus.INVESTIGATING
    assert issue.summary_html == "<p>Use the app <strong>meanwhile</strong>.</p>\n"
    # Split on commas and new lines, trimmed, repeats (in any case) dropped.
    assert issue.match_terms == ["502", "can't sign in", "Error 502", "login"]
    assert issue.forum_ids == [forum.id]
    assert issue.tags == ["esim", "billing"]
    (update,) = db.scalars(select(KnownIssueUpdate))
    assert (update.status, update.author_id) == (KnownIssueStatus.INVESTIGATING, agent.id)
    audit = db.scalar(select(AuditLog).where(AuditLog.action == "known_issue.published"))
    assert audit is not None and audit.target_id == str(issue.id)
    assert service.open_issues(db, brand.id) == [issue]
    assert _fixed_events(db) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": "ab"}, "title"),
        ({"title": "x" * 161}, "title"),
        ({"title": "   \n  "}, "title"),
        ({"summary": "y" * 20_001}, "summary"),
        ({"status": "gone"}, "status"),
        ({"match_terms": ["z" * 61]}, "match_terms"),
        ({"match_terms": [",".join(f"term {n}" for n in range(21))]}, "match_terms"),
        ({"forum_ids": ["not a number"]}, "forum_ids"),
        ({"forum_ids": ["999999"]}, "forum_ids"),
        ({"forum_ids": ["99999999999999999999999"]}, "forum_ids"),
        ({"tags": ["esim, nosuchtag"]}, "tags"),
        ({"tags": ["t" * 31]}, "tags"),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    db: Session, agent: User, brand: Brand, fields: dict[str, object], field: str
) -> None:
    assert field in _errors(db, agent, brand, **fields)


def test_several_wrong_fields_are_named_together(db: Session, agent: User, brand: Brand) -> None:
    errors = _errors(db, agent, brand, title="a", status="x", tags=["unknown"])
    assert set(errors) == {"title", "status", "tags"}
    assert "unknown" in errors["tags"]


def test_twenty_terms_and_sixty_characters_are_allowed(
    db: Session, agent: User, brand: Brand
) -> None:
    terms = [f"term {n}" for n in range(19)] + ["w" * 60]
    issue = _publish(db, agent, brand, match_terms=["\n".join(terms)])
    assert issue.match_terms == terms


def test_forums_of_another_brand_are_refused(db: Session, agent: User, brand: Brand) -> None:
    other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(other)
    db.flush()
    elsewhere = Forum(brand_id=other.id, slug="tv", name="TV", description="")
    db.add_all([elsewhere, Tag(brand_id=other.id, name="remote")])
    db.commit()
    assert "forum_ids" in _errors(db, agent, brand, forum_ids=[str(elsewhere.id)])
    assert "tags" in _errors(db, agent, brand, tags=["remote"])


@pytest.mark.parametrize("role", [Role.MEMBER, Role.MODERATOR])
def test_only_agents_and_admins_announce(
    db: Session, make_user: UserFactory, brand: Brand, role: Role
) -> None:
    user = make_user(f"not{role.value}", role=role)
    with pytest.raises(PermissionDenied):
        _publish(db, user, brand)
    db.rollback()
    admin = make_user("boss", role=Role.ADMIN)
    assert _publish(db, admin, brand).created_by_id == admin.id


def test_updates_move_the_status_and_fixing_records_one_event(
    db: Session, agent: User, brand: Brand
) -> None:
    issue = _publish(db, agent, brand)
    service.post_update(db, agent, issue, "identified", "Found it: a **bad** deploy.")
    db.commit()
    assert issue.status == KnownIssueStatus.IDENTIFIED and issue.fixed_at is None
    assert _fixed_events(db) == []
    service.post_update(db, agent, issue, "fixed", "Rolled back.")
    db.commit()
    assert issue.status == KnownIssueStatus.FIXED and issue.fixed_at is not None
    (event,) = _fixed_events(db)
    assert event.payload == {"id": issue.id}
    # Another update while fixed records no second event.
    service.post_update(db, agent, issue, "fixed", "Still fine.")
    db.commit()
    assert len(_fixed_events(db)) == 1
    updates = list(db.scalars(select(KnownIssueUpdate).order_by(KnownIssueUpdate.id)))
    assert [update.status.value for update in updates] == [
        "investigating", "identified", "fixed", "fixed",
    ]  # fmt: skip
    assert updates[1].body_html == "<p>Found it: a <strong>bad</strong> deploy.</p>\n"
    assert (
        len(list(db.scalars(select(AuditLog).where(AuditLog.action == "known_issue.updated")))) == 3
    )


def test_an_update_says_something_or_changes_the_status(
    db: Session, agent: User, brand: Brand
) -> None:
    issue = _publish(db, agent, brand)
    for status, body, field in [
        ("investigating", "  ", "body"),
        ("nope", "text", "status"),
        ("identified", "b" * 5001, "body"),
    ]:
        with pytest.raises(FormErrors) as caught:
            service.post_update(db, agent, issue, status, body)
        assert field in caught.value.errors
        db.rollback()
    assert len(issue.updates) == 1 and issue.status == KnownIssueStatus.INVESTIGATING


def test_publishing_as_fixed_records_the_fix(db: Session, agent: User, brand: Brand) -> None:
    issue = _publish(db, agent, brand, status="fixed")
    assert issue.fixed_at is not None
    assert len(_fixed_events(db)) == 1


def test_close_and_reopen(db: Session, agent: User, brand: Brand) -> None:
    issue = _publish(db, agent, brand)
    service.close(db, agent, issue)
    db.commit()
    assert issue.closed_at is not None and service.open_issues(db, brand.id) == []
    with pytest.raises(Conflict):
        service.close(db, agent, issue)
    with pytest.raises(Conflict):
        service.post_update(db, agent, issue, "fixed", "late")
    db.rollback()
    service.reopen(db, agent, issue)
    db.commit()
    assert issue.closed_at is None and service.open_issues(db, brand.id) == [issue]
    with pytest.raises(Conflict):
        service.reopen(db, agent, issue)
    actions = set(db.scalars(select(AuditLog.action).where(AuditLog.target_type == "known_issue")))
    assert {"known_issue.closed", "known_issue.reopened"} <= actions


def test_open_issues_are_the_brands_newest_first(db: Session, agent: User, brand: Brand) -> None:
    first = _publish(db, agent, brand, title="First problem")
    second = _publish(db, agent, brand, title="Second problem")
    closed = _publish(db, agent, brand, title="Over now")
    service.close(db, agent, closed)
    db.commit()
    assert service.open_issues(db, brand.id) == [second, first]
    assert service.open_issues(db, brand.id + 1000) == []


def test_editing_checks_the_same_fields(
    db: Session, agent: User, brand: Brand, forum: Forum
) -> None:
    issue = _publish(db, agent, brand)
    service.edit(
        db, agent, issue,
        IssueForm(title="Sign-in fails (502)", summary="New *text*", match_terms=["a, b"],
                  forum_ids=[str(forum.id)], tags=["billing"]),
    )  # fmt: skip
    db.commit()
    assert (issue.title, issue.summary_html) == (
        "Sign-in fails (502)",
        "<p>New <em>text</em></p>\n",
    )
    assert (issue.match_terms, issue.forum_ids, issue.tags) == (["a", "b"], [forum.id], ["billing"])
    with pytest.raises(FormErrors) as caught:
        service.edit(db, agent, issue, IssueForm(title="x"))
    assert set(caught.value.errors) == {"title"}
    db.rollback()
    assert issue.title == "Sign-in fails (502)"


def test_summary_markdown_is_sanitized(db: Session, agent: User, brand: Brand) -> None:
    issue = _publish(db, agent, brand, summary="<script>alert(1)</script> [x](javascript:alert(1))")
    assert "<script" not in issue.summary_html and "&lt;script&gt;" in issue.summary_html
    assert "href" not in issue.summary_html


def test_following_once_and_unfollowing(
    db: Session, agent: User, brand: Brand, make_user: UserFactory
) -> None:
    member = make_user("mia")
    issue = _publish(db, agent, brand)
    service.follow(db, member, issue)
    service.follow(db, member, issue)
    db.commit()
    assert service.is_following(db, member, issue)
    assert len(list(db.scalars(select(KnownIssueFollower)))) == 1
    service.unfollow(db, member, issue)
    db.commit()
    assert not service.is_following(db, member, issue)
    service.post_update(db, agent, issue, "fixed", "Done.")
    db.commit()
    with pytest.raises(Conflict):
        service.follow(db, member, issue)


def test_a_closed_issue_becomes_one_draft_article(
    db: Session, agent: User, brand: Brand, forum: Forum
) -> None:
    issue = _publish(db, agent, brand, forum_ids=[str(forum.id)], tags=["esim"])
    with pytest.raises(Conflict):
        article.to_article(db, agent, issue)
    db.rollback()
    service.post_update(db, agent, issue, "identified", "A certificate expired.")
    service.post_update(db, agent, issue, "fixed", "Renewed the certificate.")
    service.close(db, agent, issue)
    db.commit()
    made = article.to_article(db, agent, issue)
    db.commit()
    assert made.status == ArticleStatus.DRAFT and made.brand_id == brand.id
    assert made.title == issue.title and made.forum_id == forum.id and made.tags == "esim"
    assert "Use the app **meanwhile**." in made.body_source
    # The latest update first.
    assert made.body_source.index("Renewed") < made.body_source.index("certificate expired")
    assert issue.article_id == made.id
    again = article.to_article(db, agent, issue)
    db.commit()
    assert again.id == made.id
    assert len(list(db.scalars(select(Article)))) == 1
    assert db.scalar(select(AuditLog).where(AuditLog.action == "known_issue.article_made"))
