"""The anonymous page cache (community/core/page_cache.py) through the app: what it serves to
whom, that each visitor gets their own CSRF token and nonce from one entry, that the writes
which change a page show on the very next request, and that a page's side effects (views,
the search log) still happen on a hit. Each test runs with the memory store and with Redis."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core import meili
from community.core.metrics import UNMATCHED_ROUTE
from community.core.models import Brand, Forum, Post, Role, Thread, User
from community.core.security import csrf_token_for
from community.core.settings import Settings
from kb import service as kb_service
from kb.models import Article, ArticleStatus, SearchQuery
from kb.schemas import ArticleCreateIn
from tests.conftest import LIMIT_STORAGES, QA, REDIS_URL, SECRET_KEY, fresh, log_in, make_settings

BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')
_NONCES = re.compile(r'nonce="([^"]+)"')


@pytest.fixture(params=LIMIT_STORAGES)
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_url: str,
    meili_server: meili.MeiliServer,
) -> Settings:
    redis_url = REDIS_URL if request.param == "redis" else None
    return make_settings(
        tmp_path, database_url, meili_server.url, redis_url=redis_url, page_cache_seconds=5.0
    )


@pytest.fixture
def thread(qa: QA, make_user: Callable[..., User]) -> Thread:
    return qa.ask(make_user("asker"))


def _get(client: TestClient, path: str, **headers: str) -> Response:
    response = client.get(path, headers=BROWSER | headers)
    assert response.status_code == 200, response.text[:300]
    return response


def _own_token(client: TestClient) -> str:
    """The CSRF token of this browser's own session cookie."""
    return csrf_token_for(SECRET_KEY, client.cookies[COOKIE])


# The anonymous session cookie's name on http://testserver (no __Host- prefix without https).
COOKIE = "community_session"


@pytest.fixture
def visitor(make_client: Callable[[], TestClient]) -> Callable[[], TestClient]:
    """A new anonymous browser (no cookie yet)."""
    return make_client


def test_one_entry_serves_every_visitor_their_own_token_nonce_and_cookie(
    visitor: Callable[[], TestClient], thread: Thread
) -> None:
    first, second = visitor(), visitor()
    missed = _get(first, f"/t/{thread.id}")
    assert missed.headers["x-cache"] == "miss"
    hit = _get(second, f"/t/{thread.id}")
    assert hit.headers["x-cache"] == "hit"
    # A first-time visitor served from the cache still gets their own anonymous cookie...
    assert hit.headers["set-cookie"].startswith(f"{COOKIE}=")
    # ...and the page carries the token of that cookie, never the first visitor's.
    assert _CSRF_META.findall(hit.text) == [_own_token(second)]
    assert _own_token(first) not in hit.text
    assert _CSRF_META.findall(missed.text) == [_own_token(first)]
    # Scripts carry this response's CSP nonce, not the one the page was rendered with.
    for response in (missed, hit):
        nonce = re.search(r"'nonce-([^']+)'", response.headers["content-security-policy"])
        assert nonce and set(_NONCES.findall(response.text)) == {nonce.group(1)}
    assert set(_NONCES.findall(hit.text)) != set(_NONCES.findall(missed.text))
    # Both tokens work: each visitor's form post passes the CSRF check.
    for client in (first, second):
        token = _CSRF_META.findall(_get(client, f"/t/{thread.id}").text)[0]
        response = client.post(
            "/login", data={"login": "nobody", "password": "x", "csrf_token": token}
        )
        assert response.status_code != 403 and "did not come from this site" not in response.text


def _score(page: str, post: Post) -> int:
    found = re.search(rf'id="vote-{post.id}">\s*<span class="score[^>]*>(-?\d+)<', page)
    assert found, "no score on the page"
    return int(found.group(1))


def _signed_in(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    name: str,
    role: Role = Role.MEMBER,
) -> TestClient:
    client = make_client()
    make_user(name, role=role)
    log_in(client, name)
    return client


def _hide(moderator: TestClient, post: Post) -> None:
    token = _CSRF_META.findall(_get(moderator, f"/t/{post.thread_id}").text)[0]
    hidden = moderator.post(
        f"/mod/posts/{post.id}/hide", data={"csrf_token": token}, follow_redirects=False
    )
    assert hidden.status_code == 303


