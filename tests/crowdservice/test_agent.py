"""The agent workspace: exactly one agent holds an item (five agents racing included), who may
release and reassign, public official answers that record the first response, asking for details
pauses the resolution clock until the author replies, hand-off to the helpdesk with the whole
context (and nothing secret), returning and resolving, the queue's order, filters and counts,
one item's context with similar KB entries from the real Meilisearch, linking an answer, and an
agent's own figures."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from community import visibility, voting
from community.core import policy
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.errors import Conflict, FormErrors, NotFound, PermissionDenied
from community.core.models import (
    Forum,
    Notification,
    NotificationKind,
    Post,
    Role,
    Thread,
    ThreadStatus,
    User,
    Visibility,
)
from community.core.settings import Settings
from community.worker import Worker
from crowdservice import agent, figures
from crowdservice.agent import QueueFilters
from crowdservice.models import (
    BreachKind,
    Escalation,
    EscalationStatus,
    Priority,
    Resolution,
    Segment,
    SLABreach,
    WebhookDelivery,
)
from kb.models import Article, ArticleStatus
from kb.search import SearchEngine
from tests.conftest import (
    QA,
    announce_published,
    drain,
    fresh,
    make_settings,
    run_concurrently,
)
from tests.crowdservice.helpers import (
    WEBHOOK_SECRET,
    add_webhook,
    audits,
    escalated,
    reloaded,
    solved_thread,
)

UserFactory = Callable[..., User]


# --- helpers ---------------------------------------------------------------------------------


def _deliveries(db: Session, event: str) -> list[WebhookDelivery]:
    return list(db.scalars(select(WebhookDelivery).where(WebhookDelivery.event == event)))


def _keys(value: object) -> set[str]:
    """Every key at any depth of a JSON document."""
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in _keys(item)}
    if isinstance(value, list):
        return {key for item in value for key in _keys(item)}
    return set()


# --- who may work escalations ----------------------------------------------------------------


def test_only_agents_and_admins_work_escalations(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    brand = item.thread.forum.brand
    for role in (Role.MEMBER, Role.MODERATOR):
        outsider = make_user(f"an_{role.value}", role=role)
        with pytest.raises(PermissionDenied):
            agent.access_escalation(db, outsider, item.id)
        # No leak either: a made-up id is refused the same way.
        with pytest.raises(PermissionDenied):
            agent.access_escalation(db, outsider, item.id + 1000)
        with pytest.raises(PermissionDenied):
            agent.claim(db, outsider, item)
        with pytest.raises(PermissionDenied):
            agent.queue(db, outsider, brand, QueueFilters(), now=utcnow())
    for role in (Role.AGENT, Role.ADMIN):
        worker = make_user(f"a_{role.value}", role=role)
        assert agent.access_escalation(db, worker, item.id).id == item.id
        with pytest.raises(NotFound):
            agent.access_escalation(db, worker, item.id + 1000)
    assert policy.is_lead(make_user("boss", role=Role.ADMIN))
    assert not policy.is_lead(make_user("plain", role=Role.AGENT))


# --- claiming --------------------------------------------------------------------------------


def test_claim_holds_the_item_and_others_are_told_who_has_it(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana, bo = make_user("ana", role=Role.AGENT), make_user("bob", role=Role.AGENT)
    ana.display_name = "Ana from Support"
    db.commit()

    agent.claim(db, ana, item)
    db.commit()
    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.CLAIMED
    assert stored.assigned_agent_id == ana.id and stored.claimed_at is not None

    again = agent.claim(db, ana, stored)  # claiming your own again changes nothing
    assert again.assigned_agent_id == ana.id
    with pytest.raises(Conflict) as refused:
        agent.claim(db, bo, stored)
    assert refused.value.message == "Already claimed by Ana from Support."
    db.rollback()
    assert len(audits(db, "escalation.claimed", item)) == 1

    agent.resolve(db, ana, reloaded(db, item), None)
    db.commit()
    with pytest.raises(Conflict) as closed:
        agent.claim(db, bo, reloaded(db, item))
    assert closed.value.message == "This escalation is no longer open."


def test_five_agents_claiming_at_once_leave_exactly_one_holder(
    db: Session, engine: Engine, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    agents = [make_user(f"agent{index}", role=Role.AGENT) for index in range(5)]
    for index, person in enumerate(agents):
        person.display_name = f"Agent Number {index}"
    db.commit()

    def attempt(agent_id: int) -> Callable[[Session], object]:
        def action(session: Session) -> object:
            me = session.get(User, agent_id)
            assert me is not None
            return agent.claim(session, me, agent.access_escalation(session, me, item.id))

        return action

    outcomes = run_concurrently(engine, [attempt(person.id) for person in agents])

    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.CLAIMED
    holder = db.get(User, stored.assigned_agent_id)
    assert holder is not None
    assert sorted(code for code, _message in outcomes) == ["conflict"] * 4 + ["ok"]
    winner = agents[[code for code, _message in outcomes].index("ok")]
    assert holder.id == winner.id
    losers = [message for code, message in outcomes if code == "conflict"]
    assert losers == [f"Already claimed by {holder.display_name}."] * 4
    assert len(audits(db, "escalation.claimed", item)) == 1


def test_release_is_for_the_holder_or_a_lead(db: Session, qa: QA, make_user: UserFactory) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana, bo = make_user("ana", role=Role.AGENT), make_user("bob", role=Role.AGENT)
    lead = make_user("lead", role=Role.ADMIN)
    agent.claim(db, ana, item)
    db.commit()

    with pytest.raises(PermissionDenied):
        agent.release(db, bo, reloaded(db, item))
    db.rollback()
    agent.release(db, ana, reloaded(db, item))
    db.commit()
    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.OPEN
    assert stored.assigned_agent_id is None and stored.claimed_at is None
    assert len(audits(db, "escalation.released", item)) == 1
    with pytest.raises(Conflict):
        agent.release(db, ana, stored)  # nobody holds it now
    db.rollback()

    agent.claim(db, bo, reloaded(db, item))
    db.commit()
    agent.release(db, lead, reloaded(db, item))  # a lead frees someone else's item
    db.commit()
    assert reloaded(db, item).assigned_agent_id is None


def test_reassign_is_for_leads_and_only_to_active_agents(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana, bo = make_user("ana", role=Role.AGENT), make_user("bob", role=Role.AGENT)
    lead = make_user("lead", role=Role.ADMIN)
    member, moderator = make_user("member"), make_user("moder", role=Role.MODERATOR)
    gone = make_user("gone", role=Role.AGENT)
    gone.deactivated_at = utcnow()
    db.commit()
    agent.claim(db, ana, item)
    db.commit()

    with pytest.raises(PermissionDenied):
        agent.reassign(db, ana, reloaded(db, item), bo)
    db.rollback()
    for target in (member, moderator, gone):
        with pytest.raises(FormErrors):
            agent.reassign(db, lead, reloaded(db, item), target)
        db.rollback()

    agent.reassign(db, lead, reloaded(db, item), bo)
    db.commit()
    stored = reloaded(db, item)
    assert stored.assigned_agent_id == bo.id
    assert stored.status == EscalationStatus.CLAIMED
    (entry,) = audits(db, "escalation.reassigned", item)
    assert entry.before == {"status": "claimed", "assigned_agent_id": ana.id}
    assert entry.after == {"status": "claimed", "assigned_agent_id": bo.id}
    # The former holder is now just another agent.
    with pytest.raises(PermissionDenied):
        agent.respond(db, ana, stored, "Let me look into it.")


# --- answering -------------------------------------------------------------------------------


def test_respond_posts_an_official_answer_and_records_the_first_response(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    item = escalated(db, qa, asker)
    ana = make_user("ana", role=Role.AGENT)

    # An empty answer changes nothing, not even who holds the item.
    with pytest.raises(FormErrors):
        agent.respond(db, ana, item, "   ")
    db.rollback()
    assert reloaded(db, item).assigned_agent_id is None

    # Unclaimed: answering claims it first.
    post = agent.respond(db, ana, item, "Please restart the phone with the SIM inserted.")
    db.commit()
    stored = reloaded(db, item)
    assert stored.assigned_agent_id == ana.id
    assert stored.status == EscalationStatus.ANSWERED
    assert stored.first_response_at == post.created_at
    answer = db.get(Post, post.id)
    assert answer is not None
    assert answer.is_official and answer.visibility == Visibility.VISIBLE
    assert stored.thread.status == ThreadStatus.ESCALATED
    announce_published(db)  # the worker's job, right after the answer
    heard = db.scalars(
        select(Notification).where(
            Notification.user_id == asker.id, Notification.post_id == post.id
        )
    ).all()
    assert [note.kind for note in heard] == [NotificationKind.ANSWER]
    assert len(audits(db, "escalation.answered", item)) == 1

    # The asker can accept the official answer.
    voting.accept(db, asker, post.id)
    db.commit()
    thread = db.get(Thread, stored.thread_id)
    assert thread is not None and thread.accepted_post_id == post.id


def test_a_late_first_response_is_recorded_as_a_breach_with_its_time_over(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana = make_user("ana", role=Role.AGENT)
    late = item.first_response_due_at + timedelta(minutes=7)
    with time_machine.travel(late, tick=False):
        agent.respond(db, ana, item, "Sorry for the wait: here is what to do.")
        db.commit()
    breach = db.scalars(select(SLABreach).where(SLABreach.escalation_id == item.id)).one()
    assert breach.kind == BreachKind.FIRST_RESPONSE
    assert breach.met_at == late and breach.seconds_over == 7 * 60
    assert breach.agent_id == ana.id


def test_only_the_holder_or_a_lead_answers_a_claimed_item(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana, bo = make_user("ana", role=Role.AGENT), make_user("bob", role=Role.AGENT)
    lead = make_user("lead", role=Role.ADMIN)
    agent.claim(db, ana, item)
    db.commit()
    with pytest.raises(PermissionDenied):
        agent.respond(db, bo, reloaded(db, item), "I can take this one.")
    db.rollback()
    post = agent.respond(db, lead, reloaded(db, item), "Lead here: this is a known issue.")
    db.commit()
    assert post.is_official
    assert reloaded(db, item).assigned_agent_id == ana.id  # the lead did not take it over


def test_asking_for_details_pauses_the_clock_until_the_author_replies(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    item = escalated(db, qa, asker)
    ana = make_user("ana", role=Role.AGENT)
    asked_at = utcnow() + timedelta(minutes=1)
    with time_machine.travel(asked_at, tick=False):
        post = agent.ask_details(db, ana, item, "Which phone model do you use?")
        db.commit()
    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.WAITING
    assert stored.waiting_since == asked_at
    assert stored.first_response_at == asked_at  # asking is a response too
    assert post.is_official
    assert "The support team needs more details" in post.body_source
    assert "Which phone model do you use?" in post.body_source
    notices = db.scalars(
        select(Notification).where(
            Notification.user_id == asker.id, Notification.post_id == post.id
        )
    ).all()
    assert [(note.kind, note.data) for note in notices] == [
        (NotificationKind.SUPPORT, {"message": "The support team needs more details"})
    ]
    due_before = agent.resolution_due(stored, asked_at)

    # While waiting the due time moves on with the clock: it cannot be breached.
    later = asked_at + timedelta(hours=3)
    assert agent.resolution_due(stored, later) == due_before + timedelta(hours=3)

    # The author's reply (published through the normal answer path) resumes the clock.
    with time_machine.travel(later, tick=False):
        qa.answer(asker, stored.thread, "A Pixel 8, bought last month.")
    resumed = reloaded(db, item)
    assert resumed.status == EscalationStatus.CLAIMED
    assert resumed.waiting_since is None
    assert resumed.paused_seconds == 3 * 3600
    assert agent.resolution_due(resumed, later + timedelta(days=1)) == due_before + timedelta(
        hours=3
    )


# --- hand-off, return, resolve ---------------------------------------------------------------


def test_hand_off_sends_the_whole_context_and_nothing_secret(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    asker.verified_customer = True
    db.commit()
    earlier = escalated(db, qa, asker, "Billing page shows the wrong plan")
    ana = make_user("ana", role=Role.AGENT)
    agent.resolve(db, ana, earlier, None)
    db.commit()

    item = escalated(db, qa, asker, body="No signal since the update, eSIM shows as inactive.")
    peer = make_user("peer")
    qa.answer(peer, item.thread, "Try removing and re-adding the eSIM profile.")
    spam = qa.answer(make_user("spammer"), item.thread, "Buy cheap phones at my shop")
    visibility.set_visibility(db, spam, Visibility.HIDDEN)
    db.commit()
    hook = add_webhook(db, item)

    agent.claim(db, ana, item)
    agent.hand_off(db, ana, item, "Needs a SIM swap in the billing system.")
    db.commit()

    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.HANDED_OFF
    assert len(audits(db, "escalation.handed_off", item)) == 1
    (delivery,) = _deliveries(db, "escalation.handed_off")
    assert delivery.webhook_id == hook.id and delivery.escalation_id == item.id
    payload = delivery.payload
    assert payload["escalation"]["id"] == item.id
    assert payload["escalation"]["reason"] == "author_request"
    assert payload["escalation"]["status"] == "handed_off"
    assert datetime.fromisoformat(payload["escalation"]["first_response_due_at"])
    assert payload["brand"]["slug"] == "acme"
    thread = payload["thread"]
    assert thread["id"] == item.thread_id and thread["url"] == f"/t/{item.thread_id}"
    assert thread["title"] == "My eSIM stopped working after the update"
    assert thread["triage"]["classifier"]  # triage ran when the question was published
    assert isinstance(thread["triage"]["reasons"], dict)
    bodies = [post["body"] for post in payload["posts"]]
    assert bodies[0] == "No signal since the update, eSIM shows as inactive."
    assert "Try removing and re-adding the eSIM profile." in bodies
    assert not any("cheap phones" in body for body in bodies)  # hidden posts stay out
    assert payload["posts"][1]["author"] == {"username": "peer", "display_name": "peer"}
    author = payload["author"]
    assert author["username"] == "asker" and author["verified_customer"] is True
    assert author["segment"] in {segment.value for segment in Segment}
    assert {"reputation", "trust_level", "member_since", "display_name"} <= set(author)
    assert [entry["id"] for entry in payload["earlier_escalations"]] == [earlier.id]
    assert payload["handoff"]["note"] == "Needs a SIM swap in the billing system."
    assert payload["handoff"]["agent"]["username"] == "ana"

    text = json.dumps(payload)  # JSON as it will be sent
    assert "@example.com" not in text and WEBHOOK_SECRET not in text and "$argon2" not in text
    forbidden = {"email", "email_key", "password_hash", "ip", "secret", "token_hash", "token"}
    assert not forbidden & _keys(payload)

    # A public update meanwhile leaves it with the helpdesk; resolving it then counts as a
    # helpdesk resolution.
    agent.respond(db, ana, stored, "Our billing team is on it.")
    db.commit()
    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.HANDED_OFF
    agent.resolve(db, ana, stored, None)
    db.commit()
    assert reloaded(db, item).resolution == Resolution.HELPDESK
    # (The earlier escalation was resolved before the webhook existed: nothing for it.)
    assert [delivery.escalation_id for delivery in _deliveries(db, "escalation.resolved")] == [
        item.id
    ]


def test_return_to_community_reopens_the_thread(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    answered = escalated(db, qa, asker, "Roaming does not work in France")
    qa.answer(make_user("peer"), answered.thread, "Turn on data roaming in Settings.")
    lonely = escalated(db, qa, asker, "Voicemail greeting is in the wrong language")
    add_webhook(db, answered)
    ana, bo = make_user("ana", role=Role.AGENT), make_user("bob", role=Role.AGENT)
    agent.claim(db, ana, answered)
    db.commit()
    assert reloaded(db, answered).thread.status == ThreadStatus.ESCALATED

    with pytest.raises(PermissionDenied):
        agent.return_to_community(db, bo, reloaded(db, answered), None)
    db.rollback()
    agent.return_to_community(db, ana, reloaded(db, answered), "Peers have it covered.")
    db.commit()
    agent.return_to_community(db, bo, reloaded(db, lonely), None)  # unclaimed: any agent
    db.commit()

    stored = reloaded(db, answered)
    assert stored.status == EscalationStatus.RETURNED
    assert stored.resolution == Resolution.RETURNED and stored.resolved_at is not None
    assert stored.thread.status == ThreadStatus.ANSWERED
    assert reloaded(db, lonely).thread.status == ThreadStatus.OPEN
    (entry,) = audits(db, "escalation.returned", answered)
    assert entry.reason == "Peers have it covered."
    deliveries = _deliveries(db, "escalation.returned")
    assert {delivery.escalation_id for delivery in deliveries} == {answered.id, lonely.id}
    with pytest.raises(Conflict):
        agent.respond(db, ana, stored, "One more thing...")


def test_resolve_thanks_the_community_only_when_peers_answered(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    helped = escalated(db, qa, asker, "Cannot activate the new SIM card")
    qa.answer(make_user("peer"), helped.thread, "Activation takes up to two hours.")
    alone = escalated(db, qa, asker, "Invoice PDF does not download")
    noted = escalated(db, qa, asker, "Hotspot disconnects after five minutes")
    ana = make_user("ana", role=Role.AGENT)
    agent.respond(db, ana, alone, "We fixed the download link.")
    db.commit()

    def posts(item: Escalation) -> list[Post]:
        return list(
            db.scalars(select(Post).where(Post.thread_id == item.thread_id).order_by(Post.id))
        )

    for item, note in (
        (helped, None),
        (alone, None),
        (noted, "Fixed on our side; it works again."),
    ):
        agent.resolve(db, ana, reloaded(db, item), note)
        db.commit()

    thanks = posts(helped)[-1]
    assert thanks.is_official
    assert thanks.body_source == (
        "Thanks to everyone in the community who helped with this question."
    )
    assert [post.body_source for post in posts(alone)][-1] == "We fixed the download link."
    assert posts(noted)[-1].body_source == "Fixed on our side; it works again."
    for item, status in ((helped, ThreadStatus.ANSWERED), (alone, ThreadStatus.ANSWERED)):
        stored = reloaded(db, item)
        assert stored.status == EscalationStatus.RESOLVED
        assert stored.resolution == Resolution.AGENT and stored.resolved_at is not None
        assert stored.thread.status == status
        assert len(audits(db, "escalation.resolved", item)) == 1
    with pytest.raises(Conflict):
        agent.resolve(db, ana, reloaded(db, helped), None)


def test_a_late_resolution_records_its_time_over(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana = make_user("ana", role=Role.AGENT)
    agent.respond(db, ana, item, "Looking into it.")
    db.commit()
    late = reloaded(db, item).resolution_due_at + timedelta(minutes=30)
    with time_machine.travel(late, tick=False):
        agent.resolve(db, ana, reloaded(db, item), None)
        db.commit()
    breach = db.scalars(
        select(SLABreach).where(
            SLABreach.escalation_id == item.id, SLABreach.kind == BreachKind.RESOLUTION
        )
    ).one()
    assert breach.met_at == late and breach.seconds_over == 30 * 60


# --- the queue -------------------------------------------------------------------------------


def test_queue_order_filters_and_counts(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker, ana, bo = (
        make_user("asker"),
        make_user("ana", role=Role.AGENT),
        make_user("bob", role=Role.AGENT),
    )
    billing = Forum(brand_id=qa.forum.brand_id, slug="billing", name="Billing")
    db.add(billing)
    db.commit()
    billing_qa = QA(db=db, forum=billing)
    now = utcnow().replace(microsecond=0)

    soon = escalated(db, qa, asker, "Calls drop when I switch to 5G")
    late = escalated(db, qa, asker, "Phone shows no service since this morning")
    answered = escalated(db, qa, asker, "Cannot receive texts from short codes")
    waiting = escalated(db, qa, asker, "Visual voicemail is empty")
    spanish = escalated(db, billing_qa, asker, "Me han cobrado dos veces la factura")
    hidden = escalated(db, qa, asker, "Hidden thread about an old phone")
    done = escalated(db, qa, asker, "Resolved thread about a charger")
    agent.claim(db, ana, answered)
    agent.claim(db, ana, waiting)
    agent.resolve(db, bo, done, None)
    db.flush()

    def set_item(item: Escalation, priority: Priority, **values: object) -> None:
        item.priority = priority
        for name, value in values.items():
            setattr(item, name, value)

    set_item(soon, Priority.P2, first_response_due_at=now + timedelta(minutes=10))
    set_item(late, Priority.P3, first_response_due_at=now - timedelta(minutes=5))
    set_item(
        answered,
        Priority.P1,
        status=EscalationStatus.ANSWERED,
        first_response_at=now - timedelta(minutes=20),
        first_response_due_at=now - timedelta(minutes=30),
        resolution_due_at=now + timedelta(hours=1),
    )
    set_item(
        waiting,
        Priority.P4,
        status=EscalationStatus.WAITING,
        first_response_at=now - timedelta(hours=3),
        waiting_since=now - timedelta(hours=2),
        # Due 90 minutes ago on the wall clock, but two hours of waiting move it on.
        resolution_due_at=now - timedelta(minutes=90),
    )
    set_item(spanish, Priority.P3, first_response_due_at=now + timedelta(hours=2))
    spanish.thread.locale = "es"
    spanish.thread.interaction_type = "complaint"
    set_item(hidden, Priority.P1, first_response_due_at=now - timedelta(hours=5))
    hidden.thread.visibility = Visibility.HIDDEN
    db.commit()
    brand = qa.forum.brand

    def ids(filters: QueueFilters, viewer: User = ana) -> list[int]:
        listing = agent.queue(db, viewer, brand, filters, now=now)
        return [item.escalation.id for item in listing.items]

    listing = agent.queue(db, ana, brand, QueueFilters(), now=now)
    assert [item.escalation.id for item in listing.items] == [
        late.id,
        soon.id,
        waiting.id,
        answered.id,
        spanish.id,
    ]
    first = listing.items[0]
    assert first.breached and first.seconds_left == -300
    assert first.due_kind == BreachKind.FIRST_RESPONSE
    assert first.title == "Phone shows no service since this morning"
    assert first.forum_slug == "mobile" and first.assignee is None
    by_id = {item.escalation.id: item for item in listing.items}
    assert by_id[answered.id].due_kind == BreachKind.RESOLUTION
    assert by_id[answered.id].seconds_left == 3600
    assignee = by_id[answered.id].assignee
    assert assignee is not None and assignee.username == "ana"
    assert by_id[waiting.id].seconds_left == 30 * 60 and not by_id[waiting.id].breached
    assert by_id[spanish.id].language == "es" and by_id[spanish.id].forum_name == "Billing"
    assert listing.total == 5
    # The heading's counts: the whole active queue on visible threads (figures.workload).
    counts = figures.workload(db, ana, brand, now=now)
    assert counts.per_state == {
        "open": 3,
        "claimed": 0,
        "answered": 1,
        "waiting": 1,
        "handed_off": 0,
    }
    assert counts.overdue == 1
    assert (counts.mine, counts.overdue_mine, counts.unclaimed, counts.total) == (2, 0, 3, 5)

    assert ids(QueueFilters(scope="mine")) == [waiting.id, answered.id]
    assert ids(QueueFilters(scope="mine"), viewer=bo) == []
    assert ids(QueueFilters(scope="unclaimed")) == [late.id, soon.id, spanish.id]
    assert ids(QueueFilters(scope="breached")) == [late.id]
    assert ids(QueueFilters(priority=Priority.P1)) == [answered.id]
    assert ids(QueueFilters(forum="billing")) == [spanish.id]
    assert ids(QueueFilters(language="es")) == [spanish.id]
    assert ids(QueueFilters(interaction_type="complaint")) == [spanish.id]
    assert ids(QueueFilters(statuses=frozenset({EscalationStatus.RESOLVED}))) == [done.id]
    assert ids(QueueFilters(statuses=frozenset({EscalationStatus.WAITING}))) == [waiting.id]


def test_queue_filters_from_a_query_string_ignore_nonsense() -> None:
    parsed = QueueFilters.from_params(
        {"priority": "P9", "scope": "everything", "status": "bogus,waiting", "forum": "x" * 500}
    )
    assert parsed.priority is None and parsed.scope == "all"
    assert parsed.statuses == frozenset({EscalationStatus.WAITING})
    assert parsed.forum == "x" * 60
    assert QueueFilters.from_params({}).statuses == agent.ACTIVE_STATUSES
    good = QueueFilters.from_params({"priority": "P1", "scope": "mine", "language": "es"})
    assert (good.priority, good.scope, good.language) == (Priority.P1, "mine", "es")


# --- one item's context, similar entries, linking --------------------------------------------


def test_item_context_and_similar_entries_from_meilisearch(
    db: Session,
    qa: QA,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    tmp_path: Path,
    database_url: str,
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
    older = qa.ask(asker, title="How do I change my router's Wi-Fi password?")
    item = escalated(db, qa, asker, "My router reboots every night, why?")
    hidden = qa.answer(make_user("troll"), item.thread, "Throw it out of the window")
    visibility.set_visibility(db, hidden, Visibility.HIDDEN)
    db.commit()
    drain(Worker(settings, make_session_factory(engine)))
    fresh(db)
    stored = reloaded(db, item)

    context = agent.item_context(db, stored)
    assert context.thread.id == item.thread_id
    assert [post.visibility for post in context.posts] == [Visibility.VISIBLE, Visibility.HIDDEN]
    assert context.author is not None and context.author.id == asker.id
    assert isinstance(context.segment, Segment) and "because" in context.segment_reasons
    assert older.id in [thread.id for thread in context.recent_threads]
    assert item.thread_id not in [thread.id for thread in context.recent_threads]
    assert context.triage is not None
    assert context.due_kind == BreachKind.FIRST_RESPONSE and context.seconds_left > 0

    entries = agent.similar_entries(SearchEngine(settings), db, stored)
    urls = [entry["url"] for entry in entries]
    assert f"/t/{solved.id}" in urls
    assert f"/t/{item.thread_id}" not in urls
    found = entries[urls.index(f"/t/{solved.id}")]
    assert found["title"] == "Router reboots every night at midnight"

    # One click: link it as the answer.
    ana = make_user("ana", role=Role.AGENT)
    post = agent.link_answer(db, ana, stored, found["link"])
    db.commit()
    assert post.is_official
    assert f"[Router reboots every night at midnight](/t/{solved.id})" in post.body_source
    assert f'href="/t/{solved.id}"' in post.body_html

    # Meilisearch unreachable: the page still gets a list (the database fallback), no error.
    down = SearchEngine(make_settings(tmp_path, database_url, "http://127.0.0.1:9"))
    fallback = agent.similar_entries(down, db, stored)
    assert f"/t/{item.thread_id}" not in [entry["url"] for entry in fallback]


def test_link_answer_to_a_live_article_of_the_brand(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    brand_id = item.brand_id
    live = Article(
        brand_id=brand_id,
        title="Moving your number to an eSIM [guide]",
        body_source="Steps.",
        body_html="<p>Steps.</p>",
        status=ArticleStatus.PUBLISHED,
    )
    draft = Article(
        brand_id=brand_id,
        title="Unfinished draft",
        body_source="Soon.",
        body_html="<p>Soon.</p>",
        status=ArticleStatus.DRAFT,
    )
    db.add_all([live, draft])
    db.commit()
    ana = make_user("ana", role=Role.AGENT)

    for bad in ("", "hello", "https://elsewhere.example/page"):
        with pytest.raises(FormErrors):
            agent.link_answer(db, ana, item, bad)
    for missing in (f"/kb/articles/{draft.id}", "article:99999", f"/t/{item.thread_id}"):
        with pytest.raises(NotFound):
            agent.link_answer(db, ana, item, missing)
    db.rollback()

    post = agent.link_answer(db, ana, item, f"https://community.example/kb/articles/{live.id}?x=1")
    db.commit()
    assert f"(/kb/articles/{live.id})" in post.body_source
    assert r"Moving your number to an eSIM \[guide\]" in post.body_source
    assert f'href="/kb/articles/{live.id}"' in post.body_html
    assert reloaded(db, item).status == EscalationStatus.ANSWERED


# --- figures ---------------------------------------------------------------------------------


def test_agent_figures(db: Session, qa: QA, make_user: UserFactory) -> None:
    since = utcnow() - timedelta(minutes=1)
    asker = make_user("asker")
    ana, bo = make_user("ana", role=Role.AGENT), make_user("bob", role=Role.AGENT)
    quick = escalated(db, qa, asker, "Data is slow in the evenings")
    slow = escalated(db, qa, asker, "Cannot port my number from another carrier")
    other = escalated(db, qa, asker, "App crashes when opening invoices")
    quick_at = quick.created_at + timedelta(minutes=2)
    with time_machine.travel(quick_at, tick=False):
        agent.respond(db, ana, quick, "Known congestion; a fix is planned.")
        db.commit()
    slow_at = slow.first_response_due_at + timedelta(minutes=5)
    with time_machine.travel(slow_at, tick=False):
        agent.respond(db, ana, slow, "Sorry for the wait.")
        agent.resolve(db, ana, slow, None)
        agent.claim(db, bo, other)
        db.commit()

    brand = qa.forum.brand
    now = utcnow()
    mine = figures.agent_figures(db, ana, brand, since=since, now=now)
    assert mine.claimed == 2
    assert mine.resolved == 1
    assert mine.responses == 2
    waits = [(quick_at - quick.created_at), (slow_at - slow.created_at)]
    expected = statistics.median(wait.total_seconds() for wait in waits)
    assert mine.median_first_response_seconds == int(expected)
    priority = reloaded(db, slow).priority.value
    assert mine.breaches == figures.BreachTotals(count=1, seconds_over=300)
    assert mine.breaches_per_priority[priority] == figures.BreachTotals(1, 300)
    assert figures.agent_figures(db, bo, brand, since=since, now=now).claimed == 1
    assert db.scalar(select(func.count()).select_from(SLABreach)) == 1
