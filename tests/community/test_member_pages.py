"""Members' shared pages (community/core/member_pages.py, through the page cache): members of one
class get one kept thread page, each with their own name, unread count, CSRF token and nonce, and
byte for byte the page they would get without the cache; a member's own marks never reach another;
a voter's or poster's page is kept for them alone; who never shares; a page kept for members never
reaches a visitor, nor the other way round; views still count on a hit. Runs with the memory store
and with Redis."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import update
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from community.core.auth import Viewer
from community.core.clock import utcnow
from community.core.member_pages import CLASS_STATE, rendered_for_class
from community.core.models import NotificationKind, Post, Role, Thread, User
from community.core.notifications import notify
from community.core.page_cache import PageCache, PageCacheMiddleware
from community.core.settings import Settings
from tests.community.test_fragment_cache import (  # settings: the page cache on, both stores
    _CSRF_META,
    _member,
    settings,  # noqa: F401
)
from tests.conftest import QA, fresh, log_in

_NONCE = re.compile(r'nonce="[^"]+"')
# "1 second ago": how long ago, as of the rendering (a kept page keeps it, as it should).
_RELATIVE_TIMES = re.compile(r"(<time [^>]*>)[^<]*(</time>)")


def _same_but_for_the_moment(page: str) -> str:
    """The page without its nonce (new every response) and its relative times."""
    return _RELATIVE_TIMES.sub(r"\1\2", _NONCE.sub("", page))


def _get(client: TestClient, path: str, **headers: str) -> Response:
    page = client.get(path, headers=headers)
    assert page.status_code == 200, page.text[:300]
    return page


def _cache_state(page: Response) -> str | None:
    state: str | None = page.headers.get("x-cache")
    return state


@contextmanager
def _cache_off(app: FastAPI) -> Iterator[None]:
    """The same app with its page and fragment caches off: the page rendered from scratch."""
    cache: PageCache = app.state.page_cache
    cache.enabled = False
    try:
        yield
    finally:
        cache.enabled = True


def _thread(qa: QA, make_user: Callable[..., User]) -> tuple[Thread, Post]:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker, title="Roaming stopped after the update")
    return thread, qa.answer(helper, thread, body="Turn data roaming on again in Settings.")


def _rename(db: Session, username: str, display_name: str) -> None:
    db.execute(update(User).where(User.username == username).values(display_name=display_name))
    db.commit()


def test_members_of_one_class_share_one_page_each_as_if_rendered_for_them(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
    app: FastAPI,
) -> None:
    thread, _answer = _thread(qa, make_user)
    ann = _member(make_client, make_user, "ann_member")
    ben = _member(make_client, make_user, "ben_member")
    # A name the template must escape, in text and in an attribute.
    _rename(db, "ben_member", "Ben <b>\"&' O'Neil")

    first = _get(ann, f"/t/{thread.id}")
    assert _cache_state(first) == "miss"
    assert "ann_member" in first.text
    shared = _get(ben, f"/t/{thread.id}")
    assert _cache_state(shared) == "hit"
    assert "Ben &lt;b&gt;&#34;&amp;&#39; O&#39;Neil" in shared.text
    assert "ann_member" not in shared.text
    assert "/u/ben_member" in shared.text and "/u/ann_member" not in shared.text
    ann_token = _CSRF_META.findall(first.text)[0]
    ben_token = _CSRF_META.findall(shared.text)[0]
    assert ann_token != ben_token and ann_token not in shared.text

    with _cache_off(app):
        own = _get(ben, f"/t/{thread.id}")
    assert _cache_state(own) is None
    # Byte for byte what Ben gets without any cache, but for the nonce and the relative times.
    assert _same_but_for_the_moment(shared.text) == _same_but_for_the_moment(own.text)


def test_each_member_sees_their_own_unread_count(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
) -> None:
    thread, _answer = _thread(qa, make_user)
    ann = _member(make_client, make_user, "ann_member")
    ben = _member(make_client, make_user, "ben_member")
    _get(ann, f"/t/{thread.id}")
    assert _cache_state(_get(ben, f"/t/{thread.id}")) == "hit"

    recipient = db.query(User).filter_by(username="ben_member").one()
    notify(db, recipient, NotificationKind.MENTION, actor=None, thread=thread)
    db.commit()  # not through a request: no write bumped the cache
    page = _get(ben, f"/t/{thread.id}")
    assert _cache_state(page) == "miss"  # another class: one unread
    assert '<span class="count">1</span>' in page.text
    assert '<span class="count">' not in _get(ann, f"/t/{thread.id}").text


def test_a_members_own_marks_never_reach_another(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], qa: QA
) -> None:
    thread, answer = _thread(qa, make_user)
    ann = _member(make_client, make_user, "ann_member")
    ben = _member(make_client, make_user, "ben_member")
    token = _CSRF_META.findall(_get(ann, f"/t/{thread.id}").text)[0]
    vote = {"value": "1", "csrf_token": token}
    assert (
        ann.post(f"/posts/{answer.id}/vote", data=vote, follow_redirects=False).status_code == 303
    )
    watch = {"csrf_token": token, "watch": "1"}
    assert ann.post(f"/t/{thread.id}/watch", data=watch, follow_redirects=False).status_code < 400

    for expected in ("miss", "hit"):  # she voted: her page is her own, kept for her
        mine = _get(ann, f"/t/{thread.id}")
        assert _cache_state(mine) == expected
        pressed = mine.text.split(f'id="vote-{answer.id}"', 1)[1].split("</div>", 1)[0]
        assert 'aria-pressed="true"' in pressed
    for _ in range(2):
        page = _get(ben, f"/t/{thread.id}")
        theirs = page.text.split(f'id="vote-{answer.id}"', 1)[1].split("</div>", 1)[0]
        assert 'aria-pressed="true"' not in theirs
        assert re.search(r'<span class="score"[^>]*>1</span>', theirs)  # the vote counts
        assert 'name="watch" value="1"' in page.text  # Ann watches; Ben is offered to
    assert _cache_state(page) == "hit"


def test_who_never_shares_a_page(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
) -> None:
    thread, answer = _thread(qa, make_user)
    ann = _member(make_client, make_user, "ann_member")
    _get(ann, f"/t/{thread.id}")
    assert _cache_state(_get(ann, f"/t/{thread.id}")) == "hit"  # a page is kept for members

    # The asker and the answerer each get a page of their own (the next test), never Ann's.
    asker = make_client()
    log_in(asker, "asker")
    asker.get("/")
    page = _get(asker, f"/t/{thread.id}")
    assert _cache_state(page) == "miss" and "Accept this answer" in page.text
    helper = make_client()
    log_in(helper, "helper")
    helper.get("/")
    page = _get(helper, f"/t/{thread.id}")
    assert _cache_state(page) == "miss" and f"/posts/{answer.id}/edit" in page.text
    moderator = _member(make_client, make_user, "moddy_one", role=Role.MODERATOR)
    page = _get(moderator, f"/t/{thread.id}")
    assert _cache_state(page) is None and "mod-post-tools" in page.text

    retagger = _member(make_client, make_user, "tagger_member", trust_level=2)
    page = _get(retagger, f"/t/{thread.id}")
    assert _cache_state(page) == "miss"  # another trust level, another class (may retag)

    quiet = _member(make_client, make_user, "quiet_member")
    silenced = utcnow() + timedelta(days=1)
    db.execute(update(User).where(User.username == "quiet_member").values(silenced_until=silenced))
    db.commit()
    page = _get(quiet, f"/t/{thread.id}")
    assert _cache_state(page) is None and f"/posts/{answer.id}/vote" not in page.text

    fragment = _get(ann, f"/t/{thread.id}", **{"HX-Request": "true"})
    assert _cache_state(fragment) is None


def test_a_posters_own_page_is_kept_for_them_alone_as_if_rendered_for_them(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
    app: FastAPI,
) -> None:
    thread, answer = _thread(qa, make_user)
    _rename(db, "asker", "Asker <i>\"&' Ó")
    asker = make_client()
    log_in(asker, "asker")
    asker.get("/")
    assert _cache_state(_get(asker, f"/t/{thread.id}")) == "miss"
    kept = _get(asker, f"/t/{thread.id}")
    assert _cache_state(kept) == "hit"
    assert "Accept this answer" in kept.text
    assert "Asker &lt;i&gt;&#34;&amp;&#39; Ó" in kept.text
    with _cache_off(app):
        own = _get(asker, f"/t/{thread.id}")
    assert _same_but_for_the_moment(kept.text) == _same_but_for_the_moment(own.text)

    # The answerer, whose marks differ, gets hers, never the asker's; a plain member neither.
    helper = make_client()
    log_in(helper, "helper")
    helper.get("/")
    for client in (helper, _member(make_client, make_user, "ann_member")):
        page = _get(client, f"/t/{thread.id}")
        assert _cache_state(page) == "miss"
        assert "Accept this answer" not in page.text
        assert _CSRF_META.findall(kept.text)[0] not in page.text

    # Her own write changes her page at once: accepting the answer is not served stale.
    token = _CSRF_META.findall(kept.text)[0]
    accepted = asker.post(
        f"/posts/{answer.id}/accept", data={"csrf_token": token}, follow_redirects=False
    )
    assert accepted.status_code < 400
    page = _get(asker, f"/t/{thread.id}")
    assert _cache_state(page) == "miss" and "Accept this answer" not in page.text


def test_member_and_visitor_pages_never_cross(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], qa: QA
) -> None:
    thread, _answer = _thread(qa, make_user)
    visitor = make_client()
    _get(visitor, f"/t/{thread.id}")
    assert _cache_state(_get(visitor, f"/t/{thread.id}")) == "hit"
    ann = _member(make_client, make_user, "ann_member")
    page = _get(ann, f"/t/{thread.id}")
    assert _cache_state(page) == "miss"  # not the visitor's page
    assert "ann_member" in page.text and "Log in" not in page.text
    assert page.headers["cache-control"] == "no-store"

    ann_page = _get(ann, f"/t/{thread.id}")
    assert _cache_state(ann_page) == "hit"
    other_visitor = make_client()
    page = _get(other_visitor, f"/t/{thread.id}")
    assert "ann_member" not in page.text and "Log in" in page.text


def test_a_view_served_to_members_from_the_cache_counts_once_each(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
    app: FastAPI,
) -> None:
    thread, _answer = _thread(qa, make_user)
    app.state.view_counter.flush()
    readers = [_member(make_client, make_user, f"reader_{n}") for n in range(3)]
    for reader in readers:
        _get(reader, f"/t/{thread.id}")
    assert _cache_state(_get(readers[2], f"/t/{thread.id}")) == "hit"
    assert app.state.view_counter.flush() == 3  # three members, one of them twice
    fresh(db)
    stored = db.get(Thread, thread.id)
    assert stored is not None and stored.view_count == 3


# --- the rule that the route must have rendered the page for the class ----------------------


def _app_with_one_member_page(page_settings: Settings, user: User, declared: str) -> FastAPI:
    """A bare app: the page cache, `user` as the viewer whose class is "plain" (as the context
    middleware sets them), and one page whose route declares `declared`."""
    app = FastAPI()
    app.state.page_cache = PageCache(page_settings)

    @app.get("/t/{thread_id}", name="thread", response_class=HTMLResponse)
    def page(request: Request, thread_id: str) -> str:
        rendered_for_class(request.scope["state"], declared)
        return f"<p>{request.state.viewer.display_name}</p>"

    class SignedIn:
        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            viewer = Viewer(user_id=user.id, username="zed", display_name="Zed", role=Role.MEMBER)
            state = scope.setdefault("state", {})
            state.update(viewer=viewer, csrf_token="t0k", csp_nonce="n0n")
            state[CLASS_STATE] = "plain"
            await self.inner(scope, receive, send)

    app.add_middleware(PageCacheMiddleware, replays={})
    app.add_middleware(SignedIn)
    return app


@pytest.mark.parametrize(("declared", "second"), [("plain", "hit"), ("another", "miss")])
def test_a_page_is_kept_only_for_the_class_the_route_rendered_it_for(
    app: FastAPI,
    make_user: Callable[..., User],
    declared: str,
    second: str,
) -> None:
    bare = _app_with_one_member_page(app.state.settings, make_user("zed"), declared)
    with TestClient(bare) as client:
        first = client.get("/t/1")
        assert first.headers["x-cache"] == "miss" and first.text == "<p>Zed</p>"
        again = client.get("/t/1")
    assert again.headers["x-cache"] == second and again.text == "<p>Zed</p>"