def test_an_answer_a_vote_and_a_hide_show_on_the_very_next_request(
    visitor: Callable[[], TestClient],
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    thread: Thread,
) -> None:
    reader = visitor()
    answer = qa.answer(make_user("helper"), thread, "Open Settings, then Mobile data.")
    _get(reader, f"/t/{thread.id}")
    assert _get(reader, f"/t/{thread.id}").headers["x-cache"] == "hit"

    member = _signed_in(make_client, make_user, "member")
    token = _CSRF_META.findall(_get(member, f"/t/{thread.id}").text)[0]
    posted = member.post(
        f"/t/{thread.id}/answers",
        data={"body": "Restart the phone after the transfer.", "csrf_token": token},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    page = _get(reader, f"/t/{thread.id}")
    assert (
        page.headers["x-cache"] == "miss" and "Restart the phone after the transfer." in page.text
    )

    assert _score(_get(reader, f"/t/{thread.id}").text, answer) == 0
    voted = member.post(
        f"/posts/{answer.id}/vote", data={"value": "1", "csrf_token": token}, follow_redirects=False
    )
    assert voted.status_code == 303
    assert _score(_get(reader, f"/t/{thread.id}").text, answer) == 1

    assert "Open Settings, then Mobile data." in _get(reader, f"/t/{thread.id}").text
    _hide(_signed_in(make_client, make_user, "moddy", Role.MODERATOR), answer)
    page = _get(reader, f"/t/{thread.id}")
    assert page.headers["x-cache"] == "miss"
    assert "Open Settings, then Mobile data." not in page.text


def test_a_failed_write_keeps_the_entry(visitor: Callable[[], TestClient], thread: Thread) -> None:
    reader = visitor()
    _get(reader, f"/t/{thread.id}")
    refused = reader.post(f"/t/{thread.id}/answers", data={"body": "x", "csrf_token": "forged"})
    assert refused.status_code == 403
    assert _get(reader, f"/t/{thread.id}").headers["x-cache"] == "hit"


def test_signed_in_visitors_are_never_served_a_visitors_page(
    visitor: Callable[[], TestClient],
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    thread: Thread,
) -> None:
    anonymous = visitor()
    _get(anonymous, f"/t/{thread.id}")
    assert _get(anonymous, f"/t/{thread.id}").headers["x-cache"] == "hit"
    member = _signed_in(make_client, make_user, "pat_member")
    _get(member, "/")  # the welcome message is shown (a page with a flash is never cached)
    # Members share their own pages (tests/community/test_member_pages.py), never a visitor's.
    assert _get(member, f"/t/{thread.id}").headers["x-cache"] == "miss"
    page = _get(member, f"/t/{thread.id}")
    assert "pat_member" in page.text and "Log in" not in page.text
    assert page.headers["cache-control"] == "no-store"
    # Nor is their page kept for anyone else.
    assert "pat_member" not in _get(visitor(), f"/t/{thread.id}").text


def test_fragment_and_page_are_kept_apart_and_head_comes_from_the_page(
    visitor: Callable[[], TestClient], thread: Thread
) -> None:
    reader = visitor()
    page = _get(reader, f"/t/{thread.id}")
    fragment = _get(reader, f"/t/{thread.id}", **{"HX-Request": "true"})
    assert fragment.headers["x-cache"] == "miss"
    assert "<html" in page.text and "<html" not in fragment.text
    assert "<html" in _get(reader, f"/t/{thread.id}").text
    assert "<html" not in _get(reader, f"/t/{thread.id}", **{"HX-Request": "true"}).text
    head = reader.head(f"/t/{thread.id}", headers=BROWSER)
    assert head.status_code == 200 and head.headers["x-cache"] == "hit" and head.content == b""


def test_each_language_has_its_own_entry(visitor: Callable[[], TestClient], thread: Thread) -> None:
    english = _get(visitor(), f"/t/{thread.id}", **{"Accept-Language": "en"})
    spanish = _get(visitor(), f"/t/{thread.id}", **{"Accept-Language": "es"})
    assert spanish.headers["x-cache"] == "miss"
    assert 'lang="es"' in spanish.text and 'lang="en"' in english.text


def test_what_is_never_served_from_the_cache(
    visitor: Callable[[], TestClient], thread: Thread, forum: Forum
) -> None:
    reader = visitor()
    _get(reader, f"/t/{thread.id}")
    # A page that shows a flash message (and clears its cookie) is the visitor's own.
    reader.cookies.set("flash", "anything")
    assert "x-cache" not in _get(reader, f"/t/{thread.id}").headers
    reader.cookies.delete("flash")
    # Not found is not kept; nor are staff paths, whatever they answer.
    for _ in range(2):
        missing = reader.get("/t/999999", headers=BROWSER)
        assert missing.status_code == 404 and missing.headers.get("x-cache") != "hit"
        assert "x-cache" not in reader.get("/mod", headers=BROWSER, follow_redirects=False).headers
    # Suggestions are per visitor (the holdout group): the route marks them private.
    for _ in range(2):
        suggested = _get(reader, "/b/acme/kb/suggest?title=How+do+I+move+my+number")
        assert suggested.headers["x-cache"] == "miss"
    # A request with credentials is nobody's anonymous page.
    bearer = reader.get(f"/t/{thread.id}", headers=BROWSER | {"Authorization": "Bearer x"})
    assert "x-cache" not in bearer.headers


def test_a_thread_view_served_from_the_cache_still_counts(
    app: FastAPI, db: Session, thread: Thread
) -> None:
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        client = TestClient(app, base_url="http://testserver", client=(address, 40000))
        client.get(f"/t/{thread.id}", headers=BROWSER)
    assert app.state.view_counter.flush() == 3
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None and stored.view_count == 3


def test_an_article_view_and_a_search_served_from_the_cache_still_count(
    app: FastAPI,
    db: Session,
    visitor: Callable[[], TestClient],
    make_user: Callable[..., User],
    forum: Forum,
) -> None:
    agent = make_user("lee", role=Role.AGENT)
    brand = db.scalars(select(Brand)).one()
    article = kb_service.create_article(
        db, agent, brand, ArticleCreateIn(title="Reset your router", body="Hold the button.")
    )
    kb_service.change_status(db, agent, article, ArticleStatus.PUBLISHED)
    db.commit()
    served = []
    for address in ("192.0.2.1", "192.0.2.2"):
        client = TestClient(app, base_url="http://testserver", client=(address, 40000))
        served.append(client.get(f"/kb/articles/{article.id}", headers=BROWSER))
        served.append(client.get("/b/acme/search?q=router", headers=BROWSER))
    assert [response.headers["x-cache"] for response in served] == ["miss", "miss", "hit", "hit"]
    app.state.article_views.flush()
    app.state.search_log.flush()
    fresh(db)
    assert db.scalar(select(Article.view_count).where(Article.id == article.id)) == 2
    logged = db.scalars(select(SearchQuery.query)).all()
    assert logged == ["router", "router"]
    assert db.scalar(select(func.count()).select_from(SearchQuery)) == 2


def test_a_hidden_post_never_reaches_anonymous_visitors_through_the_cache(
    visitor: Callable[[], TestClient],
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    thread: Thread,
) -> None:
    answer = qa.answer(make_user("spammer"), thread, "Buy cheap watches at example.test")
    readers = [visitor() for _ in range(3)]
    assert "cheap watches" in _get(readers[0], f"/t/{thread.id}").text
    _hide(_signed_in(make_client, make_user, "moddy", Role.MODERATOR), answer)
    for reader in readers:
        assert "cheap watches" not in _get(reader, f"/t/{thread.id}").text


def test_a_hit_is_timed_under_its_page_route(
    visitor: Callable[[], TestClient], thread: Thread
) -> None:
    def timed(route: str, method: str) -> float:
        labels = {"route": route, "method": method, "status": "2xx"}
        value = REGISTRY.get_sample_value("community_http_request_duration_seconds_count", labels)
        return value or 0.0

    before = {method: timed("/t/{thread_id}", method) for method in ("GET", "HEAD")}
    unmatched = timed(UNMATCHED_ROUTE, "GET")
    reader = visitor()
    _get(reader, f"/t/{thread.id}")
    assert _get(reader, f"/t/{thread.id}").headers["x-cache"] == "hit"
    assert reader.head(f"/t/{thread.id}", headers=BROWSER).headers["x-cache"] == "hit"
    assert timed("/t/{thread_id}", "GET") == before["GET"] + 2
    assert timed("/t/{thread_id}", "HEAD") == before["HEAD"] + 1
    assert timed(UNMATCHED_ROUTE, "GET") == unmatched
