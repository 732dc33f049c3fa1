"""Known-issue matching (crowdservice.known_issues.matching, ask_form, linking): whole-word
phrases with accents and case folded, meaning with the real multilingual model at its calibrated
threshold, scope; the ask form shows matched open issues of its own brand first (nothing in the
holdout) and records one impression per session and issue; the worker links new questions that
report an issue, once, within its scope, and held questions only once approved."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community.core.db import make_session_factory
from community.core.models import Brand, Forum, Post, Role, Thread, ThreadKind, User, Visibility
from community.core.outbox import OutboxEvent
from community.core.settings import Settings
from community.core.viewcount import viewer_key
from community.worker import Worker
from crowdservice.known_issues.ask_form import ask_form_issues
from crowdservice.known_issues.linking import LINK_THREAD, link_thread
from crowdservice.known_issues.matching import (
    applies_to,
    contains_phrase,
    issue_vectors,
    match_issues,
    matches_terms,
    words,
)
from crowdservice.known_issues.models import (
    KnownIssue,
    KnownIssueImpression,
    KnownIssueStatus,
    KnownIssueThread,
)
from kb.ask_sessions import assigned_arm
from kb.models import AskArm, AskSession, DeflectionEvent
from moderation import decisions
from moderation.models import Queue, QueueItem
from tests.conftest import QA, csrf_token, drain, fresh, log_in, run_concurrently

UserFactory = Callable[..., User]
SUGGEST = "/b/acme/kb/suggest"

ROUTER_ISSUE = "Router reboots every night at midnight"
ROUTER_SUMMARY = "Some routers restart at midnight after the last firmware update."


def _issue(
    db: Session | None,
    brand_id: int,
    title: str,
    *,
    terms: list[str] | None = None,
    summary: str = "",
    forum_ids: list[int] | None = None,
    tags: list[str] | None = None,
    status: KnownIssueStatus = KnownIssueStatus.INVESTIGATING,
    closed: bool = False,
    issue_id: int | None = None,
) -> KnownIssue:
    """A known issue as the publishing side stores it (its service is another branch's)."""
    issue = KnownIssue(
        brand_id=brand_id,
        title=title,
        summary=summary,
        summary_html=f"<p>{summary}</p>" if summary else "",
        status=status,
        match_terms=terms or [],
        forum_ids=forum_ids or [],
        tags=tags or [],
        updated_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        closed_at=datetime(2026, 12, 2, tzinfo=UTC) if closed else None,
    )
    if issue_id is not None:
        issue.id = issue_id
    if db is not None:
        db.add(issue)
        db.commit()
    return issue


# --- words ---------------------------------------------------------------------------------------


def test_words_are_folded_case_accents_and_punctuation() -> None:
    assert words("Érreur 502 à la CAISSE!") == ("erreur", "502", "a", "la", "caisse")
    assert words("can't sign-in_now") == ("can", "t", "sign", "in", "now")
    assert words("Straße") == ("strasse",)  # casefold, not lower
    assert words("  ") == ()


def test_a_term_matches_only_as_a_whole_word_phrase() -> None:
    assert matches_terms(["502"], "error 502 at checkout")
    assert not matches_terms(["502"], "error 5020 at checkout")
    assert not matches_terms(["502"], "error E502")
    assert matches_terms(["can't sign in"], "I CAN'T sign in since Monday!")
    assert matches_terms(["sign in"], "sign-in fails")
    assert not matches_terms(["sign in"], "signing in fails")
    assert not matches_terms(["sign in"], "in sign fails")  # the words in the term's order
    assert not matches_terms(["sign in"], "sign up, then in")  # consecutive, not scattered
    # Accents either side: the term typed with them, the title without, and the other way.
    assert matches_terms(["Facturación"], "problema de facturacion")
    assert matches_terms(["facturacion"], "Problema de FACTURACIÓN")
    # Empty or punctuation-only terms never match everything.
    assert not matches_terms(["", " - "], "anything at all")
    # Title and question are separate texts: a phrase does not run from one into the other.
    assert not matches_terms(["checkout error"], "Stuck at checkout", "error on the page")
    assert matches_terms(["checkout error"], "Stuck", "a checkout error on the page")
    assert contains_phrase(("a", "b", "c"), ("b", "c")) and not contains_phrase(("a",), ())


def test_scope_by_forum_tag_either_or_the_whole_brand() -> None:
    everywhere = _issue(None, 1, "Everywhere")
    in_forum = _issue(None, 1, "Forum", forum_ids=[7])
    tagged = _issue(None, 1, "Tag", tags=["Billing"])
    both = _issue(None, 1, "Both", forum_ids=[7], tags=["billing"])
    assert applies_to(everywhere, 3, [])
    assert applies_to(in_forum, 7, []) and not applies_to(in_forum, 3, ["billing"])
    assert applies_to(tagged, 3, ["billing"]) and not applies_to(tagged, 7, ["roaming"])
    assert applies_to(both, 7, []) and applies_to(both, 3, ["billing"])
    assert not applies_to(both, 3, ["roaming"])


def test_word_matches_come_by_strength_at_most_two() -> None:
    brand = Brand(slug="lexical", name="Lexical", search_model="off")
    issues = [
        _issue(None, 1, "Checkout down", terms=["checkout"], issue_id=1),
        _issue(None, 1, "502 errors", terms=["502"], issue_id=2),
        _issue(None, 1, "Payments", terms=["payment"], issue_id=3),
        _issue(None, 1, "Unrelated", terms=["roaming"], issue_id=4),
    ]
    found = match_issues(
        issues, "Error 502 on the checkout payment page", brand=brand, default_model="off"
    )
    # Without a model every match is by words, newest first; two at most.
    assert [(m.issue.id, m.by_words, m.cosine) for m in found] == [(3, True, None), (2, True, None)]
    assert match_issues(issues, "roam", brand=brand, default_model="off") == []
    assert match_issues(issues, "   ", brand=brand, default_model="off") == []


def test_meaning_matches_at_the_models_calibrated_threshold() -> None:
    """The real multilingual model (calibrated at 0.775, kb.duplicates): a paraphrase of the
    issue matches without any match term, a loose one and another subject do not; a word match
    comes before a closer meaning; a brand without a model matches words only."""
    brand = Brand(slug="semantic", name="Semantic", search_model="use-multilingual")
    router = _issue(None, 1, ROUTER_ISSUE, summary=ROUTER_SUMMARY, issue_id=10)
    payments = _issue(None, 1, "Card payments declined", terms=["midnight"], issue_id=11)
    issue_vectors.clear()

    found = match_issues(
        [router], "My router reboots by itself at midnight", brand=brand, default_model="off"
    )
    assert [(m.issue.id, m.by_words) for m in found] == [(10, False)]
    assert found[0].cosine is not None and found[0].cosine >= 0.775
    loose = match_issues([router], "Router restarts every night", brand=brand, default_model="off")
    assert loose == []
    other = match_issues(
        [router], "How do I change my e-mail address", brand=brand, default_model="off"
    )
    assert other == []

    both = match_issues(
        [router, payments],
        "My router reboots by itself at midnight",
        brand=brand,
        default_model="off",
    )
    # The payments issue matches by its term "midnight" (far in meaning): words come first.
    assert [(m.issue.id, m.by_words) for m in both] == [(11, True), (10, False)]
    assert both[0].cosine is not None and both[0].cosine < 0.775

    lexical_only = Brand(slug="plain", name="Plain", search_model="off")
    assert (
        match_issues(
            [router],
            "My router reboots by itself at midnight",
            brand=lexical_only,
            default_model="off",
        )
        == []
    )


# --- the ask form --------------------------------------------------------------------------------


def _member_key(user: User) -> str:
    return viewer_key(user_id=user.id, session_token=None, ip=None)


def _suggest(client: TestClient, title: str) -> str:
    page = client.get(SUGGEST, params={"title": title}, headers={"HX-Request": "true"})
    assert page.status_code == 200
    return page.text


def _issue_links(html: str) -> list[str]:
    return re.findall(r'href="(/b/acme/known-issues/\d+)"', html)


def _impressions(db: Session) -> list[tuple[int, int, bool]]:
    fresh(db)
    return sorted(
        (row.known_issue_id, row.ask_session_id, row.shown)
        for row in db.scalars(select(KnownIssueImpression))
    )


@pytest.fixture
def worker(settings: Settings, engine: Engine) -> Worker:
    return Worker(settings, make_session_factory(engine))


def test_a_matched_issue_shows_first_with_its_status_and_a_follow_form(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    worker: Worker,
) -> None:
    helper = make_user("helper")
    answered = qa.ask(helper, title="Error 502 when paying by card", body="The page fails.")
    qa.answer(make_user("answerer"), answered, "Clear the cache and try again.")
    drain(worker)
    issue = _issue(db, forum.brand_id, "Checkout fails with error 502", terms=["502"])

    member = make_user("asker")
    browser = make_client()
    log_in(browser, member.username)
    html = _suggest(browser, "error 502 when paying")
    assert _issue_links(html) == [f"/b/acme/known-issues/{issue.id}"]
    # First: the known issue comes before the ordinary suggestions.
    assert html.index("Known issue") < html.index(f'href="/t/{answered.id}"')
    assert 'data-status="investigating">Investigating<' in html
    assert 'datetime="2026-12-01T08:00:00+00:00"' in html
    # A button, not a nested form (the suggestions sit inside the ask form): it posts the
    # CSRF token and nothing of the question being written.
    assert f'hx-post="/known-issues/{issue.id}/follow"' in html
    assert re.search(r'hx-vals=\'\{"csrf_token": "[0-9a-f]+"\}\' hx-params="csrf_token"', html)
    assert "<form" not in html
    assert 'data-entry-type="known_issue"' in html

    # The same session asking again: one impression per session and issue.
    _suggest(browser, "error 502 when paying by card")
    _suggest(browser, "error 502 when paying by card!")
    session_id = db.scalar(
        select(AskSession.id).where(AskSession.visitor_key == _member_key(member))
    )
    assert _impressions(db) == [(issue.id, session_id, True)]

    # A title that matches nothing shows no issue; a visitor not signed in sees the issue
    # without the follow form, and nothing is recorded for them.
    assert _issue_links(_suggest(browser, "how do I change my e-mail")) == []
    anonymous = make_client()
    shown = _suggest(anonymous, "checkout error 502")
    assert _issue_links(shown) == [f"/b/acme/known-issues/{issue.id}"]
    assert "/follow" not in shown
    assert len(_impressions(db)) == 1


def test_the_holdout_sees_nothing_but_its_match_is_recorded(
    db: Session, forum: Forum, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    brand = forum.brand
    brand.holdout_percent = 50
    db.commit()
    issue = _issue(db, brand.id, "Checkout fails with error 502", terms=["502"])
    members = [make_user(f"member{n}") for n in range(24)]
    arms = {user.id: assigned_arm(brand.id, _member_key(user), 50) for user in members}
    held = next(user for user in members if arms[user.id] == AskArm.HOLDOUT)
    shown = next(user for user in members if arms[user.id] == AskArm.SUGGESTIONS)
    pages = {}
    for user in (held, shown):
        browser = make_client()
        log_in(browser, user.username)
        pages[user.id] = _suggest(browser, "error 502 at checkout")
    assert _issue_links(pages[held.id]) == [] and "Known issue" not in pages[held.id]
    assert _issue_links(pages[shown.id]) == [f"/b/acme/known-issues/{issue.id}"]
    sessions = {s.visitor_key: s.id for s in db.scalars(select(AskSession).order_by(AskSession.id))}
    assert _impressions(db) == sorted(
        [
            (issue.id, sessions[_member_key(held)], False),
            (issue.id, sessions[_member_key(shown)], True),
        ]
    )


def test_closed_issues_and_other_brands_issues_never_show(
    db: Session, forum: Forum, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(other)
    db.commit()
    _issue(db, forum.brand_id, "Old checkout outage", terms=["502"], closed=True)
    _issue(db, other.id, "Globex checkout outage", terms=["502"])
    fixed = _issue(
        db, forum.brand_id, "Sign-in loop", terms=["sign in"], status=KnownIssueStatus.FIXED
    )
    browser = make_client()
    log_in(browser, make_user("asker").username)
    assert _issue_links(_suggest(browser, "error 502 at checkout")) == []
    # Fixed but not closed yet: still announced, with its status.
    html = _suggest(browser, "cannot sign in on the app")
    assert _issue_links(html) == [f"/b/acme/known-issues/{fixed.id}"]
    assert 'data-status="fixed">Fixed<' in html
    assert _impressions(db) == [(fixed.id, db.scalar(select(func.max(AskSession.id))) or 0, True)]


def test_the_issue_shows_while_search_is_down(
    db: Session, forum: Forum, engine: Engine, database_url: str, tmp_path: object
) -> None:
    from community.app import create_app
    from tests.conftest import make_settings

    issue = _issue(db, forum.brand_id, "Checkout fails with error 502", terms=["502"])
    down = make_settings(tmp_path, database_url, "http://127.0.0.1:9")  # type: ignore[arg-type]
    with TestClient(create_app(down, engine=engine)) as offline:
        html = _suggest(offline, "error 502 at checkout")
    assert _issue_links(html) == [f"/b/acme/known-issues/{issue.id}"]


def test_opening_the_issue_goes_through_the_deflection_beacon(
    db: Session, forum: Forum, client: TestClient
) -> None:
    issue = _issue(db, forum.brand_id, "Checkout fails with error 502", terms=["502"])
    sent = client.post(
        "/kb/deflect",
        data={
            "csrf_token": csrf_token(client, "/"),
            "brand": "acme",
            "entry_type": "known_issue",
            "entry_id": str(issue.id),
            "q": "error 502",
        },
    )
    assert sent.status_code == 204
    fresh(db)
    event = db.scalars(select(DeflectionEvent)).one()
    assert (event.entry_type, event.entry_id) == ("known_issue", issue.id)


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
    everywhere = _issue(db, forum.brand_id, "Checkout error 502", terms=["502"])
    billing_only = _issue(
        db, forum.brand_id, "Invoices late", terms=["invoice"], forum_ids=[billing.id]
    )
    tagged = _issue(db, forum.brand_id, "Roaming outage", terms=["roaming"], tags=["travel"])
    fixed = _issue(
        db, forum.brand_id, "Sign-in loop", terms=["sign in"], status=KnownIssueStatus.FIXED
    )
    _issue(db, forum.brand_id, "Old 502 outage", terms=["502"], closed=True)
    _issue(db, other.id, "Globex 502 outage", terms=["502"])

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
    issue = _issue(db, forum.brand_id, "Checkout error 502", terms=["502"])
    second = _issue(db, forum.brand_id, "Payments declined", terms=["pay"])
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
    issue = _issue(db, forum.brand_id, "Checkout error 502", terms=["502"])
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
    issue = _issue(db, forum.brand_id, ROUTER_ISSUE, summary=ROUTER_SUMMARY, terms=["firmware"])
    asker = make_user("asker")
    paraphrase = qa.ask(asker, title="My router reboots by itself at midnight")
    loose = qa.ask(asker, title="Router restarts every night")
    drain(worker)
    assert _links(db) == {(issue.id, paraphrase.id, None)}
    assert loose.id not in {thread for _i, thread, _by in _links(db)}

    browser = make_client()
    log_in(browser, asker.username)
    assert _issue_links(_suggest(browser, "My router reboots by itself at midnight")) == [
        f"/b/acme/known-issues/{issue.id}"
    ]
    assert _issue_links(_suggest(browser, "Router restarts every night")) == []


def test_two_requests_of_one_session_at_once_record_one_impression(
    db: Session, forum: Forum, engine: Engine
) -> None:
    """Both requests read no impression yet, both insert: the primary key and insert-or-skip
    keep one row and neither request fails."""
    issue = _issue(db, forum.brand_id, "Checkout fails with error 502", terms=["502"])
    now = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    session = AskSession(
        brand_id=forum.brand_id, visitor_key="k" * 32, number=1, arm=AskArm.SUGGESTIONS,
        holdout_percent=0, started_at=now, last_activity_at=now,
    )  # fmt: skip
    db.add(session)
    db.commit()

    def request(other: Session) -> None:
        shown = ask_form_issues(
            other,
            other.get_one(Brand, forum.brand_id),
            "error 502 at checkout",
            arm=AskArm.SUGGESTIONS,
            session=other.get_one(AskSession, session.id),
            default_model="off",
            now=now,
        )
        assert [found.id for found in shown] == [issue.id]

    assert run_concurrently(engine, [request, request, request]) == [("ok", "")] * 3
    assert _impressions(db) == [(issue.id, session.id, True)]


def test_no_link_job_while_the_brand_has_no_open_issue(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(other)
    db.commit()
    _issue(db, forum.brand_id, "Old outage", terms=["502"], closed=True)
    _issue(db, other.id, "Globex outage", terms=["502"])
    qa.ask(make_user("asker"), title="Error 502 when I pay")
    fresh(db)
    assert db.scalar(select(func.count()).where(OutboxEvent.kind == LINK_THREAD)) == 0
    _issue(db, forum.brand_id, "Checkout error 502", terms=["502"])
    qa.ask(make_user("second"), title="Error 502 again")
    fresh(db)
    assert db.scalar(select(func.count()).where(OutboxEvent.kind == LINK_THREAD)) == 1
