"""Semantic search: the worker embeds documents (kept in search_vectors, sent in `_vectors`),
queries are hybrid in Meilisearch, a Spanish question finds an English answer with the
multilingual model, and when the model cannot run search stays lexical and nothing is lost."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community import thread_editing, voting
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.models import Brand, Forum, Post, Role, User, Visibility
from community.core.outbox import OutboxEvent
from community.core.schemas import EditIn
from community.core.settings import Settings
from community.worker import Worker
from kb import query_vectors, vector_coverage, vectors
from kb.embeddings.health import health
from kb.models import SearchVector
from kb.search import SearchEngine
from kb.service_search import semantic_for
from moderation.actions import set_post_visibility
from tests.conftest import QA, drain

UserFactory = Callable[..., User]
MODEL = "use-multilingual"


def _use_model(db: Session, forum: Forum, model: str | None = MODEL, **options: Any) -> Brand:
    brand = forum.brand
    brand.search_model = model
    brand.search_model_options = options
    db.commit()
    return brand


def _suggested(client: TestClient, title: str, language: str = "en") -> list[str]:
    page = client.get(
        "/b/acme/kb/suggest",
        params={"title": title},
        headers={"HX-Request": "true", "Accept-Language": language},
    )
    assert page.status_code == 200
    return re.findall(r'<a href="(/t/\d+)"[^>]*data-deflect', page.text)


def _documents(settings: Settings, uid: str) -> dict[str, dict[str, Any]]:
    engine = SearchEngine(settings)
    found = engine.client().index(uid).get_documents({"limit": 100, "retrieveVectors": True})
    return {str(dict(doc)["id"]): dict(doc) for doc in found.results}


def _cosine(db: Session, thread_id: int, text: str) -> float:
    row = db.scalar(
        select(SearchVector).where(
            SearchVector.subject == vectors.thread_subject(thread_id),
            SearchVector.model == "use_multilingual",
        )
    )
    assert row is not None
    query = vectors.model_specs(db.get(Brand, row.brand_id), "off")[0]  # type: ignore[arg-type]
    return float(np.dot(np.frombuffer(row.vector, dtype="<f4"), query.embedder().embed_query(text)))


def test_the_worker_embeds_documents_and_a_spanish_question_finds_the_english_answer(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    client: TestClient,
) -> None:
    _use_model(db, forum)
    asker, helper = make_user("asker"), make_user("helper")
    chain = qa.ask(
        asker,
        title="Bicycle chain keeps falling off the front gears",
        body="Every time I shift to the big ring the chain drops outside.",
    )
    qa.answer(helper, chain, "Adjust the high limit screw of the front derailleur a quarter turn.")
    other = qa.ask(asker, title="Phone battery drains overnight", body="It loses half its charge.")
    qa.answer(helper, other, "Turn off background refresh for the mail app.")
    drain(Worker(settings, make_session_factory(engine)))

    rows = db.scalars(select(SearchVector).order_by(SearchVector.subject)).all()
    assert {row.subject for row in rows} == {f"thread:{chain.id}", f"thread:{other.id}"}
    assert {row.model for row in rows} == {"use_multilingual"}
    assert all(len(row.vector) == 512 * 4 for row in rows)
    documents = _documents(settings, SearchEngine(settings).threads_index("acme"))
    embedded = documents[str(chain.id)]["_vectors"]["use_multilingual"]["embeddings"]
    assert len(embedded) == 1 and len(embedded[0]) == 512

    # No word in common with the thread: only the meaning can find it.
    spanish = "la cadena de mi bici se sale al cambiar de plato"
    assert _suggested(client, spanish, "es")[:1] == [f"/t/{chain.id}"]
    assert _cosine(db, chain.id, spanish) > _cosine(db, other.id, spanish)

    # The same question with semantic search off finds nothing.
    _use_model(db, forum, "off")
    assert f"/t/{chain.id}" not in _suggested(client, spanish, "es")


def test_search_page_and_api_are_hybrid(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    client: TestClient,
) -> None:
    _use_model(db, forum)
    asker, helper = make_user("asker"), make_user("helper")
    router = qa.ask(
        asker, title="Router drops the wireless connection at night", body="Every night at 2."
    )
    qa.answer(helper, router, "Disable the scheduled channel scan in the router settings.")
    drain(Worker(settings, make_session_factory(engine)))

    query = "el wifi se corta por la noche"
    api = client.get(
        "/api/v1/brands/acme/search",
        params={"q": query, "scope": "community"},
        headers={"Accept-Language": "es"},
    )
    assert api.status_code == 200
    assert [hit["entry_id"] for hit in api.json()["hits"]][:1] == [router.id]
    page = client.get("/b/acme/search", params={"q": query, "scope": "community"})
    assert page.status_code == 200 and f"/t/{router.id}" in page.text


def test_vectors_follow_the_text_not_every_change(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
) -> None:
    _use_model(db, forum)
    worker = Worker(settings, make_session_factory(engine))
    asker, helper, voter = make_user("asker"), make_user("helper"), make_user("voter")
    thread = qa.ask(asker, title="Screen flickers after the update", body="Since version 4.2.")
    answer = qa.answer(helper, thread, "Switch off adaptive refresh rate.")
    drain(worker)
    first = db.scalar(select(SearchVector).where(SearchVector.subject == f"thread:{thread.id}"))
    assert first is not None
    first_hash, first_vector = first.text_hash, first.vector

    voting.cast_vote(db, voter, answer.id, 1)  # a vote changes the document, not its text
    db.commit()
    drain(worker)
    db.expire_all()
    kept = db.scalar(select(SearchVector).where(SearchVector.subject == f"thread:{thread.id}"))
    assert kept is not None and kept.text_hash == first_hash and kept.vector == first_vector
    asked = db.scalars(select(OutboxEvent).where(OutboxEvent.kind == vectors.VECTORS_NEEDED))
    assert len(asked.all()) == 1  # only the first embedding was ever asked for

    question = db.scalar(select(Post).where(Post.thread_id == thread.id, Post.is_question))
    assert question is not None
    thread_editing.edit_post(
        db, asker, question, EditIn(title="Screen flickers on battery", body="Only unplugged.")
    )
    db.commit()
    drain(worker)
    db.expire_all()
    edited = db.scalar(select(SearchVector).where(SearchVector.subject == f"thread:{thread.id}"))
    assert edited is not None and edited.text_hash != first_hash
    assert edited.vector != first_vector


def test_a_model_that_cannot_run_leaves_search_lexical_and_vectors_catch_up(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    client: TestClient,
) -> None:
    # An embedding service nobody listens on (port 9 on loopback: discard, closed here).
    _use_model(db, forum, "http", url="http://127.0.0.1:9/embed", dimensions=8)
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker, title="Invoice shows the wrong address", body="Old address on it.")
    qa.answer(helper, thread, "Update the billing address under Account, then re-issue.")
    worker = Worker(settings, make_session_factory(engine))
    worker.run_once()
    worker.run_once()

    # Lexical search still answers, with the document indexed (its vector left out).
    assert f"/t/{thread.id}" in _suggested(client, "invoice wrong address")
    assert health.failures()
    waiting = db.scalars(
        select(OutboxEvent).where(
            OutboxEvent.kind == vectors.VECTORS_NEEDED, OutboxEvent.done_at.is_(None)
        )
    ).all()
    assert len(waiting) == 1 and waiting[0].last_error  # kept, to be retried
    assert db.scalar(select(SearchVector)) is None

    # The brand moves to a model that runs; the waiting event (already asked: not asked twice)
    # is retried once its back-off is over, and computes what was missing.
    brand = _use_model(db, forum)
    assert vectors.request_missing(db, brand, settings.search_model) == 0
    assert not vector_coverage.coverage(db, brand, settings.search_model).complete
    waiting[0].available_at = utcnow()
    db.commit()
    drain(worker)
    assert vector_coverage.coverage(db, brand, settings.search_model).complete
    assert f"/t/{thread.id}" in _suggested(client, "factura con la dirección equivocada", "es")


def test_hidden_threads_keep_no_place_in_semantic_search(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    client: TestClient,
) -> None:
    _use_model(db, forum)
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker, title="Card payment declined abroad", body="In Spain, card refused.")
    qa.answer(helper, thread, "Enable travel mode for the card in the app.")
    worker = Worker(settings, make_session_factory(engine))
    drain(worker)
    query = "mi tarjeta no funciona en el extranjero"
    assert f"/t/{thread.id}" in _suggested(client, query, "es")

    moderator = make_user("moddy", role=Role.MODERATOR)
    question = db.scalar(select(Post).where(Post.thread_id == thread.id, Post.is_question))
    assert question is not None
    set_post_visibility(db, moderator, question, Visibility.HIDDEN, reason="spam")
    db.commit()
    drain(worker)
    assert f"/t/{thread.id}" not in _suggested(client, query, "es")
    assert str(thread.id) not in _documents(settings, SearchEngine(settings).threads_index("acme"))


def test_auto_embeds_with_both_models_and_routes_a_query_by_its_language(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
    client: TestClient,
) -> None:
    _use_model(db, forum, "auto")
    asker, helper = make_user("asker"), make_user("helper")
    router = qa.ask(
        asker, title="Router drops the wireless connection every night", body="Always at 2 am."
    )
    qa.answer(helper, router, "Disable the scheduled channel scan in the router settings.")
    for title, answer in (
        ("Mi factura tiene una dirección antigua", "Cámbiala en Cuenta y pide otra factura."),
        (
            "La batería del móvil se descarga de noche",
            "Desactiva la actualización en segundo plano.",
        ),
        ("Phone battery drains overnight", "Turn off background refresh for the mail app."),
    ):
        qa.answer(helper, qa.ask(asker, title=title, body=title + "."), answer)
    drain(Worker(settings, make_session_factory(engine)))

    models = set(db.scalars(select(SearchVector.model)))
    assert models == {"minilm", "use_multilingual"}
    # Typed in Spanish from an English interface: the text decides the model (the English
    # one knows no Spanish; the multilingual one finds the thread).
    spanish = "el wifi de mi router se corta todas las noches a la misma hora"
    assert _suggested(client, spanish, "en")[:1] == [f"/t/{router.id}"]
    assert _suggested(client, "wireless keeps disconnecting overnight", "en")[:1] == [
        f"/t/{router.id}"
    ]


def test_auto_searches_english_with_a_blend_of_both_models(
    db: Session,
    qa: QA,
    forum: Forum,
    make_user: UserFactory,
    settings: Settings,
    engine: Engine,
) -> None:
    brand = _use_model(db, forum, "auto")
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(
        asker, title="Printer prints blank pages after a refill", body="The ink is full."
    )
    qa.answer(helper, thread, "Run the head cleaning twice, then print a test page.")
    drain(Worker(settings, make_session_factory(engine)))

    specs = vectors.model_specs(brand, settings.search_model)
    mixed = specs[0]
    assert [part.key for part, _weight in mixed.parts] == ["minilm", "use_multilingual"]
    # The blend is never computed nor stored: the worker keeps the two models' vectors.
    assert set(db.scalars(select(SearchVector.model))) == {"minilm", "use_multilingual"}
    stored = {
        row.model: np.frombuffer(row.vector, dtype="<f4")
        for row in db.scalars(
            select(SearchVector).where(SearchVector.subject == f"thread:{thread.id}")
        )
    }
    document = _documents(settings, SearchEngine(settings).threads_index("acme"))[str(thread.id)]
    (sent,) = document["_vectors"][mixed.key]["embeddings"]
    weights = dict(zip(["minilm", "use_multilingual"], vectors.AUTO_BLEND_WEIGHTS, strict=True))
    expected = np.concatenate([stored[key] * np.sqrt(weight) for key, weight in weights.items()])
    assert np.allclose(sent, expected, atol=1e-5)

    # An English query goes to the blend, and its score there is the weighted sum of the two
    # models' cosines; a Spanish one goes to the multilingual model.
    query = "blank pages after refilling the ink"
    engine_ = SearchEngine(settings)
    english = semantic_for(engine_, brand, query, "en", 0.5)
    assert english is not None and english.embedder == mixed.key
    minilm_query = np.asarray(query_vectors.query_vector(specs[1], query))
    use_query = np.asarray(query_vectors.query_vector(specs[2], query))
    blended_score = float(np.dot(english.vector, sent))
    assert blended_score == pytest.approx(
        weights["minilm"] * float(np.dot(minilm_query, stored["minilm"]))
        + weights["use_multilingual"] * float(np.dot(use_query, stored["use_multilingual"])),
        abs=1e-4,
    )
    spanish = semantic_for(
        engine_, brand, "páginas en blanco después de rellenar la tinta", "en", 0.5
    )
    assert spanish is not None and spanish.embedder == "use_multilingual"


def test_a_blend_waits_for_every_part() -> None:
    first = vectors.ModelSpec("one", "one", "{}", 2)
    second = vectors.ModelSpec("two", "two", "{}", 2)
    mixed = vectors.blend([(first, 0.75), (second, 0.25)], None)
    assert mixed.dimensions == 4 and vectors.computed_specs([mixed, first, second]) == [
        first,
        second,
    ]
    row = SearchVector(
        subject="thread:1", model="one", vector=np.array([3, 4], dtype="<f4").tobytes()
    )
    only_first = {("thread:1", "one"): row}
    field = vectors.vectors_field([mixed, first, second], "thread:1", only_first)
    assert field == {mixed.key: None, "one": [3.0, 4.0], "two": None}
    both = only_first | {
        ("thread:1", "two"): SearchVector(
            subject="thread:1", model="two", vector=np.array([0, 2], dtype="<f4").tobytes()
        )
    }
    # Each part made unit length, then scaled by the square root of its weight.
    assert vectors.vectors_field([mixed], "thread:1", both)[mixed.key] == pytest.approx(
        [0.6 * 0.75**0.5, 0.8 * 0.75**0.5, 0.0, 0.25**0.5]
    )
