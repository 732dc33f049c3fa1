"""KB articles: drafted from a thread by agents, personal data flagged and redacted, versions,
publishing into the index, freshness reviews, obsolescence and reader feedback."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
import time_machine
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community import voting
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.models import Brand, Forum, Role, Thread, User
from community.core.settings import Settings
from community.worker import Worker
from kb import article_feedback, pii, service
from kb.models import Article, ArticleStatus, ArticleVersion
from kb.schemas import ArticleCreateIn
from kb.views import ArticleViews
from tests.conftest import QA, csrf_token, drain, fresh, log_in

UserFactory = Callable[..., User]
RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]


@pytest.fixture
def solved(db: Session, qa: QA, make_user: UserFactory) -> Thread:
    asker = make_user("asker")
    asker.display_name = "Maria Lopez"
    db.commit()
    thread = qa.ask(
        asker,
        title="Voicemail greeting will not save",
        body="Hi, I'm Maria. My account number: ACC-778812. Call me on +34 612 345 678.",
        tags=["voicemail"],
    )
    good = qa.answer(make_user("helper"), thread, "Dial 121, press 3, record, then press #.")
    qa.answer(make_user("other"), thread, "Restart the phone.")
    voting.accept(db, asker, good.id)
    db.commit()
    return thread


def _agent(as_role: RoleClient) -> tuple[TestClient, str]:
    browser, _user = as_role(Role.AGENT)
    return browser, csrf_token(browser, "/")


def test_editor_is_prefilled_from_the_thread_and_flags_personal_data(
    as_role: RoleClient, solved: Thread
) -> None:
    browser, _token = _agent(as_role)
    editor = browser.get("/b/acme/kb/new", params={"thread": solved.id})
    assert editor.status_code == 200
    assert 'value="Voicemail greeting will not save"' in editor.text
    assert "Dial 121, press 3, record, then press #." in editor.text
    assert "Restart the phone." not in editor.text  # only the accepted or upvoted answers
    assert "order or account number" in editor.text and "ACC-778812" in editor.text
    assert "phone number" in editor.text and "name of a person" in editor.text


def test_saving_with_personal_data_asks_first_then_redacts(
    as_role: RoleClient, solved: Thread, db: Session
) -> None:
    browser, token = _agent(as_role)
    form = {
        "csrf_token": token,
        "title": "Record your voicemail greeting",
        "summary": "How to save a greeting",
        "body": "Ask Maria Lopez (maria@example.com) or dial 121, press 3.",
        "tags": "voicemail",
        "locale": "en",
        "source_thread_id": str(solved.id),
    }
    held = browser.post("/b/acme/kb/new", data=form | {"action": "save"})
    assert held.status_code == 200
    assert "personal data" in held.text
    assert db.scalars(select(Article)).first() is None  # nothing saved yet

    saved = browser.post("/b/acme/kb/new", data=form | {"action": "redact"}, follow_redirects=False)
    assert saved.status_code == 303
    fresh(db)
    article = db.scalars(select(Article)).one()
    assert "maria@example.com" not in article.body_source
    assert "Maria Lopez" not in article.body_source
    assert "[e-mail removed]" in article.body_source and "[name removed]" in article.body_source
    assert article.status == ArticleStatus.DRAFT
    assert article.source_thread_id == solved.id
    assert db.scalars(select(AuditLog).where(AuditLog.action == "kb.article_created")).one()


def test_publish_index_version_history_and_thread_link(
    as_role: RoleClient,
    solved: Thread,
    db: Session,
    make_client: Callable[[], TestClient],
    settings: Settings,
    engine: Engine,
) -> None:
    browser, token = _agent(as_role)
    answer_id = db.scalars(select(Thread.accepted_post_id).where(Thread.id == solved.id)).one()
    created = browser.post(
        "/b/acme/kb/new",
        data={
            "csrf_token": token,
            "title": "Record your voicemail greeting",
            "summary": "Save a greeting in three steps",
            "body": "1. Dial 121\n2. Press 3\n3. Record and press #",
            "tags": "voicemail",
            "locale": "en",
            "source_thread_id": str(solved.id),
            "credited": [str(answer_id)],
            "action": "save",
        },
        follow_redirects=False,
    )
    article_id = int(created.headers["location"].rsplit("/", 1)[1])
    reader = make_client()
    assert reader.get(f"/kb/articles/{article_id}").status_code == 404  # drafts stay private

    browser.post(
        f"/kb/articles/{article_id}/edit",
        data={
            "csrf_token": token,
            "title": "Record your voicemail greeting",
            "summary": "Save a greeting in three steps",
            "body": "1. Dial 121\n2. Press 3\n3. Record, then press # to save",
            "tags": "voicemail",
            "locale": "en",
            "note": "clearer last step",
            "action": "save",
        },
    )
    browser.post(
        f"/kb/articles/{article_id}/status", data={"csrf_token": token, "status": "in_review"}
    )
    browser.post(
        f"/kb/articles/{article_id}/status", data={"csrf_token": token, "status": "published"}
    )
    drain(Worker(settings, make_session_factory(engine)))

    page = reader.get(f"/kb/articles/{article_id}")
    assert page.status_code == 200
    assert "Based on answers by" in page.text and "helper" in page.text
    assert f'href="/t/{solved.id}"' in page.text
    found = reader.get("/b/acme/search", params={"q": "voicemail greeting"}).text
    assert f'href="/kb/articles/{article_id}"' in found
    thread_page = reader.get(f"/t/{solved.id}").text
    assert "Promoted to the knowledge base:" in thread_page
    assert f'href="/kb/articles/{article_id}"' in thread_page

    history = browser.get(f"/kb/articles/{article_id}/versions").text
    assert "Version 4" in history and "Version 1" in history
    assert '<span class="diff-add">+ 3. Record, then press # to save</span>' in history
    fresh(db)
    numbers = [v.number for v in db.scalars(select(ArticleVersion).order_by(ArticleVersion.number))]
    assert numbers == [1, 2, 3, 4]


@pytest.mark.parametrize("typed", ["²", "١٢"])
def test_the_editor_refuses_ids_in_digits_of_other_scripts(
    as_role: RoleClient, solved: Thread, db: Session, typed: str
) -> None:
    """str.isdigit() accepts both; int() then raised on "²" (a 500) and read "١٢" as 12."""
    browser, token = _agent(as_role)
    form = {
        "csrf_token": token,
        "title": "Record your voicemail greeting",
        "summary": "Save a greeting in three steps",
        "body": "1. Dial 121\n2. Press 3\n3. Record and press #",
        "tags": "voicemail",
        "locale": "en",
        "action": "save",
    }
    for extra in ({"forum_id": typed}, {"source_thread_id": typed}, {"credited": [typed]}):
        refused = browser.post("/b/acme/kb/new", data=form | extra)
        assert refused.status_code == 422, (extra, refused.status_code)
        assert "not a valid id" in refused.text
    prefilled = browser.get("/b/acme/kb/new", params={"thread": solved.id, "answers": typed})
    assert prefilled.status_code == 422
    fresh(db)
    assert db.scalars(select(Article)).first() is None

    created = browser.post("/b/acme/kb/new", data=form, follow_redirects=False)
    assert created.status_code == 303
    article_id = int(created.headers["location"].rsplit("/", 1)[1])
    edited = browser.post(
        f"/kb/articles/{article_id}/edit", data=form | {"title": "Changed", "forum_id": typed}
    )
    assert edited.status_code == 422
    fresh(db)
    versions = db.scalars(select(ArticleVersion).where(ArticleVersion.article_id == article_id))
    assert [version.title for version in versions] == ["Record your voicemail greeting"]


def test_members_cannot_curate(as_role: RoleClient, solved: Thread, db: Session) -> None:
    member, _user = as_role(Role.MEMBER)
    token = csrf_token(member, "/")
    assert member.get("/b/acme/kb/new", params={"thread": solved.id}).status_code == 403
    assert member.get("/b/acme/kb/queue").status_code == 403
    refused = member.post(
        "/b/acme/kb/new",
        data={"csrf_token": token, "title": "Sneaky article title", "body": "x", "action": "save"},
    )
    assert refused.status_code == 403
    api = member.post(
        "/api/v1/brands/acme/kb/articles",
        json={"title": "Sneaky article title", "body": "x"},
        headers={"X-CSRF-Token": token},
    )
    assert api.status_code == 403
    assert db.scalars(select(Article)).first() is None


def _published(db: Session, agent: User, thread: Thread | None = None) -> Article:
    brand = db.scalars(select(Brand)).one()
    article = service.create_article(
        db,
        agent,
        brand,
        ArticleCreateIn(
            title="Reset your router safely",
            body="Hold the reset button for 10 seconds.",
            source_thread_id=thread.id if thread else None,
        ),
    )
    service.change_status(db, agent, article, ArticleStatus.PUBLISHED)
    db.commit()
    return article


def test_needs_review_for_age_falling_ratio_and_new_answers(
    db: Session, qa: QA, make_user: UserFactory, solved: Thread
) -> None:
    agent = make_user("lee", role=Role.AGENT)
    brand = db.scalars(select(Brand)).one()
    aged, disliked, moved = (_published(db, agent) for _ in range(3))
    moved.source_thread_id = solved.id
    moved.source_reply_count = solved.reply_count
    db.commit()
    assert article_feedback.needs_review(db, brand) == []

    for index in range(5):
        article_feedback.record_feedback(
            db, disliked, user=None, visitor_key=f"v{index}", helpful=index == 0, comment=None
        )
    qa.answer(make_user("late"), solved, "Newer firmware changed the menu.")
    db.commit()
    reasons = {item.article.id: item.reasons for item in article_feedback.needs_review(db, brand)}
    assert set(reasons) == {disliked.id, moved.id}
    assert "only 20% found it helpful lately" in reasons[disliked.id]
    assert "the source thread has new answers" in reasons[moved.id]

    with time_machine.travel(utcnow() + timedelta(days=181)):
        stale = {item.article.id for item in article_feedback.needs_review(db, brand)}
        assert aged.id in stale
        service.verify(db, agent, aged)
        db.commit()
        assert aged.id not in {item.article.id for item in article_feedback.needs_review(db, brand)}


def test_obsolete_articles_leave_the_index(
    db: Session,
    forum: object,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    client: TestClient,
) -> None:
    agent = make_user("lee", role=Role.AGENT)
    article = _published(db, agent)
    worker = Worker(settings, make_session_factory(engine))
    drain(worker)
    assert (
        f'href="/kb/articles/{article.id}"'
        in client.get("/b/acme/search", params={"q": "reset router"}).text
    )
    service.mark_obsolete(db, agent, article)
    db.commit()
    worker.run_once()
    assert (
        f'href="/kb/articles/{article.id}"'
        not in client.get("/b/acme/search", params={"q": "reset router"}).text
    )
    assert client.get(f"/kb/articles/{article.id}").status_code == 404


def test_feedback_once_per_visitor_and_day_and_ratio_for_agents_only(
    db: Session,
    forum: object,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
    as_role: RoleClient,
) -> None:
    agent = make_user("lee", role=Role.AGENT)
    article = _published(db, agent)
    anonymous = make_client()
    token = csrf_token(anonymous, f"/kb/articles/{article.id}")
    headers = {"HX-Request": "true", "X-CSRF-Token": token}
    first = anonymous.post(
        f"/kb/articles/{article.id}/feedback", data={"helpful": "yes"}, headers=headers
    )
    assert "Thank you for your feedback." in first.text
    assert "Helpful:" not in first.text  # the ratio is for agents
    anonymous.post(
        f"/kb/articles/{article.id}/feedback",
        data={"helpful": "no", "comment": "Missing the 5G hub"},
        headers=headers,
    )
    member = make_client()
    make_user("reader")
    log_in(member, "reader")
    member.post(
        f"/kb/articles/{article.id}/feedback",
        data={"helpful": "yes", "csrf_token": csrf_token(member, "/")},
    )
    fresh(db)
    stored = db.get(Article, article.id)
    assert stored is not None
    assert (stored.helpful_yes, stored.helpful_no) == (1, 1)  # the anonymous visitor changed
    with time_machine.travel(utcnow() + timedelta(days=1)):
        anonymous.post(
            f"/kb/articles/{article.id}/feedback", data={"helpful": "yes"}, headers=headers
        )
    fresh(db)
    assert db.get(Article, article.id).helpful_yes == 2  # type: ignore[union-attr]
    curator, _agent_user = as_role(Role.AGENT)
    page = curator.get(f"/kb/articles/{article.id}").text
    assert re.search(r"Helpful: 2 yes, 1 no \(67%\)", page)
    bad = anonymous.post(
        f"/kb/articles/{article.id}/feedback", data={"helpful": "maybe"}, headers=headers
    )
    assert bad.status_code == 422


def test_article_views_count_once_per_visitor_and_day_and_never_for_scripts(
    app: FastAPI,
    db: Session,
    forum: object,
    make_user: UserFactory,
    make_client: Callable[[], TestClient],
) -> None:
    article = _published(db, make_user("lee", role=Role.AGENT))
    path = f"/kb/articles/{article.id}"
    chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36"

    def cookieless(agent: str) -> None:
        # A new client every time: no cookie is ever sent back, as with curl or a script.
        response = TestClient(app, client=("203.0.113.9", 40200)).get(
            path, headers={"User-Agent": agent}
        )
        assert response.status_code == 200

    for _ in range(6):
        cookieless(chrome)
    for agent in ("curl/8.11.1", "Wget/1.25.0", "python-requests/2.32.3", "Googlebot/2.1"):
        cookieless(agent)
    browser = make_client()
    for _ in range(3):
        browser.get(path)
    views: ArticleViews = app.state.article_views
    assert views.flush() == 2  # the cookieless visitor once, the browser once
    with time_machine.travel(utcnow() + timedelta(days=1)):
        cookieless(chrome)
        assert views.flush() == 1
    fresh(db)
    assert db.get(Article, article.id).view_count == 3  # type: ignore[union-attr]


def test_status_workflow_rules_and_api(as_role: RoleClient, db: Session, solved: Thread) -> None:
    browser, token = _agent(as_role)
    created = browser.post(
        "/api/v1/brands/acme/kb/articles",
        json={
            "title": "Voicemail in three steps",
            "body": "Dial 121.",
            "source_thread_id": solved.id,
        },
        headers={"X-CSRF-Token": token},
    )
    assert created.status_code == 201
    article_id = created.json()["id"]
    assert created.json()["status"] == "draft"
    archive = browser.put(
        f"/api/v1/kb/articles/{article_id}/status",
        json={"status": "archived"},
        headers={"X-CSRF-Token": token},
    )
    assert archive.status_code == 200
    illegal = browser.put(
        f"/api/v1/kb/articles/{article_id}/status",
        json={"status": "published"},
        headers={"X-CSRF-Token": token},
    )
    assert illegal.status_code == 422
    assert browser.get(f"/api/v1/kb/articles/{article_id}").json()["helpful_yes"] == 0
    member, _user = as_role(Role.MEMBER)
    assert member.get(f"/api/v1/kb/articles/{article_id}").status_code == 404


SPANISH_ARTICLE = {
    "title": "Cómo grabar el saludo del buzón de voz",
    "summary": "Graba tu saludo en tres pasos",
    "body": "Llama al 121, pulsa el 3, graba el mensaje y pulsa la almohadilla para guardarlo.",
}


def test_api_articles_without_a_language_get_their_text_language(
    as_role: RoleClient, forum: Forum
) -> None:
    browser, token = _agent(as_role)
    headers = {"X-CSRF-Token": token}
    detected = browser.post(
        "/api/v1/brands/acme/kb/articles", json=SPANISH_ARTICLE, headers=headers
    )
    assert detected.status_code == 201, detected.text
    assert detected.json()["locale"] == "es"  # the brand's default is English
    chosen = browser.post(
        "/api/v1/brands/acme/kb/articles", json=SPANISH_ARTICLE | {"locale": "en"}, headers=headers
    )
    assert chosen.json()["locale"] == "en"  # an explicit choice (the editor's) stands

    article_id = detected.json()["id"]
    english = {
        "title": "Record your voicemail greeting",
        "body": "Dial 121, press 3, record your message, then press the hash key to save it.",
    }
    edited = browser.put(f"/api/v1/kb/articles/{article_id}", json=english, headers=headers)
    assert edited.json()["locale"] == "en"
    unclear = {"title": "Buzón de voz", "body": "Pulsa 3."}
    edited = browser.put(f"/api/v1/kb/articles/{article_id}", json=unclear, headers=headers)
    assert edited.status_code == 200, edited.text
    assert edited.json()["locale"] == "en"  # too little text: the article keeps its language


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Write to ana.lopez@example.com today", ["email"]),
        ("Call +34 612 345 678 or (555) 123-4567", ["phone", "phone"]),
        ("Order number: AB-123456 and pedido nº 98765432", ["account", "account"]),
        ("Card 4111 1111 1111 1111 expired", ["card"]),
        ("Hi Maria, thanks. Gracias, Juan Pérez.", ["name", "name"]),
        ("Firmware 3.12.4 at 192.168.1.1 on channel 11", []),
    ],
)
def test_personal_data_rules(text: str, kinds: list[str]) -> None:
    assert [finding.kind for finding in pii.find_personal_data(text)] == kinds


def test_redaction_replaces_every_finding() -> None:
    text = "Hi Maria, mail maria@example.com, order no. XY-99812."
    redacted = pii.redact(text, pii.find_personal_data(text))
    assert redacted == "Hi [name removed], mail [e-mail removed], order no. [number removed]."
