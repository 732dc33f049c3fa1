"""The agent workspace and the support parts of the thread page over HTTP: who may open the
pages, the queue (countdowns, filters, counts, the htmx fragment), one item's whole context,
every action through its form with the CSRF token, bad input, the author's "I need help from
the support team" button, the moderator's escalate form and triage correction, and an agent's
figures."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.markdown import HTML_VERSION
from community.core.models import Forum, Post, Role, Thread, ThreadStatus, User
from community.core.settings import Settings
from community.worker import Worker
from crowdservice import escalation_sweep
from crowdservice.models import (
    Escalation,
    EscalationReason,
    EscalationStatus,
    Priority,
    Resolution,
    SLABreach,
    TriageResult,
    WebhookDelivery,
)
from kb.models import Article, ArticleStatus
from tests.conftest import QA, csrf_token, drain, fresh, log_in
from tests.crowdservice.helpers import add_webhook, audits, escalated, reloaded, solved_thread

UserFactory = Callable[..., User]
ClientFactory = Callable[[], TestClient]
HTMX = {"HX-Request": "true"}
ROW = re.compile(r'<tr class="[^"]*" id="escalation-(\d+)"')
REQUEST_BUTTON = "I need help from the support team"
NOTIFIED = "A support agent has been notified."


# --- helpers ---------------------------------------------------------------------------------


def _signed_in(make_client: ClientFactory, user: User) -> TestClient:
    browser = make_client()
    log_in(browser, user.username)
    return browser


def _item_path(item: Escalation | int) -> str:
    item_id = item if isinstance(item, int) else item.id
    return f"/agent/escalations/{item_id}"


def _act(
    browser: TestClient,
    item: Escalation | int,
    action: str,
    *,
    token_from: str | None = None,
    **fields: str,
) -> Response:
    """Submit one action form as the item page would (with this browser's CSRF token)."""
    token = csrf_token(browser, token_from or _item_path(item))
    return browser.post(
        f"{_item_path(item)}/{action}",
        data={**fields, "csrf_token": token},
        follow_redirects=False,
    )


def _followed(browser: TestClient, response: Response) -> str:
    """The page a 303 leads to (with its flash message)."""
    assert response.status_code == 303, response.text[:500]
    page = browser.get(response.headers["location"])
    assert page.status_code == 200
    return page.text


def _post_count(db: Session, thread_id: int) -> int:
    return int(db.scalar(select(func.count()).where(Post.thread_id == thread_id)) or 0)


def _rows(html: str) -> list[int]:
    return [int(found) for found in ROW.findall(html)]


def _count(html: str, state: str) -> int:
    found = re.search(rf'id="count-{state}">(\d+)<', html)
    assert found, state
    return int(found.group(1))


# --- who may open the workspace ----------------------------------------------------------------


def test_members_and_moderators_are_refused_agents_and_admins_let_in(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    as_role: Callable[[Role | None], tuple[TestClient, User | None]],
) -> None:
    item = escalated(db, qa, make_user("asker"))
    pages = ["/agent", "/b/acme/agent", _item_path(item), _item_path(item.id + 1000), "/agent/me"]
    for role in (Role.MEMBER, Role.MODERATOR):
        browser, _user = as_role(role)
        for path in pages:
            assert browser.get(path, follow_redirects=False).status_code == 403, (role, path)
        assert browser.get("/b/acme/agent", headers=HTMX).status_code == 403
        for action, fields in (("claim", {}), ("respond", {"body": "Hello there, friend."})):
            refused = _act(browser, item, action, token_from=f"/t/{item.thread_id}", **fields)
            assert refused.status_code == 403, (role, action)
    anonymous, _nobody = as_role(None)
    for path in pages:
        response = anonymous.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
    stored = reloaded(db, item)
    assert (stored.status, stored.assigned_agent_id) == (EscalationStatus.OPEN, None)
    assert _post_count(db, item.thread_id) == 1

    for role in (Role.AGENT, Role.ADMIN):
        browser, _user = as_role(role)
        redirect = browser.get("/agent", follow_redirects=False)
        assert (redirect.status_code, redirect.headers["location"]) == (303, "/b/acme/agent")
        for path in pages:
            expected = 404 if path == _item_path(item.id + 1000) else 200
            assert browser.get(path).status_code == expected, (role, path)


# --- the queue -----------------------------------------------------------------------------------


def test_queue_shows_countdowns_filters_and_counts(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    asker = make_user("asker")
    ana = make_user("ana", role=Role.AGENT)
    billing = Forum(brand_id=qa.forum.brand_id, slug="billing", name="Billing")
    db.add(billing)
    db.commit()
    billing_qa = QA(db=db, forum=billing)
    late = escalated(db, qa, asker, "Phone shows no service since this morning")
    soon = escalated(db, qa, asker, "Calls drop when I switch to 5G")
    mine = escalated(db, qa, asker, "Cannot receive texts from short codes")
    spanish = escalated(db, billing_qa, asker, "Me han cobrado dos veces la factura")
    now = utcnow().replace(microsecond=0)
    for item, priority, due in (
        (late, Priority.P3, now - timedelta(minutes=50)),
        (soon, Priority.P2, now + timedelta(minutes=40)),
        (mine, Priority.P1, now + timedelta(hours=3)),
        (spanish, Priority.P4, now + timedelta(hours=5)),
    ):
        item.priority = priority
        item.first_response_due_at = due
    spanish.thread.locale = "es"
    spanish.thread.interaction_type = "complaint"
    db.commit()
    browser = _signed_in(make_client, ana)
    assert _act(browser, mine, "claim").status_code == 303

    page = browser.get("/b/acme/agent")
    assert page.status_code == 200
    assert "HX-Request" in page.headers["vary"]
    html = page.text
    assert _rows(html) == [late.id, soon.id, mine.id, spanish.id]
    rows = dict(zip(_rows(html), html.split("<tr")[2:], strict=True))
    assert "overdue" in rows[late.id] and "50 minutes overdue" in rows[late.id]
    assert 'class="breached"' in f"<tr{rows[late.id]}"
    assert "left" in rows[soon.id] and "overdue" not in rows[soon.id]
    for item, shown in ((late, "P3"), (soon, "P2"), (mine, "P1"), (spanish, "P4")):
        assert f'<span class="badge">{shown}</span>' in rows[item.id]
    assert "Phone shows no service since this morning" in rows[late.id]
    assert "Billing" in rows[spanish.id]
    assert ana.display_name in rows[mine.id]
    assert (_count(html, "open"), _count(html, "claimed"), _count(html, "breached")) == (3, 1, 1)
    assert _count(html, "answered") == _count(html, "waiting") == _count(html, "handed_off") == 0

    def listed(**params: str) -> list[int]:
        response = browser.get("/b/acme/agent", params=params)
        assert response.status_code == 200
        # The counts cover the whole queue, whatever the filters.
        assert _count(response.text, "open") == 3
        return _rows(response.text)

    assert listed(scope="mine") == [mine.id]
    assert listed(scope="unclaimed") == [late.id, soon.id, spanish.id]
    assert listed(scope="breached") == [late.id]
    assert listed(priority="P2") == [soon.id]
    assert listed(type="complaint") == [spanish.id]
    assert listed(language="es") == [spanish.id]
    assert listed(forum="billing") == [spanish.id]
    assert listed(forum="billing", priority="P1") == []
    assert listed(scope="nonsense", priority="P9") == [late.id, soon.id, mine.id, spanish.id]
    # The chosen filters stay selected in the form.
    chosen = browser.get("/b/acme/agent", params={"scope": "mine", "priority": "P1"}).text
    assert '<option value="mine" selected>' in chosen
    assert '<option value="P1" selected>' in chosen

    empty = browser.get("/b/acme/agent", params={"forum": "billing", "priority": "P1"}).text
    assert "Nothing waits here" in empty


def test_the_htmx_refresh_gets_only_the_queue_block(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    item = escalated(db, qa, make_user("asker"), "Roaming does not work in Portugal")
    item.priority = Priority.P2
    db.commit()
    browser = _signed_in(make_client, make_user("ana", role=Role.AGENT))

    whole = browser.get("/b/acme/agent", params={"scope": "unclaimed"})
    assert "<html" in whole.text and 'id="queue-region"' in whole.text
    assert 'hx-trigger="every 15s"' in whole.text
    # The refresh keeps the filters the agent chose.
    assert 'hx-get="/b/acme/agent?scope=unclaimed"' in whole.text

    fragment = browser.get("/b/acme/agent", params={"scope": "unclaimed"}, headers=HTMX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<form" not in fragment.text
    assert fragment.text.lstrip().startswith('<div id="queue-region"')
    assert _rows(fragment.text) == [item.id]
    assert "Roaming does not work in Portugal" in fragment.text
    assert "HX-Request" in fragment.headers["vary"]
    assert _rows(browser.get("/b/acme/agent", params={"scope": "mine"}, headers=HTMX).text) == []


# --- one item ------------------------------------------------------------------------------------


def test_item_page_shows_the_whole_context(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    earlier = escalated(db, qa, asker, "Voicemail greeting resets every week")
    browser = _signed_in(make_client, make_user("ana", role=Role.AGENT))
    assert _act(browser, earlier, "resolve", note="Fixed by the last update.").status_code == 303
    item = escalated(db, qa, asker, "My eSIM stopped working after the update")
    peer = qa.answer(helper, item.thread, "Restart the phone with the SIM tray open.")
    fresh(db)
    stored = reloaded(db, item)
    thread = stored.thread
    triage_result = db.get(TriageResult, thread.id)
    assert triage_result is not None and triage_result.reasons

    page = browser.get(_item_path(item))
    assert page.status_code == 200
    html = page.text
    assert "My eSIM stopped working after the update" in html
    # The thread's posts.
    assert f'id="post-{peer.id}"' in html
    assert "Restart the phone with the SIM tray open." in html
    assert "I have a new phone and want to keep my number." in html
    # The author and their segment.
    assert asker.display_name in html
    assert "New member" in html  # label of segment "new": a fresh account
    # Triage: the reasons behind it.
    # Triage: the reasons behind it, labelled, in words (never a stored dictionary).
    triage_html = html.split('id="triage-facts">', 1)[1].split("</dl>", 1)[0]
    facts = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", triage_html))
    assert facts["Priority"] == (thread.priority or "P3")
    assert facts["Rules used"] == "the default rules"
    assert "Problem or incident" in facts["Type scores"]
    assert facts["Language"] == "English"
    segment_html = html.split('id="segment-facts">', 1)[1].split("</dl>", 1)[0]
    segment = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", segment_html))
    assert segment["Segment"] == "New member"
    assert segment["Because"] == "no other rule applies"
    assert segment["Verified customer"] == "no"
    for shown in (*facts.values(), *segment.values()):
        assert not re.search(r"[{}\[\]]|&#39;\w+&#39;:|True|False|None", shown), shown
    # Due times and the countdown.
    assert "First response due" in html and "Resolution due" in html
    assert f'datetime="{stored.first_response_due_at.isoformat()}"' in html
    assert " left" in html and "first response" in html
    assert "Waiting for an agent" in html and "The author asked for the support team" in html
    # Earlier escalations of the same author.
    assert "Earlier escalations" in html
    assert f'href="/agent/escalations/{earlier.id}">#{earlier.id}</a>' in html
    assert "Voicemail greeting resets every week" in html  # among their recent threads
    # The actions an agent may take on an unclaimed item.
    assert 'id="claim"' in html and 'name="body"' in html
    assert "Reassign" not in html  # leads only
    assert f'href="/t/{thread.id}"' in html


def test_item_page_lists_the_question_first_then_the_answers_as_they_came(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    item = escalated(db, qa, asker, "Voicemail greeting resets every week")
    thread = reloaded(db, item).thread
    first = db.scalars(select(Post).where(Post.thread_id == thread.id)).one()
    later = qa.answer(helper, thread, "Answered second: check the carrier settings.")
    # Rows written out of order (an import, a merge): ids no longer follow time, and the
    # question has the highest id of all.
    start = thread.created_at
    first.is_question = False
    first.author_id = helper.id
    first.body_html = "<p>Answered third: reset the voicemail PIN.</p>"
    first.created_at = start + timedelta(hours=2)
    later.created_at = start + timedelta(hours=1)
    question = Post(
        thread_id=thread.id,
        author_id=asker.id,
        is_question=True,
        body_source="The question: my greeting keeps resetting.",
        body_html="<p>The question: my greeting keeps resetting.</p>",
        html_version=HTML_VERSION,
        created_at=start,
        updated_at=start,
    )
    db.add(question)
    db.commit()
    assert question.id > later.id > first.id

    html = _signed_in(make_client, make_user("ana", role=Role.AGENT)).get(_item_path(item)).text
    shown = [
        int(found) for found in re.findall(r'<article class="card post[^"]*" id="post-(\d+)"', html)
    ]
    assert shown == [question.id, later.id, first.id]


def test_similar_answers_can_be_linked_from_the_item_page(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    make_client: ClientFactory,
    settings: Settings,
    engine: Engine,
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    solved = solved_thread(
        db,
        qa,
        helper,
        asker,
        "Router reboots every night at midnight",
        "Turn off the scheduled reboot under Settings > Power.",
    )
    item = escalated(db, qa, asker, "My router reboots every night, why?")
    browser = _signed_in(make_client, make_user("ana", role=Role.AGENT))
    drain(Worker(settings, make_session_factory(engine)))  # the search outbox to Meilisearch

    html = browser.get(_item_path(item)).text
    assert "Similar answers" in html
    assert f'href="/t/{solved.id}">Router reboots every night at midnight</a>' in html
    assert f'<a href="/t/{item.thread_id}">My router' not in html
    link = re.search(r'name="link" value="([^"]+)"', html)
    assert link and link.group(1).endswith(f":{solved.id}")
    assert "Link this answer" in html

    done = _act(browser, item, "link", link=link.group(1))
    assert "Linked on the thread." in _followed(browser, done)
    public = browser.get(f"/t/{item.thread_id}").text
    assert f'href="/t/{solved.id}"' in public and "Official answer" in public


# --- actions -------------------------------------------------------------------------------------


def test_claim_and_a_second_agent_is_told_who_has_it(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana = make_user("ana", role=Role.AGENT)
    bob = make_user("bob", role=Role.AGENT)
    ana_browser, bob_browser = _signed_in(make_client, ana), _signed_in(make_client, bob)

    claimed = _act(ana_browser, item, "claim")
    assert claimed.headers["location"] == _item_path(item)
    page = _followed(ana_browser, claimed)
    assert "It is yours." in page
    assert f'<span id="item-agent">{ana.display_name}</span>' in page
    assert 'id="claim"' not in page
    stored = reloaded(db, item)
    assert (stored.status, stored.assigned_agent_id) == (EscalationStatus.CLAIMED, ana.id)

    refused = _act(bob_browser, item, "claim")
    page = _followed(bob_browser, refused)
    assert f"Already claimed by {ana.display_name}." in page
    assert 'class="flash error"' in page
    stored = reloaded(db, item)
    assert (stored.status, stored.assigned_agent_id) == (EscalationStatus.CLAIMED, ana.id)
    assert len(audits(db, "escalation.claimed", item)) == 1
    # Claiming again is harmless for the holder.
    assert "It is yours." in _followed(ana_browser, _act(ana_browser, item, "claim"))
    assert len(audits(db, "escalation.claimed", item)) == 1


def test_respond_puts_an_official_answer_on_the_public_thread(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    make_client: ClientFactory,
    client: TestClient,
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana = make_user("ana", role=Role.AGENT)
    browser = _signed_in(make_client, ana)
    _act(browser, item, "claim")

    done = _act(browser, item, "respond", body="Reset the network settings, then re-scan the QR.")
    assert "Your answer is on the thread." in _followed(browser, done)
    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.ANSWERED
    assert stored.first_response_at is not None
    answer = db.scalars(
        select(Post).where(Post.thread_id == item.thread_id, Post.is_question.is_(False))
    ).one()
    assert answer.is_official and answer.author_id == ana.id

    public = client.get(f"/t/{item.thread_id}")  # anyone, signed in or not
    assert public.status_code == 200
    section = public.text.split(f'id="post-{answer.id}"', 1)[1].split("</section>", 1)[0]
    assert "Reset the network settings, then re-scan the QR." in section
    assert '<span class="badge official">Official answer</span>' in section
    assert len(audits(db, "escalation.answered", item)) == 1


def test_ask_for_details_waits_on_the_customer(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    browser = _signed_in(make_client, make_user("ana", role=Role.AGENT))

    done = _act(browser, item, "ask", body="Which phone model and system version do you use?")
    page = _followed(browser, done)
    assert "Asked for details" in page
    assert '<span class="badge" id="item-status">Waiting for the customer</span>' in page
    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.WAITING and stored.waiting_since is not None
    public = browser.get(f"/t/{item.thread_id}").text
    assert "The support team needs more details" in public
    assert "Which phone model and system version do you use?" in public
    queue = browser.get("/b/acme/agent").text
    assert _count(queue, "waiting") == 1 and _count(queue, "open") == 0


def test_hand_off_queues_a_webhook_delivery(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    add_webhook(db, item, events=("escalation.handed_off",))
    browser = _signed_in(make_client, make_user("ana", role=Role.AGENT))

    done = _act(browser, item, "handoff", note="Needs a SIM swap in the back office.")
    page = _followed(browser, done)
    assert "Handed off to the helpdesk." in page
    assert "Handed to the helpdesk" in page
    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.HANDED_OFF
    [delivery] = db.scalars(select(WebhookDelivery)).all()
    assert (delivery.event, delivery.escalation_id) == ("escalation.handed_off", item.id)
    assert delivery.payload["handoff"]["note"] == "Needs a SIM swap in the back office."
    assert delivery.payload["thread"]["id"] == item.thread_id


def test_return_to_the_community_reopens_the_thread(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    assert item.thread.status == ThreadStatus.ESCALATED
    browser = _signed_in(make_client, make_user("ana", role=Role.AGENT))

    page = _followed(browser, _act(browser, item, "return", note="A community question."))
    assert "Returned to the community." in page
    assert 'id="agent-body"' not in page  # nothing left to do on a closed item
    stored = reloaded(db, item)
    assert (stored.status, stored.resolution) == (EscalationStatus.RETURNED, Resolution.RETURNED)
    assert stored.thread.status == ThreadStatus.OPEN
    assert _rows(browser.get("/b/acme/agent").text) == []


def test_resolve_closes_the_item_with_a_public_note(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana = make_user("ana", role=Role.AGENT)
    browser = _signed_in(make_client, ana)

    page = _followed(browser, _act(browser, item, "resolve", note="Fixed on our side."))
    assert "Resolved." in page
    stored = reloaded(db, item)
    assert (stored.status, stored.resolution) == (EscalationStatus.RESOLVED, Resolution.AGENT)
    assert stored.assigned_agent_id == ana.id and stored.resolved_at is not None
    public = browser.get(f"/t/{item.thread_id}").text
    assert "Fixed on our side." in public and "Official answer" in public
    # A closed item refuses further actions with a message, not an error page.
    again = _followed(browser, _act(browser, item, "respond", body="One more thing to add."))
    assert "This escalation is already closed." in again
    assert _post_count(db, item.thread_id) == 2


def test_link_an_article_or_a_solved_thread(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    solved = solved_thread(
        db, qa, helper, asker, "Turning on Wi-Fi calling", "Settings > Phone > Wi-Fi calling."
    )
    first = escalated(db, qa, asker, "Calls drop at home")
    second = escalated(db, qa, asker, "How to move my number to an eSIM")
    article = Article(
        brand_id=first.brand_id,
        title="Moving your number to an eSIM",
        body_source="Steps.",
        body_html="<p>Steps.</p>",
        status=ArticleStatus.PUBLISHED,
    )
    db.add(article)
    db.commit()
    browser = _signed_in(make_client, make_user("ana", role=Role.AGENT))

    _followed(browser, _act(browser, first, "link", link=f"/t/{solved.id}"))
    _followed(browser, _act(browser, second, "link", link=f"/kb/articles/{article.id}"))
    for item, path in ((first, f"/t/{solved.id}"), (second, f"/kb/articles/{article.id}")):
        assert reloaded(db, item).status == EscalationStatus.ANSWERED
        public = browser.get(f"/t/{item.thread_id}").text
        assert f'href="{path}"' in public and "This may answer your question:" in public

    third = escalated(db, qa, asker, "Data roaming is slow in Spain")
    assert _act(browser, third, "link", link="hello").status_code == 422
    assert _act(browser, third, "link", link="/kb/articles/99999").status_code == 404
    assert reloaded(db, third).status == EscalationStatus.OPEN
    assert _post_count(db, third.thread_id) == 1


def test_reassign_is_for_leads(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana = make_user("ana", role=Role.AGENT)
    bob = make_user("bob", role=Role.AGENT)
    lead = make_user("lead", role=Role.ADMIN)
    member = make_user("meg")
    ana_browser, lead_browser = _signed_in(make_client, ana), _signed_in(make_client, lead)
    _act(ana_browser, item, "claim")

    lead_page = lead_browser.get(_item_path(item)).text
    assert 'name="to"' in lead_page and f'<option value="{bob.username}">' in lead_page
    assert 'name="to"' not in ana_browser.get(_item_path(item)).text

    assert _act(ana_browser, item, "reassign", to=bob.username).status_code == 403
    assert reloaded(db, item).assigned_agent_id == ana.id
    for nobody in ("", "no_such_agent", member.username):
        refused = _act(lead_browser, item, "reassign", to=nobody)
        assert refused.status_code == 422, nobody
    assert reloaded(db, item).assigned_agent_id == ana.id

    page = _followed(lead_browser, _act(lead_browser, item, "reassign", to=bob.username))
    assert f"Reassigned to {bob.display_name}." in page
    stored = reloaded(db, item)
    assert (stored.status, stored.assigned_agent_id) == (EscalationStatus.CLAIMED, bob.id)
    assert len(audits(db, "escalation.reassigned", item)) == 1


def test_bad_input_changes_nothing(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    browser = _signed_in(make_client, make_user("ana", role=Role.AGENT))

    for action in ("respond", "ask"):
        for body in ("", "   \n  "):
            refused = _act(browser, item, action, body=body)
            assert refused.status_code == 422, (action, body)
    stored = reloaded(db, item)
    assert (stored.status, stored.assigned_agent_id) == (EscalationStatus.OPEN, None)
    assert _post_count(db, item.thread_id) == 1
    assert db.scalars(select(AuditLog).where(AuditLog.target_type == "escalation")).all() == [
        *audits(db, "escalation.created", item)
    ]

    assert _act(browser, item, "explode").status_code == 404
    assert _act(browser, item.id + 1000, "claim", token_from=_item_path(item)).status_code == 404
    assert browser.get(_item_path(item.id + 1000)).status_code == 404
    # Without the CSRF token nothing happens either.
    forged = browser.post(f"{_item_path(item)}/claim", follow_redirects=False)
    assert forged.status_code == 403
    assert reloaded(db, item).assigned_agent_id is None


# --- the thread page -------------------------------------------------------------------------


def test_the_author_asks_for_the_support_team(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    asker = make_user("asker")
    thread = qa.ask(asker, title="My bill shows a charge I do not recognise")
    browser = _signed_in(make_client, asker)

    page = browser.get(f"/t/{thread.id}").text
    assert REQUEST_BUTTON in page and NOTIFIED not in page
    assert f'action="/t/{thread.id}/support"' in page

    token = csrf_token(browser, f"/t/{thread.id}")
    pressed = browser.post(
        f"/t/{thread.id}/support", data={"csrf_token": token}, follow_redirects=False
    )
    assert pressed.headers["location"] == f"/t/{thread.id}"
    page = _followed(browser, pressed)
    assert NOTIFIED in page
    assert REQUEST_BUTTON not in page
    # The author never sees the triage.
    assert 'id="triage"' not in page and "Correct triage" not in page
    fresh(db)
    [created] = db.scalars(select(Escalation).where(Escalation.thread_id == thread.id)).all()
    assert (created.reason, created.status) == (
        EscalationReason.AUTHOR_REQUEST,
        EscalationStatus.OPEN,
    )
    # Pressing again (a second tab) does not make a second escalation.
    again = browser.post(
        f"/t/{thread.id}/support", data={"csrf_token": token}, follow_redirects=False
    )
    assert again.status_code == 303
    fresh(db)
    assert db.scalar(select(func.count()).select_from(Escalation)) == 1
    # And the notice stays on later visits.
    assert NOTIFIED in browser.get(f"/t/{thread.id}").text


def test_other_members_see_no_support_data(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory, client: TestClient
) -> None:
    asker = make_user("asker")
    item = escalated(db, qa, asker, "The app crashes and I am furious about it")
    stranger = _signed_in(make_client, make_user("meg"))
    fresh(db)
    thread = db.get(Thread, item.thread_id)
    assert thread is not None and thread.priority and thread.interaction_type
    triage_result = db.get(TriageResult, thread.id)
    assert triage_result is not None

    for viewer in (stranger, client):
        page = viewer.get(f"/t/{thread.id}")
        assert page.status_code == 200
        html = page.text
        assert REQUEST_BUTTON not in html and NOTIFIED not in html
        assert "support-note" not in html and "Triage" not in html
        assert 'class="card triage"' not in html and "triage-reasons" not in html
        assert f"· {thread.priority}" not in html
        assert "Escalate to the support team" not in html
        assert "Waiting for an agent" not in html
        for shown in ("Priority", "Rule that set it", "Type scores", "Segment", "Because"):
            assert f"<dt>{shown}</dt>" not in html
        # A member cannot ask on someone else's behalf either.
        if viewer is stranger:
            token = csrf_token(viewer, f"/t/{thread.id}")
            refused = viewer.post(
                f"/t/{thread.id}/support", data={"csrf_token": token}, follow_redirects=False
            )
            assert refused.status_code == 403


def test_moderators_escalate_and_correct_triage(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    asker = make_user("asker")
    moderator = make_user("mod_maya", role=Role.MODERATOR)
    thread = qa.ask(asker, title="Where do I find my PUK code?")
    fresh(db)
    stored_thread = db.get(Thread, thread.id)
    assert stored_thread is not None
    before_priority = stored_thread.priority
    assert before_priority is not None
    corrected_to = "P1" if before_priority != "P1" else "P2"
    mod = _signed_in(make_client, moderator)

    page = mod.get(f"/t/{thread.id}").text
    assert "Escalate to the support team" in page
    assert f'action="/t/{thread.id}/escalate"' in page
    assert 'id="triage"' in page and "Triage" in page and "Correct triage" in page
    assert REQUEST_BUTTON not in page

    token = csrf_token(mod, f"/t/{thread.id}")
    corrected = mod.post(
        f"/t/{thread.id}/triage",
        data={"priority": corrected_to, "reason": "Locked out of the phone", "csrf_token": token},
        follow_redirects=False,
    )
    assert "Triage corrected." in _followed(mod, corrected)
    fresh(db)
    stored_thread = db.get(Thread, thread.id)
    result = db.get(TriageResult, thread.id)
    assert stored_thread is not None and result is not None
    assert stored_thread.priority == corrected_to
    assert result.corrected_by_id == moderator.id and result.corrected_at is not None
    assert result.original is not None and result.original["priority"] == before_priority
    assert result.reasons["correction_reason"] == "Locked out of the phone"
    [audit] = db.scalars(select(AuditLog).where(AuditLog.action == "triage.corrected")).all()
    assert audit.actor_id == moderator.id
    page = mod.get(f"/t/{thread.id}").text
    assert "corrected" in page and f'<option value="{corrected_to}" selected>' in page

    # Kept: the author's follow-up re-reads the sentiment but leaves the correction alone.
    qa.answer(asker, thread, "Still locked out, this is really annoying and useless!")
    fresh(db)
    stored_thread = db.get(Thread, thread.id)
    assert stored_thread is not None and stored_thread.priority == corrected_to
    result = db.get(TriageResult, thread.id)
    assert result is not None and result.corrected_by_id == moderator.id

    escalating = mod.post(
        f"/t/{thread.id}/escalate",
        data={"note": "Customer locked out", "csrf_token": token},
        follow_redirects=False,
    )
    page = _followed(mod, escalating)
    assert "Escalated to the support team." in page
    assert "Escalated by a moderator" in page and "Escalate to the support team" not in page
    fresh(db)
    [created] = db.scalars(select(Escalation).where(Escalation.thread_id == thread.id)).all()
    assert (created.reason, created.note) == (EscalationReason.MODERATOR, "Customer locked out")
    assert created.priority.value == corrected_to


def _triage_form(html: str) -> dict[str, str]:
    """What a browser submits from the triage correction form untouched: each select's
    selected option (the first one when none is)."""
    form = html.split('id="triage"', 1)[1].split("</form>", 1)[0]
    values: dict[str, str] = {}
    for name, options in re.findall(r'<select name="(\w+)">(.*?)</select>', form):
        chosen = re.findall(r'<option value="([^"]+)" selected>', options)
        assert len(chosen) <= 1, name
        values[name] = chosen[0] if chosen else re.findall(r'<option value="([^"]+)"', options)[0]
    return values


def test_the_correction_form_counts_only_what_was_changed(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    thread = qa.ask(make_user("asker"), title="How do I set up voicemail on my new phone?")
    moderator = make_user("mod_maya", role=Role.MODERATOR)
    mod = _signed_in(make_client, moderator)
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None
    shown = _triage_form(mod.get(f"/t/{thread.id}").text)
    assert shown == {
        "interaction_type": stored.interaction_type or "question",
        "sentiment": stored.sentiment or "neutral",
        "segment": stored.author_segment or "new",
        "priority": stored.priority or "P3",
    }
    token = csrf_token(mod, f"/t/{thread.id}")

    # Submitted untouched: nothing to correct, nothing stored.
    untouched = mod.post(
        f"/t/{thread.id}/triage", data={**shown, "csrf_token": token}, follow_redirects=False
    )
    assert untouched.status_code == 422
    fresh(db)
    result = db.get(TriageResult, thread.id)
    assert result is not None and result.corrected_at is None

    # Only the type changed: the priority is derived again, not pinned as "corrected".
    new_type = "complaint" if shown["interaction_type"] != "complaint" else "problem"
    changed = mod.post(
        f"/t/{thread.id}/triage",
        data={**shown, "interaction_type": new_type, "csrf_token": token},
        follow_redirects=False,
    )
    assert "Triage corrected." in _followed(mod, changed)
    fresh(db)
    stored = db.get(Thread, thread.id)
    result = db.get(TriageResult, thread.id)
    assert stored is not None and result is not None
    assert stored.interaction_type == new_type
    assert result.reasons["corrected_fields"] == ["interaction_type"]
    assert "rule_after_correction" in result.reasons
    assert _triage_form(mod.get(f"/t/{thread.id}").text)["interaction_type"] == new_type

    # "No response needed" is a choice of its own, and shown as chosen afterwards.
    shown = _triage_form(mod.get(f"/t/{thread.id}").text)
    quiet = mod.post(
        f"/t/{thread.id}/triage",
        data={**shown, "priority": "none", "csrf_token": token},
        follow_redirects=False,
    )
    page = _followed(mod, quiet)
    assert _triage_form(page)["priority"] == "none" and "no response needed" in page
    fresh(db)
    result = db.get(TriageResult, thread.id)
    assert result is not None and result.reasons["needs_response"] is False


def test_agents_see_the_triage_and_members_cannot_correct_it(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    asker = make_user("asker")
    item = escalated(db, qa, asker)
    agent_browser = _signed_in(make_client, make_user("ana", role=Role.AGENT))
    page = agent_browser.get(f"/t/{item.thread_id}").text
    assert 'id="triage"' in page
    # The reasons in words, the author's segment among them.
    panel = page.split('class="triage-reasons">', 1)[1].split("</dl>", 1)[0]
    facts = dict(re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", panel))
    assert facts["Rules used"] == "the default rules"
    assert facts["Segment"] == "New member" and facts["Because"] == "no other rule applies"
    assert not re.search(r"[{}\[\]]|True|False|None", panel)
    assert f'href="{_item_path(item)}"' in page  # "Open in the agent workspace"
    assert "Escalate to the support team" not in page  # moderators and admins escalate

    fresh(db)
    before = db.get(Thread, item.thread_id)
    assert before is not None
    priority_before = before.priority
    for person in (asker, make_user("meg")):
        browser = _signed_in(make_client, person)
        token = csrf_token(browser, f"/t/{item.thread_id}")
        refused = browser.post(
            f"/t/{item.thread_id}/triage",
            data={"priority": "P1", "csrf_token": token},
            follow_redirects=False,
        )
        assert refused.status_code == 403, person.username
        escalating = browser.post(
            f"/t/{item.thread_id}/escalate",
            data={"note": "", "csrf_token": token},
            follow_redirects=False,
        )
        assert escalating.status_code == 403, person.username
    fresh(db)
    after = db.get(Thread, item.thread_id)
    result = db.get(TriageResult, item.thread_id)
    assert after is not None and after.priority == priority_before
    assert result is not None and result.corrected_at is None
    assert db.scalars(select(AuditLog).where(AuditLog.action == "triage.corrected")).all() == []


# --- figures -------------------------------------------------------------------------------------


def test_my_figures(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    asker = make_user("asker")
    ana = make_user("ana", role=Role.AGENT)
    browser = _signed_in(make_client, ana)
    empty = browser.get("/agent/me")
    assert empty.status_code == 200
    assert 'id="fig-claimed">0<' in empty.text and 'id="fig-median">–<' in empty.text

    first = escalated(db, qa, asker, "Data is slow in the evenings")
    second = escalated(db, qa, asker, "Cannot port my number from another carrier")
    _act(browser, first, "claim")
    _act(browser, first, "respond", body="Known congestion; a fix is planned.")
    _act(browser, first, "resolve", note="")
    _act(browser, second, "claim")

    page = browser.get("/agent/me")
    assert page.status_code == 200
    assert "My figures" in page.text and "The last 30 days" in page.text
    assert 'id="fig-claimed">2<' in page.text
    assert 'id="fig-resolved">1<' in page.text
    assert 'id="fig-median">–<' not in page.text
    assert 'id="fig-breaches">0<' in page.text
    assert "The last 7 days" in browser.get("/agent/me", params={"days": 7}).text
    assert "The last 365 days" in browser.get("/agent/me", params={"days": 99999}).text
    assert browser.get("/agent/me", params={"days": "x"}).status_code == 422


def test_the_queue_and_my_figures_count_overdue_items_and_breaches_alike(
    db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    asker = make_user("asker")
    ana = make_user("ana", role=Role.AGENT)
    items = [
        escalated(db, qa, asker, title)
        for title in (
            "Phone shows no service since this morning",
            "Calls drop when I switch to 5G",
            "Cannot receive texts from short codes",
        )
    ]
    now = utcnow()
    for item in items:
        item.first_response_due_at = now - timedelta(minutes=10)
    db.commit()
    # The sweep records the three missed first responses while nobody holds the items...
    escalation_sweep.sweep(db, now=now)
    db.commit()
    assert db.scalar(select(func.count()).select_from(SLABreach)) == 3
    # ...then Ana takes one on; it is still overdue (nobody from support answered yet).
    browser = _signed_in(make_client, ana)
    assert _act(browser, items[0], "claim").status_code == 303

    queue = browser.get("/b/acme/agent").text
    assert _count(queue, "breached") == 3
    assert _count(queue, "mine") == 1
    assert "held by you, 1 of them overdue" in queue
    assert 'href="/agent/me?brand=acme"' in queue

    page = browser.get("/agent/me", params={"brand": "acme"}).text
    figure = {
        name: re.search(rf'id="fig-{name}">(?:<a [^>]*>)?(\d+)', page)
        for name in ("overdue", "overdue-mine", "mine", "breaches")
    }
    assert {name: int(found.group(1)) for name, found in figure.items() if found} == {
        "overdue": 3,  # the queue's number
        "overdue-mine": 1,
        "mine": 1,
        "breaches": 1,  # missed before anyone held it, now Ana's item
    }
    assert "SLA breaches recorded on your items" in page and "Overdue in the whole queue" in page
    # The default brand when none is named, and a 404 for a brand that does not exist.
    assert browser.get("/agent/me").text.count('id="fig-overdue"><a') == 1
    assert browser.get("/agent/me", params={"brand": "nope"}).status_code == 404


@pytest.mark.parametrize("action", ["release", "handoff"])
def test_actions_on_someone_elses_item_are_refused(
    action: str, db: Session, qa: QA, make_user: UserFactory, make_client: ClientFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana = make_user("ana", role=Role.AGENT)
    bob = make_user("bob", role=Role.AGENT)
    _act(_signed_in(make_client, ana), item, "claim")
    refused = _act(_signed_in(make_client, bob), item, action)
    assert refused.status_code == 403
    stored = reloaded(db, item)
    assert (stored.status, stored.assigned_agent_id) == (EscalationStatus.CLAIMED, ana.id)
