"""Language detection: the text of a question, not the asker's interface language, decides the
language a thread is stored and indexed in, when the text is clear; unclear text keeps the
interface language."""

from __future__ import annotations

from collections.abc import Callable

import meilisearch
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community import thread_editing, threads
from community.core import language
from community.core.db import make_session_factory
from community.core.models import Forum, Post, Thread, User
from community.core.schemas import AnswerIn, AskIn, EditIn
from community.core.settings import Settings
from community.worker import Worker
from kb.documents import thread_document
from kb.search import SearchEngine
from tests.conftest import MEILI_TEST_KEY, csrf_token, drain, fresh, log_in

UserFactory = Callable[..., User]

SPANISH_TITLE = "¿Cómo activo la eSIM en mi móvil nuevo?"
SPANISH_BODY = (
    "Me acaba de llegar el móvil nuevo y quiero pasar mi línea a eSIM sin perder el número. "
    "En la app no encuentro la opción. ¿Alguien sabe dónde está?"
)
ENGLISH_TITLE = "How do I turn on Wi-Fi calling at home?"
ENGLISH_BODY = (
    "My phone has no signal in the kitchen, so calls drop all the time. I read that Wi-Fi "
    "calling would fix it, but I cannot find the setting anywhere."
)


# --- the detector ------------------------------------------------------------------------------


@pytest.mark.parametrize("fallback", ["en", "es"])
def test_clear_text_decides_whatever_the_fallback(fallback: str) -> None:
    assert language.detect_language(f"{SPANISH_TITLE}\n{SPANISH_BODY}", fallback=fallback) == "es"
    assert language.detect_language(f"{ENGLISH_TITLE}\n{ENGLISH_BODY}", fallback=fallback) == "en"


@pytest.mark.parametrize(
    "text",
    [
        "Best IPA",
        "Best IPA?",
        "Ayuda",  # Spanish, and the detector is sure: still too little to go on
        "No funciona",
        "El Jimador Reposado price",  # English, yet the detector is sure it is Spanish
        "Dos Equis Amber",
        "",
        "1234 5678 !!!",
    ],
)
def test_short_titles_keep_the_fallback(text: str) -> None:
    assert language._letters(text) < language.MIN_LETTERS
    assert language.detect_language(text, fallback="en") == "en"
    assert language.detect_language(text, fallback="es") == "es"


def test_enough_letters_but_an_unsure_detector_keeps_the_fallback() -> None:
    # Spanish product names in an English sentence: the detector leans Spanish, not enough.
    text = "Modelo Especial versus Corona Extra for a party"
    assert language._letters(text) >= language.MIN_LETTERS
    _detected, probability = language._identifier().classify(text)
    assert 0.5 < probability < language.CONFIDENCE
    assert language.detect_language(text, fallback="en") == "en"
    assert language.detect_language(text, fallback="es") == "es"


def test_only_the_languages_we_serve_come_out() -> None:
    german = (
        "Mein Router verliert jeden Abend die Verbindung zum Internet, obwohl ich ihn schon "
        "mehrmals neu gestartet habe."
    )
    # Restricted to English and Spanish, the detector is not sure of either: no override.
    assert language.detect_language(german, fallback="en") == "en"
    assert language.detect_language(german, fallback="es") == "es"


def test_code_addresses_and_markup_do_not_count() -> None:
    code = "for line in open('config.yaml'):\n    print(line.strip())  # print each setting\n"
    body = (
        "<p>Quiero saber por qué falla.</p>"
        f"<pre><code>{code * 4}</code></pre>"
        "<p>Gracias <code>config.yaml</code> "
        "https://example.com/the-english-page-about-routers-and-their-settings</p>"
    )
    text = language.post_text("Error al leer config", body)
    assert text == "Error al leer config\nQuiero saber por qué falla. Gracias"
    assert language.detect_post_language("Error al leer config", body, fallback="en") == "es"


def test_only_the_start_of_a_long_post_is_read() -> None:
    body = "<p>" + SPANISH_BODY + " " + ENGLISH_BODY * 50 + "</p>"
    assert len(language.post_text(SPANISH_TITLE, body)) == language.HEAD_CHARS
    assert language.detect_post_language(SPANISH_TITLE, body, fallback="en") == "es"


# --- asking and editing ------------------------------------------------------------------------


