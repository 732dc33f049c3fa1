"""The search page, the JSON search API, suggestions while asking and deflection records."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community import voting
from community.core.db import make_session_factory
from community.core.models import Brand, Forum, Role, User
from community.core.settings import Settings
from community.worker import Worker
from kb.models import DeflectionEvent, SearchQuery
from tests.conftest import QA, csrf_token, drain, fresh, log_in

UserFactory = Callable[..., User]


@pytest.fixture
def indexed(
    db: Session, qa: QA, make_user: UserFactory, settings: Settings, engine: Engine
) -> dict[str, int]:
    """A small community: solved threads in English and Spanish, one unanswered, all indexed."""
    asker, helper = make_user("asker"), make_user("helper")
    fans = [make_user(f"fan{index}") for index in range(3)]
    made: dict[str, int] = {}
    for key, title, body, tags in [
        (
            "wifi",
            "Wi-Fi drops every evening on the hub",
            "Cable works, Wi-Fi does not.",
            ["wifi", "router"],
        ),
        ("esim", "How do I move my number to an eSIM?", "New phone, same number.", ["esim"]),
        ("fibra", "La fibra va muy lenta por la noche", "Por cable va bien.", ["fibra", "wifi"]),
        (
            "xss",
            'Router shows "><img src=x onerror=alert(1)> on login',
            "Strange text on the router page.",
            ["router"],
        ),
    ]:
        thread = qa.ask(asker, title=title, body=body, tags=tags)
        answer = qa.answer(helper, thread, f"Try this for {key}: restart and update.")
        for fan in fans:
            voting.cast_vote(db, fan, answer.id, 1)
        voting.accept(db, asker, answer.id)
        db.commit()
        made[key] = thread.id
    made["open"] = qa.ask(asker, title="Voicemail greeting will not save", tags=["voicemail"]).id
    drain(Worker(settings, make_session_factory(engine)))
    return made


def _result_links(html: str) -> list[str]:
    return re.findall(r'<h2><a href="([^"]+)">', html)


def test_search_page_finds_highlights_and_counts(
    app: FastAPI, client: TestClient, indexed: dict[str, int], db: Session
) -> None:
    page = client.get("/b/acme/search", params={"q": "wifi evening"})
    assert page.status_code == 200
    assert _result_links(page.text)[0] == f"/t/{indexed['wifi']}"
    assert "<mark>Wi-Fi</mark>" in page.text or "<mark>wifi</mark>" in page.text.lower()
    assert "result" in page.text
    # Facets with counts, and the chosen one narrows the results.
    assert re.search(
        r"href=\"\?q=wifi%20evening&amp;scope=kb&amp;tags=router\">router</a>", page.text
    )
    narrowed = client.get("/b/acme/search", params={"q": "wifi", "tags": "fibra"})
    assert _result_links(narrowed.text) == [f"/t/{indexed['fibra']}"]
    assert db.scalars(select(SearchQuery)).first() is None  # buffered: no write per search
    assert app.state.search_log.flush() == 2
    fresh(db)
    recorded = db.scalars(select(SearchQuery).order_by(SearchQuery.id)).all()
    assert [(row.query, row.result_count > 0) for row in recorded] == [
        ("wifi evening", True),
        ("wifi", True),
    ]


def test_zero_result_queries_are_recorded_with_help(
    app: FastAPI, client: TestClient, indexed: dict[str, int], db: Session
) -> None:
    page = client.get("/b/acme/search", params={"q": "quantum teleportation"})
    assert "Nothing found for “quantum teleportation”." in page.text
    assert "Ask the community" in page.text
    app.state.search_log.flush()
    fresh(db)
    row = db.scalars(select(SearchQuery)).one()
    assert (row.query, row.result_count, row.degraded) == ("quantum teleportation", 0, False)


def test_kb_scope_holds_only_solutions_and_community_scope_every_visible_thread(
    client: TestClient, indexed: dict[str, int]
) -> None:
    kb = client.get("/b/acme/search", params={"q": "voicemail"}).text
    assert f"/t/{indexed['open']}" not in kb
    community = client.get("/b/acme/search", params={"q": "voicemail", "scope": "community"}).text
    assert _result_links(community) == [f"/t/{indexed['open']}"]


def test_spanish_typos_and_htmx_fragment(client: TestClient, indexed: dict[str, int]) -> None:
    typo = client.get("/b/acme/search", params={"q": "fibra lneta"})
    assert _result_links(typo.text)[0] == f"/t/{indexed['fibra']}"
    fragment = client.get("/b/acme/search", params={"q": "esim"}, headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="results"')
    assert "<html" not in fragment.text
    # The page and its results fragment show the facets, so they ask for them.
    assert 'class="facets card"' in fragment.text
    assert 'class="facets card"' in client.get("/b/acme/search", params={"q": "esim"}).text


def test_titles_and_snippets_are_escaped_around_highlights(
    client: TestClient, indexed: dict[str, int]
) -> None:
    page = client.get("/b/acme/search", params={"q": "router login strange"}).text
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.replace("<mark>", "").replace("</mark>", "")


@pytest.mark.parametrize(
    "payload", ['x" OR tags = "wifi', 'router"] OR ["1', "\\", 'esim" OR locale EXISTS OR "']
)
def test_filter_values_cannot_inject(
    client: TestClient, indexed: dict[str, int], payload: str
) -> None:
    response = client.get("/api/v1/brands/acme/search", params={"q": "", "tags": payload})
    assert response.status_code == 200
    assert response.json()["hits"] == []


def test_json_search_api(client: TestClient, indexed: dict[str, int]) -> None:
    body = client.get("/api/v1/brands/acme/search", params={"q": "esim", "per_page": 3}).json()
    assert body["hits"][0]["url"] == f"/t/{indexed['esim']}"
    assert body["hits"][0]["kind"] == "solution"
    assert "<mark>" in body["hits"][0]["snippet_html"] or body["hits"][0]["snippet_html"]
    # Facets cost Meilisearch milliseconds a query: counted only when a caller asks.
    assert body["facets"] == []
    asked = client.get("/api/v1/brands/acme/search", params={"q": "esim", "facets": "true"})
    assert any(facet["name"] == "tags" for facet in asked.json()["facets"])
    assert client.get("/api/v1/brands/nope/search", params={"q": "x"}).status_code == 404
    assert client.get("/api/v1/brands/acme/search", params={"q": "x" * 201}).status_code == 422


def test_suggestions_while_asking_and_deflection_records(
    app: FastAPI,
    make_client: Callable[[], TestClient],
    indexed: dict[str, int],
    make_user: UserFactory,
    db: Session,
) -> None:
    make_user("newcomer")
    browser = make_client()
    log_in(browser, "newcomer")
    empty = browser.get("/b/acme/kb/suggest", params={"title": "wi"})
    assert empty.text.strip() == ""
    suggestions = browser.get(
        "/b/acme/kb/suggest", params={"title": "my wifi keeps dropping at night"}
    )
    assert f'href="/t/{indexed["wifi"]}"' in suggestions.text
    assert "data-deflect" in suggestions.text
    token = csrf_token(browser, "/")
    refused = browser.post("/kb/deflect", data={"brand": "acme", "entry_type": "solution"})
    assert refused.status_code == 403
    recorded = browser.post(
        "/kb/deflect",
        data={
            "csrf_token": token,
            "brand": "acme",
            "entry_type": "solution",
            "entry_id": str(indexed["wifi"]),
            "q": "my wifi keeps dropping at night",
        },
    )
    assert recorded.status_code == 204
    for typed in ("²", "١٢"):  # int() raised on the first (a 500) and read the second as 12
        other_script = browser.post(
            "/kb/deflect",
            data={
                "csrf_token": token,
                "brand": "acme",
                "entry_type": "solution",
                "entry_id": typed,
            },
        )
        assert other_script.status_code == 422
    fresh(db)
    event = db.scalars(select(DeflectionEvent)).one()
    assert (event.entry_type, event.entry_id, event.query) == (
        "solution",
        indexed["wifi"],
        "my wifi keeps dropping at night",
    )
    assert event.user_id is not None
    ask_page = browser.get("/b/acme/ask/new").text
    assert 'hx-get="/b/acme/kb/suggest"' in ask_page


def test_search_settings_take_plain_numbers_only(
    as_role: Callable[[Role | None], tuple[TestClient, User | None]], forum: Forum, db: Session
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    page = "/admin/brands/acme/search"
    token = csrf_token(browser, page)
    form = {
        "csrf_token": token,
        "synonyms": "wifi, wlan",
        "solution_threshold": "40",
        "article_threshold": "70.5",
        "review_period_days": "90",
    }
    # float() read "١٢" as 12 and took "nan" and "1e1" too.
    for field in ("solution_threshold", "article_threshold", "review_period_days"):
        for typed in ("²", "١٢", "nan", "1e1"):
            refused = browser.post(page, data=form | {field: typed})
            assert refused.status_code == 422, (field, typed)
    fresh(db)
    brand = db.get(Brand, forum.brand_id)
    assert brand is not None and brand.synonyms != [["wifi", "wlan"]]
    saved = browser.post(page, data=form, follow_redirects=False)
    assert saved.status_code == 303
    fresh(db)
    brand = db.get(Brand, forum.brand_id)
    assert brand is not None
    assert (brand.solution_threshold, brand.article_threshold) == (40.0, 70.5)
    assert brand.review_period_days == 90


def test_search_degrades_to_the_database_with_a_notice(
    settings: Settings,
    engine: Engine,
    database_url: str,
    tmp_path: object,
    qa: QA,
    make_user: UserFactory,
) -> None:
    from community.app import create_app
    from tests.conftest import make_settings

    thread = qa.ask(make_user("asker"), title="Bluetooth headphones will not pair")
    down = make_settings(tmp_path, database_url, "http://127.0.0.1:9")  # type: ignore[arg-type]
    with TestClient(create_app(down, engine=engine)) as offline:
        page = offline.get("/b/acme/search", params={"q": "bluetooth pair", "scope": "community"})
        assert page.status_code == 200
        assert "reduced mode" in page.text
        assert _result_links(page.text) == [f"/t/{thread.id}"]
        home = offline.get("/")
        assert home.status_code == 200


def test_the_web_process_searches_with_a_search_only_key(
    client: TestClient, app: FastAPI, indexed: dict[str, int], meili_server: object
) -> None:
    """Pages find what they find without the master key: the web process's key may search
    this site's indexes and nothing else (no writes, no other site's indexes)."""
    import httpx

    from tests.conftest import MEILI_TEST_KEY

    found = client.get("/api/v1/brands/acme/search", params={"q": "esim"})
    assert found.status_code == 200 and found.json()["hits"], found.text
    assert not found.json().get("degraded"), "served by Meilisearch, not the fallback"
    engine = app.state.search
    key = engine.search_key()
    assert key != MEILI_TEST_KEY
    base = meili_server.url  # type: ignore[attr-defined]
    described = httpx.get(
        f"{base}/keys/{key}", headers={"Authorization": f"Bearer {MEILI_TEST_KEY}"}
    )
    assert described.json()["actions"] == ["search"]
    assert described.json()["indexes"] == [f"{engine.prefix}*"]
    as_web = {"Authorization": f"Bearer {key}"}
    index = engine.threads_index("acme")
    assert httpx.post(f"{base}/indexes/{index}/search", json={"q": "eSIM"}, headers=as_web).json()[
        "hits"
    ]
    write = httpx.post(f"{base}/indexes/{index}/documents", json=[{"id": "x"}], headers=as_web)
    assert write.status_code == 403
    other = httpx.post(f"{base}/indexes/other_site_threads/search", json={"q": "x"}, headers=as_web)
    assert other.status_code == 403
