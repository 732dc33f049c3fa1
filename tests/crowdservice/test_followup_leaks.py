"""What is written in private stays private: a unique word in the private messages is on no
public surface, while the public outcome of the same conversation is (so each search and page
checked here is shown to work). Surfaces: the thread page (anonymous, another member), the
thread API, the real Meilisearch (search API and page, after the real worker indexed
everything), the KB article editor prefilled from the thread, the notification list and its
API, and the e-mail the real SMTP server receives."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from email.message import Message

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from community import voting
from community.core.models import Post, Role, Thread, User
from community.worker import Worker
from crowdservice.followup import service as followup
from tests.conftest import QA, Inbox, csrf_token, drain, fresh, log_in

UserFactory = Callable[..., User]
ClientFactory = Callable[[], TestClient]
# Words no other text holds, so finding one anywhere means it leaked.
PRIVATE_STAFF = "quokkaledger"
PRIVATE_CUSTOMER = "wombatstreet"
PUBLIC_OUTCOME = "narwhalrefund"
PUBLIC_TITLE = "Pangolin tariff charged twice"
PRIVATE_WORDS = (PRIVATE_STAFF, PRIVATE_CUSTOMER)


def _leaks(text: str) -> list[str]:
    return [word for word in PRIVATE_WORDS if word in text]


def _hit_urls(result: dict[str, object]) -> list[str]:
    hits = result.get("hits")
    assert isinstance(hits, list), result
    return [str(hit["url"]) for hit in hits]


def _result_links(html: str) -> list[str]:
    return re.findall(r'<h2><a href="([^"]+)">', html)


def _mail_text(message: Message) -> str:
    parts = [str(message["Subject"] or "")]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            parts.append(payload.decode() if isinstance(payload, bytes) else "")
    return "\n".join(parts)


@pytest.fixture
def ended(
    db: Session, qa: QA, make_user: UserFactory, mail_worker: Callable[[], Worker]
) -> tuple[Thread, int, Post]:
    """A thread continued in private (both sides wrote the private words), closed with a
    public outcome the customer accepted; then the worker indexed and mailed everything."""
    customer = make_user("customer1")
    agent = make_user("agent1", role=Role.AGENT)
    thread = qa.ask(customer, title=PUBLIC_TITLE, body="My bill shows the tariff twice.")
    conversation = followup.open_followup(
        db, agent, thread, f"Your contract {PRIVATE_STAFF} shows two lines."
    )
    db.commit()
    followup.reply(
        db, customer, followup.access_conversation(db, customer, conversation.id),
        f"I live at 12 {PRIVATE_CUSTOMER}, Springfield.",
    )  # fmt: skip
    db.commit()
    outcome = followup.close(
        db, agent, followup.access_conversation(db, agent, conversation.id),
        f"We removed the duplicate line ({PUBLIC_OUTCOME}); the refund follows.",
    )  # fmt: skip
    db.commit()
    assert outcome is not None
    voting.accept(db, customer, outcome.id)
    db.commit()
    drain(mail_worker())
    fresh(db)
    return thread, conversation.id, outcome


def test_private_words_reach_no_public_surface(
    ended: tuple[Thread, int, Post],
    make_user: UserFactory,
    make_client: ClientFactory,
) -> None:
    thread, conversation_id, _outcome = ended
    anonymous = make_client()
    member = make_client()
    log_in(member, make_user("member1").username)
    for browser in (anonymous, member):
        page = browser.get(f"/t/{thread.id}").text
        assert PUBLIC_OUTCOME in page and "Continued in private with the support team." in page
        assert _leaks(page) == []
        assert f"/private/{conversation_id}" not in page
        api = browser.get(f"/api/v1/threads/{thread.id}")
        assert PUBLIC_OUTCOME in api.text and _leaks(api.text) == []
        for post in api.json()["answers"] + [api.json()["question"]]:
            assert _leaks(str(post)) == []

    # Search: the real index has the thread (the outcome finds it), never the private words.
    found = anonymous.get(f"/api/v1/brands/acme/search?scope=community&q={PUBLIC_OUTCOME}").json()
    assert found["degraded"] is False and f"/t/{thread.id}" in _hit_urls(found)
    for word in PRIVATE_WORDS:
        for scope in ("community", "kb"):
            result = anonymous.get(f"/api/v1/brands/acme/search?scope={scope}&q={word}")
            assert result.status_code == 200, scope
            assert _hit_urls(result.json()) == [], (word, scope)
        page = anonymous.get(f"/b/acme/search?scope=community&q={word}")
        assert page.status_code == 200 and "reduced mode" not in page.text
        assert _result_links(page.text) == [], word
    assert f"/t/{thread.id}" in _result_links(
        anonymous.get(f"/b/acme/search?scope=community&q={PUBLIC_OUTCOME}").text
    )
    everything = anonymous.get(
        "/api/v1/brands/acme/search?scope=community&forum=mobile&per_page=50"
    )
    assert _leaks(everything.text) == []


def test_the_kb_editor_never_offers_private_words(
    ended: tuple[Thread, int, Post], make_user: UserFactory, make_client: ClientFactory
) -> None:
    thread, _conversation_id, _outcome = ended
    curator = make_client()
    log_in(curator, make_user("curator1", role=Role.AGENT).username)
    editor = curator.get("/b/acme/kb/new", params={"thread": thread.id})
    assert editor.status_code == 200
    assert PUBLIC_OUTCOME in editor.text  # the accepted outcome is what the editor offers
    assert _leaks(editor.text) == []
    candidates = curator.get("/api/v1/brands/acme/kb/candidates")
    assert candidates.status_code == 200 and _leaks(candidates.text) == []
    # Promoting: the article saved from what the editor offered holds no private word.
    body = re.search(r'<textarea[^>]*name="body"[^>]*>([^<]*)</textarea>', editor.text)
    assert body is not None and PUBLIC_OUTCOME in body.group(1)
    saved = curator.post(
        "/b/acme/kb/new",
        data={
            "csrf_token": csrf_token(curator, "/"),
            "title": "Tariff charged twice on the bill",
            "summary": "Why a tariff shows twice and how it is refunded",
            "body": html.unescape(body.group(1)),
            "tags": "billing",
            "locale": "en",
            "source_thread_id": str(thread.id),
            "action": "save",
        },
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text[:300]
    article = curator.get(saved.headers["location"])
    assert PUBLIC_OUTCOME in article.text and _leaks(article.text) == []


def test_notifications_and_e_mail_carry_the_address_not_the_words(
    ended: tuple[Thread, int, Post],
    smtp: tuple[Inbox, int],
    make_client: ClientFactory,
) -> None:
    _thread, conversation_id, _outcome = ended
    inbox, _port = smtp
    customer = make_client()
    log_in(customer, "customer1")
    listing = customer.get("/notifications").text
    assert "The support team wrote to you in private about" in listing
    assert _leaks(listing) == []
    api = customer.get("/api/v1/notifications").json()
    private = [item for item in api["items"] if item["kind"] == "private_message"]
    assert private and all(_leaks(str(item)) == [] for item in private)

    agent = make_client()
    log_in(agent, "agent1")
    staff_listing = agent.get("/notifications").text
    assert "replied in private about" in staff_listing and _leaks(staff_listing) == []

    to_customer = [_mail_text(message) for message in inbox.to("customer1@example.com")]
    to_agent = [_mail_text(message) for message in inbox.to("agent1@example.com")]
    about = [text for text in to_customer if f"/private/{conversation_id}" in text]
    assert about, to_customer
    assert any("https://support.example/private/" in text for text in about)
    assert [text for text in to_agent if f"/private/{conversation_id}" in text], to_agent
    for text in to_customer + to_agent:
        assert _leaks(text) == [], text
    assert PUBLIC_TITLE in "\n".join(about)  # the subject names the thread, not the message