def _ask(db: Session, forum: Forum, author: User, title: str, body: str, ui: str) -> Thread:
    thread = threads.ask(db, author, forum, AskIn(title=title, body=body, tags=[]), locale=ui)
    db.commit()
    return thread


def _question(db: Session, thread: Thread) -> Post:
    return db.scalars(
        select(Post).where(Post.thread_id == thread.id, Post.is_question.is_(True))
    ).one()


def test_spanish_question_from_an_english_interface_is_spanish(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    thread = _ask(db, forum, make_user("lucia"), SPANISH_TITLE, SPANISH_BODY, ui="en")
    fresh(db)
    stored = db.get_one(Thread, thread.id)
    assert stored.locale == "es"
    document = thread_document(stored, [_question(db, stored)])
    assert document["locale"] == "es"
    assert document["title_es"] == SPANISH_TITLE
    assert document["question_es"].startswith("Me acaba de llegar")
    assert "title_en" not in document and "question_en" not in document


def test_english_question_from_a_spanish_interface_is_english(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    thread = _ask(db, forum, make_user("ann"), ENGLISH_TITLE, ENGLISH_BODY, ui="es")
    fresh(db)
    stored = db.get_one(Thread, thread.id)
    assert stored.locale == "en"
    document = thread_document(stored, [_question(db, stored)])
    assert document["locale"] == "en"
    assert document["title_en"] == ENGLISH_TITLE
    assert "title_es" not in document


@pytest.mark.parametrize("ui", ["en", "es"])
def test_a_short_ambiguous_question_keeps_the_interface_language(
    db: Session, forum: Forum, make_user: UserFactory, ui: str
) -> None:
    thread = _ask(db, forum, make_user("brewer"), "Best IPA here?", "Ideas?", ui=ui)
    fresh(db)
    assert db.get_one(Thread, thread.id).locale == ui


def test_editing_a_question_detects_its_language_again(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    author = make_user("lucia")
    thread = _ask(db, forum, author, ENGLISH_TITLE, ENGLISH_BODY, ui="en")
    question = _question(db, thread)
    thread_editing.edit_post(db, author, question, EditIn(title=SPANISH_TITLE, body=SPANISH_BODY))
    db.commit()
    fresh(db)
    assert db.get_one(Thread, thread.id).locale == "es"

    # An edit to something unclear keeps the language the question had.
    question = _question(db, thread)
    thread_editing.edit_post(
        db, author, question, EditIn(title="Ayuda, por favor", body="¿Alguien?")
    )
    db.commit()
    fresh(db)
    assert db.get_one(Thread, thread.id).locale == "es"


def test_editing_an_answer_leaves_the_thread_language_alone(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    asker, helper = make_user("ann"), make_user("lucia")
    thread = _ask(db, forum, asker, ENGLISH_TITLE, ENGLISH_BODY, ui="en")
    reply = threads.answer(db, helper, thread, AnswerIn(body="Prueba en Ajustes."))
    db.commit()
    thread_editing.edit_post(db, helper, reply, EditIn(body=SPANISH_BODY))
    db.commit()
    fresh(db)
    assert db.get_one(Thread, thread.id).locale == "en"


def test_asked_through_the_form_it_is_indexed_in_its_own_language(
    make_client: Callable[[], TestClient],
    db: Session,
    forum: Forum,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
) -> None:
    make_user("lucia")
    browser = make_client()
    browser.headers["Accept-Language"] = "en"
    log_in(browser, "lucia")
    response = browser.post(
        "/b/acme/ask/new",
        data={
            "forum": "mobile",
            "title": SPANISH_TITLE,
            "body": SPANISH_BODY,
            "kind": "question",
            "tags": "",
            "csrf_token": csrf_token(browser, "/b/acme/ask/new"),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert '<html lang="en">' in browser.get("/b/acme/mobile").text  # an English interface
    thread = db.scalars(select(Thread)).one()
    assert thread.locale == "es"

    drain(Worker(settings, make_session_factory(engine)))
    index = meilisearch.Client(settings.meili_url, MEILI_TEST_KEY).index(
        SearchEngine(settings).threads_index("acme")
    )
    document = dict(index.get_document(str(thread.id)))
    assert document["locale"] == "es"
    assert document["title_es"] == SPANISH_TITLE
    assert "title_en" not in document
