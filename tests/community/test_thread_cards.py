"""Thread pages of plain members share their post cards (community/thread_view.py): a member
with no vote and no post in a thread gets the question and answers from the fragment cache,
with their own CSRF token, until the next write; the asker, a member who voted or answered,
staff and a silenced member get their own. Runs with the memory store and with Redis."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.models import Post, Role, Thread, User
from tests.community.test_fragment_cache import (  # settings: the page cache on, both stores
    _CSRF_META,
    _get,
    _member,
    settings,  # noqa: F401
    statements,
)
from tests.conftest import QA, log_in

_VOTE_TOKENS = re.compile(
    r'<form method="post" action="/posts/\d+/vote".*?name="csrf_token" value="([^"]+)"', re.S
)


def _posts_queries(seen: list[str]) -> list[str]:
    return [s for s in seen if "FROM posts" in s and "posts.body_html" in s]


def _thread(qa: QA, make_user: Callable[..., User]) -> tuple[Thread, Post, User, User]:
    asker, helper = make_user("asker"), make_user("helper")
    thread = qa.ask(asker, title="Roaming stopped after the update")
    answer = qa.answer(helper, thread, body="Turn data roaming on again in Settings.")
    return thread, answer, asker, helper


def _two_members(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], qa: QA
) -> tuple[Thread, Post, TestClient, TestClient]:
    """Ben is of another trust level than Ann: not the same whole page (he may retag;
    community.core.member_pages), the same cards."""
    thread, answer, _asker, _helper = _thread(qa, make_user)
    ann = _member(make_client, make_user, "ann_member")
    return thread, answer, ann, _member(make_client, make_user, "ben_member", trust_level=2)


def _upvote(client: TestClient, post: Post, token: str) -> int:
    data = {"value": "1", "csrf_token": token}
    return client.post(f"/posts/{post.id}/vote", data=data, follow_redirects=False).status_code


def test_plain_members_share_the_cards_each_with_their_own_token(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], qa: QA, engine: Engine
) -> None:
    thread, answer, ann, ben = _two_members(make_client, make_user, qa)

    with statements(engine) as first:
        ann_page = _get(ann, f"/t/{thread.id}")
    assert len(_posts_queries(first)) == 1
    with statements(engine) as second:
        ben_page = _get(ben, f"/t/{thread.id}")
    assert ben_page.headers["x-cache"] == "miss"  # not Ann's whole page
    assert _posts_queries(second) == []  # the cards came from the cache
    selects = [s for s in second if s.lstrip().startswith("SELECT")]
    # The viewer's session, their class (community.core.member_pages), the thread with the
    # viewer's marks.
    assert len(selects) == 3
    assert "Turn data roaming on again in Settings." in ben_page.text
    assert "ben_member" in ben_page.text and "ann_member" not in ben_page.text

    ann_token = _CSRF_META.findall(ann_page.text)[0]
    ben_token = _CSRF_META.findall(ben_page.text)[0]
    assert ann_token != ben_token
    assert set(_VOTE_TOKENS.findall(ben_page.text)) == {ben_token}  # vote forms carry Ben's
    assert ann_token not in ben_page.text
    assert _upvote(ben, answer, ben_token) == 303  # the token in the shared card works


def test_a_write_makes_the_shared_cards_stale(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], qa: QA, engine: Engine
) -> None:
    thread, answer, ann, ben = _two_members(make_client, make_user, qa)
    _get(ann, f"/t/{thread.id}")
    token = _CSRF_META.findall(_get(ann, f"/t/{thread.id}").text)[0]
    assert _upvote(ann, answer, token) == 303

    with statements(engine) as after:
        page = _get(ben, f"/t/{thread.id}")
    assert len(_posts_queries(after)) == 1  # rendered again after the vote
    vote = page.text.split(f'id="vote-{answer.id}"', 1)[1].split("</div>", 1)[0]
    assert re.search(r'<span class="score"[^>]*>1</span>', vote)
    # Ann voted: her page is her own, with her vote pressed.
    mine = _get(ann, f"/t/{thread.id}").text.split(f'id="vote-{answer.id}"', 1)[1]
    assert 'aria-pressed="true"' in mine.split("</div>", 1)[0]


def test_the_asker_an_answerer_staff_and_a_silenced_member_get_their_own(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
    engine: Engine,
) -> None:
    thread, answer, _asker, _helper = _thread(qa, make_user)
    _get(_member(make_client, make_user, "ann_member"), f"/t/{thread.id}")  # cards kept

    asker = make_client()
    log_in(asker, "asker")
    with statements(engine) as seen:
        page = _get(asker, f"/t/{thread.id}").text
    assert len(_posts_queries(seen)) == 1 and "Accept this answer" in page

    helper = make_client()
    log_in(helper, "helper")
    page = _get(helper, f"/t/{thread.id}").text
    own = page.split(f'id="post-{answer.id}"', 1)[1].split("</section>", 1)[0]
    assert f"/posts/{answer.id}/edit" in own  # the helper may edit their answer

    moderator = _member(make_client, make_user, "moddy_one", role=Role.MODERATOR)
    assert "mod-post-tools" in _get(moderator, f"/t/{thread.id}").text

    silenced = _member(make_client, make_user, "quiet_member")
    db.execute(
        update(User)
        .where(User.username == "quiet_member")
        .values(silenced_until=utcnow() + timedelta(days=1))
    )
    db.commit()
    page = _get(silenced, f"/t/{thread.id}").text
    assert "Turn data roaming on again in Settings." in page
    assert _VOTE_TOKENS.findall(page) == []  # no vote forms for a silenced member


def test_each_language_has_its_own_cards(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], qa: QA
) -> None:
    thread, answer, _asker, _helper = _thread(qa, make_user)
    english = _get(_member(make_client, make_user, "ann_member"), f"/t/{thread.id}")
    spanish = _get(
        _member(make_client, make_user, "ben_member"),
        f"/t/{thread.id}",
        **{"Accept-Language": "es"},
    )
    assert "Upvote: this is useful" in english.text
    assert "Upvote: this is useful" not in spanish.text
    assert f'id="vote-{answer.id}"' in spanish.text
