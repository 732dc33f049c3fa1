"""Linking new threads to the known issues they report (crowdservice.known_issues.linking): the
worker links visible questions and problems within each issue's scope, by words and by meaning,
once, keeps an agent's link, waits for a held question's approval, and makes no job while the
brand has no open issue."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community.core.db import make_session_factory
from community.core.models import Brand, Forum, Post, Role, Thread, ThreadKind, User, Visibility
from community.core.outbox import OutboxEvent
from community.core.settings import Settings
from community.worker import Worker
from crowdservice.known_issues.linking import LINK_THREAD, link_thread
from crowdservice.known_issues.models import (
    KnownIssueStatus,
    KnownIssueThread,
)
from moderation import decisions
from moderation.models import Queue, QueueItem
from tests.conftest import QA, drain, fresh, log_in
from tests.crowdservice.known_issue_data import (
    ROUTER_ISSUE,
    ROUTER_SUMMARY,
    issue_links,
    known_issue,
    suggest,
)

UserFactory = Callable[..., User]


@pytest.fixture
def worker(settings: Settings, engine: Engine) -> Worker:
    return Worker(settings, make_session_factory(engine))


# --- linking new threads -------------------------------------------------------------------------


def _links(db: Session) -> set[tuple[int, int, int | None]]:
    fresh(db)
    return {
        (row.known_issue_id, row.thread_id, row.linked_by_id)
        for row in db.scalars(select(KnownIssueThread))
    }


def test_the_worker_links_new_questions_that_report_an_issue_within_its_scope(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory, worker: Worker
) -> None:
    billing = Forum(brand_id=forum.brand_id, slug="billing", name="Billing", description="")
    other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add_all([billing, other])
    db.commit()
    everywhere = known_issue(db, forum.brand_id, "Checkout error 502", terms=["502"])
    billing_only = known_issue(
        db, forum.brand_id, "Invoices late", terms=["invoice"], forum_ids=[billing.id]
    )
    tagged = known_issue(db, forum.brand_id, "Roaming outage", terms=["roaming"], tags=["travel"])
    fixed = known_issue(
        db, forum.brand_id, "Sign-in loop", terms=["sign in"], status=KnownIssueStatus.FIXED
    )
    known_issue(db, forum.brand_id, "Old 502 outage", terms=["502"], closed=True)
    known_issue(db, other.id, "Globex 502 outage", terms=["502"])

    asker = make_user("asker")
    by_title = qa.ask(asker, title="Error 502 when I pay")
    by_body = qa.ask(asker, title="Cannot pay", body="The page says error 502 at the end.")
    unrelated = qa.ask(asker, title="How do I change my e-mail address?")
    invoice_here = qa.ask(asker, title="Where is my invoice?")  # forum "mobile": out of scope
    roaming_tagged = qa.ask(asker, title="No roaming in Spain", tags=["travel"])
    roaming_untagged = qa.ask(asker, title="Roaming prices in Spain")
    sign_in = qa.ask(asker, title="I cannot sign in after the update")
    idea = qa.ask(asker, title="Idea: show error 502 more kindly", kind=ThreadKind.IDEA)
    drain(worker)

    assert _links(db) == {
        (everywhere.id, by_title.id, None),
        (everywhere.id, by_body.id, None),
        (tagged.id, roaming_tagged.id, None),
        (fixed.id, sign_in.id, None),
    }
    assert billing_only.id not in {issue for issue, _t, _by in _links(db)}
    assert {unrelated.id, invoice_here.id, roaming_untagged.id, idea.id}.isdisjoint(
        {thread for _i, thread, _by in _links(db)}
    )

    # In the billing forum the invoice issue applies.
    in_billing = QA(db=db, forum=billing).ask(asker, title="Invoice missing for November")
    drain(worker)
    assert (billing_only.id, in_billing.id, None) in _links(db)


def test_linking_again_changes_nothing_and_keeps_an_agents_link(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory, worker: Worker, settings: Settings
) -> None:
    issue = known_issue(db, forum.brand_id, "Checkout error 502", terms=["502"])
    second = known_issue(db, forum.brand_id, "Payments declined", terms=["pay"])
    agent = make_user("agent_ana", role=Role.AGENT)
    thread = qa.ask(make_user("asker"), title="Error 502 when I pay")
    # An agent linked it to the second issue before the worker ran.
    db.add(KnownIssueThread(known_issue_id=second.id, thread_id=thread.id, linked_by_id=agent.id))
    db.commit()
    drain(worker)
    expected = {(issue.id, thread.id, None), (second.id, thread.id, agent.id)}
    assert _links(db) == expected
    assert link_thread(db, thread.id, default_model=settings.search_model) == []
    db.commit()
    assert _links(db) == expected


def test_a_held_question_is_linked_once_approved(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory, worker: Worker
) -> None:
    issue = known_issue(db, forum.brand_id, "Checkout error 502", terms=["502"])
    thread = qa.ask(make_user("newcomer", trust_level=0), title="Error 502 when I pay")
    assert thread.visibility == Visibility.PENDING
    drain(worker)
    assert _links(db) == set()
    # A job for a thread hidden meanwhile links nothing either.
    assert link_thread(db, thread.id, default_model="off") == []

    question = db.scalars(
        select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    ).one()
    item = db.scalars(
        select(QueueItem).where(QueueItem.post_id == question.id, QueueItem.queue == Queue.PENDING)
    ).one()
    decisions.resolve(
        db, make_user("mod_mia", role=Role.MODERATOR), item, decisions.Decision.APPROVE
    )
    db.commit()
    fresh(db)
    waiting = select(func.count()).where(
        OutboxEvent.kind == LINK_THREAD, OutboxEvent.done_at.is_(None)
    )
    assert db.scalar(waiting) == 1
    drain(worker)
    assert _links(db) == {(issue.id, thread.id, None)}
    assert db.get(Thread, thread.id).visibility == Visibility.VISIBLE  # type: ignore[union-attr]


def test_meaning_links_a_thread_and_shows_on_the_ask_form(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    worker: Worker,
) -> None:
    """A brand searched with the multilingual model: a paraphrase with none of the issue's
    terms is linked by the worker and shown on the ask form; a loose one is neither."""
    forum.brand.search_model = "use-multilingual"
    db.commit()
    issue = known_issue(
        db, forum.brand_id, ROUTER_ISSUE, summary=ROUTER_SUMMARY, terms=["firmware"]
    )
    asker = make_user("asker")
    paraphrase = qa.ask(asker, title="My router reboots by itself at midnight")
    loose = qa.ask(asker, title="Router restarts every night")
    drain(worker)
    assert _links(db) == {(issue.id, paraphrase.id, None)}
    assert loose.id not in {thread for _i, thread, _by in _links(db)}

    browser = make_client()
    log_in(browser, asker.username)
    assert issue_links(suggest(browser, "My router reboots by itself at midnight")) == [
        f"/b/acme/known-issues/{issue.id}"
    ]
    assert issue_links(suggest(browser, "Router restarts every night")) == []


def test_no_link_job_while_the_brand_has_no_openknown_issue(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(other)
    db.commit()
    known_issue(db, forum.brand_id, "Old outage", terms=["502"], closed=True)
    known_issue(db, other.id, "Globex outage", terms=["502"])
    qa.ask(make_user("asker"), title="Error 502 when I pay")
    fresh(db)
    assert db.scalar(select(func.count()).where(OutboxEvent.kind == LINK_THREAD)) == 0
    known_issue(db, forum.brand_id, "Checkout error 502", terms=["502"])
    qa.ask(make_user("second"), title="Error 502 again")
    fresh(db)
    assert db.scalar(select(func.count()).where(OutboxEvent.kind == LINK_THREAD)) == 1
