"""Fix notices: when a known issue becomes fixed, the worker tells each linked thread's author
and each follower once (a person both linked and following hears once; a second run, a second
"fixed" or a retry tells nobody again), hidden threads' authors hear nothing, and e-mail follows
each person's preference."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.models import (
    Brand,
    EmailPreference,
    Notification,
    NotificationKind,
    Role,
    Thread,
    User,
    Visibility,
)
from community.core.notifications import describe, target_path
from community.worker import Worker
from crowdservice.known_issues import service
from crowdservice.known_issues.forms import IssueForm
from crowdservice.known_issues.models import KnownIssue, KnownIssueFollower, KnownIssueThread
from crowdservice.known_issues.notices import send_fix_notices
from tests.conftest import QA, Inbox, drain, fresh

UserFactory = Callable[..., User]


@pytest.fixture
def agent(make_user: UserFactory) -> User:
    return make_user("ava", role=Role.AGENT)


@pytest.fixture
def issue(db: Session, qa: QA, agent: User) -> KnownIssue:
    brand = db.get(Brand, qa.forum.brand_id)
    assert brand is not None
    made = service.publish(db, agent, brand, IssueForm(title="Sign-in fails with error 502"))
    db.commit()
    return made


def _link(db: Session, issue: KnownIssue, thread: Thread) -> None:
    db.add(KnownIssueThread(known_issue_id=issue.id, thread_id=thread.id))
    db.commit()


def _follow(db: Session, issue: KnownIssue, user: User) -> None:
    service.follow(db, user, issue)
    db.commit()


def _fix(db: Session, agent: User, issue: KnownIssue) -> None:
    service.post_update(db, agent, issue, "fixed", "Rolled back the deploy.")
    db.commit()


def _notices(db: Session) -> list[tuple[int, int | None]]:
    fresh(db)
    rows = db.scalars(
        select(Notification)
        .where(Notification.kind == NotificationKind.KNOWN_ISSUE)
        .order_by(Notification.user_id)
    )
    return [(row.user_id, row.thread_id) for row in rows]


def test_linked_authors_and_followers_hear_once(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    agent: User,
    issue: KnownIssue,
    mail_worker: Callable[[], Worker],
) -> None:
    linked, both, follower = make_user("lena"), make_user("bob"), make_user("finn")
    first = qa.ask(linked, title="Error 502 when I sign in")
    second = qa.ask(both, title="Cannot sign in, 502 again")
    _link(db, issue, first)
    _link(db, issue, second)
    _follow(db, issue, both)
    _follow(db, issue, follower)
    worker = mail_worker()
    drain(worker)
    assert _notices(db) == []  # nothing before the fix

    _fix(db, agent, issue)
    drain(worker)
    drain(worker)

    assert sorted(_notices(db)) == sorted(
        [(linked.id, first.id), (both.id, second.id), (follower.id, None)]
    )
    fresh(db)
    assert all(row.notified_at for row in db.scalars(select(KnownIssueThread)))
    assert all(row.notified_at for row in db.scalars(select(KnownIssueFollower)))
    notice = db.scalars(select(Notification).where(Notification.user_id == follower.id)).one()
    assert describe(notice) == "Fixed: “Sign-in fails with error 502”"
    assert target_path(notice) == f"/b/acme/known-issues/{issue.id}"


def test_a_relapse_and_a_second_fix_tell_nobody_again(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    agent: User,
    issue: KnownIssue,
    mail_worker: Callable[[], Worker],
) -> None:
    author = make_user("lena")
    _link(db, issue, qa.ask(author, title="Error 502 when I sign in"))
    worker = mail_worker()
    _fix(db, agent, issue)
    drain(worker)
    issue = db.get(KnownIssue, issue.id) or issue
    service.post_update(db, agent, issue, "identified", "It is back.")
    db.commit()
    _fix(db, agent, issue)
    drain(worker)
    assert len(_notices(db)) == 1
    # The handler run again for the same issue (a retried event) writes nothing.
    fresh(db)
    assert send_fix_notices(db, issue.id) == 0


def test_a_thread_linked_after_the_fix_is_told_on_the_next_fix_only_if_new(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    agent: User,
    issue: KnownIssue,
    mail_worker: Callable[[], Worker],
) -> None:
    follower = make_user("finn")
    _follow(db, issue, follower)
    worker = mail_worker()
    _fix(db, agent, issue)
    drain(worker)
    # Later the follower's own thread gets linked, and the issue relapses and is fixed again:
    # they were told already, so they hear nothing more.
    _link(db, issue, qa.ask(follower, title="Still 502 for me"))
    issue = db.get(KnownIssue, issue.id) or issue
    service.post_update(db, agent, issue, "identified", "Back.")
    db.commit()
    _fix(db, agent, issue)
    drain(worker)
    assert _notices(db) == [(follower.id, None)]


@pytest.mark.parametrize("hidden", [Visibility.PENDING, Visibility.DELETED, Visibility.HIDDEN])
def test_hidden_threads_authors_hear_nothing(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    agent: User,
    issue: KnownIssue,
    mail_worker: Callable[[], Worker],
    hidden: Visibility,
) -> None:
    author, shown_author = make_user("hal"), make_user("sue")
    thread = qa.ask(author, title="Error 502 when I sign in")
    shown = qa.ask(shown_author, title="502 on sign in again")
    thread.visibility = hidden
    db.commit()
    _link(db, issue, thread)
    _link(db, issue, shown)
    _fix(db, agent, issue)
    drain(mail_worker())
    assert _notices(db) == [(shown_author.id, shown.id)]
    fresh(db)
    row = db.get(KnownIssueThread, (issue.id, thread.id))
    assert row is not None and row.notified_at is None


def test_a_fix_undone_before_the_worker_runs_tells_nobody(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    agent: User,
    issue: KnownIssue,
    mail_worker: Callable[[], Worker],
) -> None:
    _follow(db, issue, make_user("finn"))
    _fix(db, agent, issue)
    service.post_update(db, agent, issue, "identified", "Not yet, sorry.")
    db.commit()
    drain(mail_worker())
    assert _notices(db) == []


def test_email_follows_each_persons_preference(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    agent: User,
    issue: KnownIssue,
    smtp: tuple[Inbox, int],
    mail_worker: Callable[[], Worker],
) -> None:
    inbox, _port = smtp
    eager, quiet = make_user("eager"), make_user("quiet")
    quiet.email_notifications = EmailPreference.OFF
    db.commit()
    _follow(db, issue, eager)
    _link(db, issue, qa.ask(quiet, title="Error 502 when I sign in"))
    worker = mail_worker()
    drain(worker)
    _fix(db, agent, issue)
    drain(worker)
    assert [message["To"] for message in inbox.messages] == ["eager@example.com"]
    assert "Sign-in fails with error 502" in inbox.subject(0)
    assert f"https://support.example/b/acme/known-issues/{issue.id}" in inbox.bodies()[0]
    assert len(_notices(db)) == 2  # the quiet one still has the notice on the site
