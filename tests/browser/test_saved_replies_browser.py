"""Saved replies in Chromium: an agent focuses the answer box's search (the most used replies
appear), types to narrow it (accents ignored), inserts one with the keyboard, and the box holds
the reply filled for the thread with its suggested action as the main button; sending it asks
the author for details and counts one use."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from community.core.models import Role, User
from crowdservice.models import EscalationStatus
from crowdservice.saved_replies import service
from tests.browser.conftest import PageProblems
from tests.browser.test_agent_browser import sign_in
from tests.conftest import QA, LiveServer
from tests.crowdservice.helpers import escalated, reloaded

pytestmark = pytest.mark.browser


def test_an_agent_finds_inserts_and_sends_a_saved_reply(
    page: Page,
    problems: PageProblems,
    live_server: LiveServer,
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
) -> None:
    admin = make_user("lead", role=Role.ADMIN)
    agent = make_user("agent_ada", role=Role.AGENT)
    brand = qa.forum.brand
    order = service.create_reply(
        db, admin, brand,
        service.ReplyFields(
            title="Ask for the order number", locale="en", action="ask_details",
            body="Hi {author_name}, what is the order number for “{thread_title}”?",
        ),
    )  # fmt: skip
    service.create_reply(
        db, admin, brand,
        service.ReplyFields(title="Número de pedido", locale="es", body="Hola {author_name}"),
    )  # fmt: skip
    db.commit()
    item = escalated(db, qa, make_user("maria"), "Where is my parcel")

    sign_in(page, live_server, agent, f"/agent/escalations/{item.id}")
    expect(page.locator("#item-title")).to_have_text("Where is my parcel")
    search = page.get_by_role("searchbox", name="Saved replies")
    search.focus()  # the first focus lists the most used replies, the thread's language first
    matches = page.locator("#saved-reply-matches li")
    expect(matches).to_have_count(2)
    expect(matches.first).to_contain_text("Ask for the order number")
    search.fill("PEDIDO")
    expect(matches).to_have_count(1)
    expect(matches.first).to_contain_text("Número de pedido")
    search.fill("order")
    expect(matches).to_have_count(1)

    page.get_by_role("link", name="Insert Ask for the order number").focus()
    page.keyboard.press("Enter")
    box = page.get_by_label("Public answer (Markdown)")
    expect(box).to_have_value("Hi maria, what is the order number for “Where is my parcel”?")
    expect(box).to_be_focused()
    buttons = page.locator("#answer-box button[type=submit]")
    expect(buttons.first).to_have_text("Ask for details (pauses the clock)")
    assert reloaded(db, order).usage_count == 0

    box.fill("Hi maria, which order number is it?")
    buttons.first.click()
    expect(
        page.get_by_role("status").filter(
            has_text="Asked for details; the resolution clock is paused."
        )
    ).to_be_visible()
    assert reloaded(db, item).status == EscalationStatus.WAITING
    assert reloaded(db, order).usage_count == 1
    assert problems.messages == []
