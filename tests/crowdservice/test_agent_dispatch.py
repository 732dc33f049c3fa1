"""The workspace's action table: the item page's buttons are exactly its names, a name not in
it is a 404 whatever the escalation, and each name runs its action with the form fields it
reads and answers the agent's message."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.errors import FormErrors, NotFound
from community.core.models import Brand, Forum, Post, Role, User
from community.core.workspace_models import BrandRole, StaffGrant
from crowdservice import agent
from crowdservice.agent import ActionForm
from crowdservice.models import EscalationStatus
from tests.conftest import QA, csrf_token, log_in
from tests.crowdservice.helpers import escalated, reloaded, solved_thread

UserFactory = Callable[..., User]
TEMPLATE = Path(__file__).resolve().parents[2] / "templates" / "crowdservice" / "agent_item.html"


def test_the_item_page_offers_exactly_the_actions_of_the_table() -> None:
    # The answer box (respond, ask, answer and resolve) is a partial of the item page.
    source = TEMPLATE.read_text() + (TEMPLATE.parent / "_answer_box.html").read_text()
    offered = set(re.findall(r"url\('agent_action', [^)]*action='(\w+)'\)", source))
    assert offered == set(agent.ACTION_HANDLERS)
    assert len(agent.ACTION_HANDLERS) == 9


def test_an_unknown_action_is_refused_before_anything_runs(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana = make_user("ana", role=Role.AGENT)
    for unknown in ("explode", "", "CLAIM", "claim "):
        with pytest.raises(NotFound):
            agent.require_known_action(unknown)
        with pytest.raises(NotFound):
            agent.perform(db, ana, item, unknown, ActionForm())
    assert reloaded(db, item).status == EscalationStatus.OPEN


def test_an_unknown_action_is_a_404_even_on_an_escalation_that_does_not_exist(
    db: Session, qa: QA, make_user: UserFactory, make_client: Callable[[], TestClient]
) -> None:
    item = escalated(db, qa, make_user("asker"))
    make_user("ana", role=Role.AGENT)
    browser = make_client()
    log_in(browser, "ana")
    token = csrf_token(browser, f"/agent/escalations/{item.id}")
    for escalation_id in (item.id, item.id + 1000):
        response = browser.post(
            f"/agent/escalations/{escalation_id}/explode",
            data={"csrf_token": token},
            follow_redirects=False,
        )
        assert response.status_code == 404
    assert reloaded(db, item).status == EscalationStatus.OPEN


def test_claim_release_and_reassign(db: Session, qa: QA, make_user: UserFactory) -> None:
    item = escalated(db, qa, make_user("asker"))
    ana, lead = make_user("ana", role=Role.AGENT), make_user("lead", role=Role.ADMIN)
    ana.display_name = "Ana from Support"
    db.commit()

    assert agent.perform(db, ana, item, "claim", ActionForm()) == "It is yours."
    db.commit()
    assert reloaded(db, item).assigned_agent_id == ana.id

    assert agent.perform(db, ana, item, "release", ActionForm()) == "Released to the queue."
    db.commit()
    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.OPEN and stored.assigned_agent_id is None

    with pytest.raises(FormErrors) as nobody:
        agent.perform(db, lead, stored, "reassign", ActionForm(to="no-such-agent"))
    assert set(nobody.value.errors) == {"agent"}
    # The name as typed: spaces around it and any case.
    message = agent.perform(db, lead, stored, "reassign", ActionForm(to="  ANA "))
    db.commit()
    assert message == "Reassigned to Ana from Support."
    assert reloaded(db, item).assigned_agent_id == ana.id


def test_respond_and_ask_need_a_text_and_post_it(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    answered, asked = escalated(db, qa, asker), escalated(db, qa, asker, "Roaming is off")
    ana = make_user("ana", role=Role.AGENT)
    for action in ("respond", "ask"):
        with pytest.raises(FormErrors) as empty:
            agent.perform(db, ana, answered, action, ActionForm(body="   ", note="not this"))
        assert set(empty.value.errors) == {"body"}
    db.rollback()
    assert reloaded(db, answered).assigned_agent_id is None  # refused before claiming

    message = agent.perform(db, ana, answered, "respond", ActionForm(body=" Restart it. "))
    db.commit()
    assert message == "Your answer is on the thread."
    assert reloaded(db, answered).status == EscalationStatus.ANSWERED
    message = agent.perform(db, ana, asked, "ask", ActionForm(body="Which phone is it?"))
    db.commit()
    assert message == "Asked for details; the resolution clock is paused."
    assert reloaded(db, asked).status == EscalationStatus.WAITING
    bodies = sorted(db.scalars(select(Post.body_source).where(Post.author_id == ana.id)))
    assert bodies[0] == "**The support team needs more details**\n\nWhich phone is it?"
    assert bodies[1] == "Restart it."  # the body stripped


def test_handoff_return_and_resolve_take_the_note(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    items = {
        action: escalated(db, qa, asker, f"Question for {action}")
        for action in ("handoff", "return", "resolve")
    }
    ana = make_user("ana", role=Role.AGENT)
    expected = {
        "handoff": ("Handed off to the helpdesk.", EscalationStatus.HANDED_OFF),
        "return": ("Returned to the community.", EscalationStatus.RETURNED),
        "resolve": ("Resolved.", EscalationStatus.RESOLVED),
    }
    for action, item in items.items():
        form = ActionForm(body="not this", note=f"Note for {action}")
        message = agent.perform(db, ana, agent.access_escalation(db, ana, item.id), action, form)
        db.commit()
        assert (message, reloaded(db, item).status) == expected[action]


def test_link_answers_with_the_link_field(db: Session, qa: QA, make_user: UserFactory) -> None:
    asker, helper = make_user("asker"), make_user("helper")
    item = escalated(db, qa, asker)
    solved = solved_thread(
        db, qa, asker, helper, "eSIM lost after update", "Re-download it in Settings."
    )
    ana = make_user("ana", role=Role.AGENT)

    message = agent.perform(db, ana, item, "link", ActionForm(body="x", link=f"/t/{solved.id}"))
    db.commit()
    assert message == "Linked on the thread."
    stored = reloaded(db, item)
    assert stored.status == EscalationStatus.ANSWERED
    linked = db.scalars(
        select(Post).where(Post.thread_id == stored.thread_id, Post.author_id == ana.id)
    ).one()
    assert f"(/t/{solved.id})" in linked.body_source


def test_the_agents_to_reassign_to_are_active_agents_and_admins(
    db: Session, make_user: UserFactory, forum: Forum
) -> None:
    make_user("zed", role=Role.AGENT)
    make_user("amy", role=Role.ADMIN)
    make_user("modsam", role=Role.MODERATOR)
    make_user("member")
    gone = make_user("gone", role=Role.AGENT)
    gone.deactivated_at = gone.created_at
    other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(other)
    db.flush()
    # The brand's own agents and admins too; another brand's agents are not.
    for name, brand_id, role in [
        ("bob", forum.brand_id, BrandRole.AGENT),
        ("bea", forum.brand_id, BrandRole.BRAND_ADMIN),
        ("mona", forum.brand_id, BrandRole.MODERATOR),
        ("gil", other.id, BrandRole.AGENT),
    ]:
        db.add(StaffGrant(user_id=make_user(name).id, brand_id=brand_id, role=role))
    db.commit()
    names = [person.username for person in agent.assignable_agents(db, forum.brand_id)]
    assert names == ["amy", "bea", "bob", "zed"]
