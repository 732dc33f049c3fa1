"""Shared fragments of signed-in pages (community/core/fragment_cache.py): members who are not
staff share one rendering of a forum's thread list until the next write; staff get their own
(removed threads shown); each language its own. Runs with the memory store and with Redis."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from community.core import meili
from community.core.models import Post, Role, User
from community.core.settings import Settings
from tests.conftest import LIMIT_STORAGES, QA, REDIS_URL, log_in, make_settings

LIST = "/b/acme/mobile"
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


@pytest.fixture(params=LIMIT_STORAGES)
def settings(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    database_url: str,
    meili_server: meili.MeiliServer,
) -> Settings:
    redis_url = REDIS_URL if request.param == "redis" else None
    return make_settings(
        tmp_path,
        database_url,
        meili_server.url,
        redis_url=redis_url,
        page_cache_seconds=5.0,
        view_flush_seconds=3600,
    )


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _list_queries(seen: list[str]) -> list[str]:
    return [s for s in seen if "FROM threads" in s and "last_activity_at DESC" in s]


def _member(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], name: str, **kw: Any
) -> TestClient:
    client = make_client()
    make_user(name, **kw)
    log_in(client, name)
    client.get("/")  # the welcome flash is shown and gone
    return client


def _get(client: TestClient, path: str, **headers: str) -> Response:
    page = client.get(path, headers=headers)
    assert page.status_code == 200, page.text[:300]
    return page


def test_members_share_one_rendering_of_the_list_until_a_write(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    engine: Engine,
) -> None:
    asker = make_user("asker")
    thread = qa.ask(asker, title="Roaming stopped after the update")
    qa.ask(asker, title="Voicemail greeting is gone")
    ann = _member(make_client, make_user, "ann_member")
    ben = _member(make_client, make_user, "ben_member")

    with statements(engine) as first:
        page = _get(ann, LIST)
    assert len(_list_queries(first)) == 1
    assert "Roaming stopped after the update" in page.text and "ann_member" in page.text
    with statements(engine) as second:
        page = _get(ben, LIST)
    assert _list_queries(second) == []  # the list came from the cache
    assert "Roaming stopped after the update" in page.text and "Voicemail greeting" in page.text
    assert "ben_member" in page.text and "ann_member" not in page.text  # the header is Ben's

    token = _CSRF_META.findall(_get(ben, f"/t/{thread.id}").text)[0]
    posted = ben.post(
        f"/t/{thread.id}/answers",
        data={"body": "Turn data roaming on again in Settings.", "csrf_token": token},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    with statements(engine) as after:
        page = _get(ann, LIST)
    assert len(_list_queries(after)) == 1  # the write made the kept list stale
    row = page.text.split("Roaming stopped after the update", 1)[1].split("</li>", 1)[0]
    assert re.search(r"<dt>Answers</dt><dd><strong>1</strong>", row)


def test_staff_get_their_own_list_with_removed_threads(
    make_client: Callable[[], TestClient],
    make_user: Callable[..., User],
    qa: QA,
    db: Session,
) -> None:
    asker = make_user("asker")
    qa.ask(asker, title="Roaming stopped after the update")
    spam = qa.ask(asker, title="Cheap watches for sale here")
    moderator = _member(make_client, make_user, "moddy_one", role=Role.MODERATOR)
    token = _CSRF_META.findall(_get(moderator, f"/t/{spam.id}").text)[0]
    question = db.scalars(select(Post).where(Post.thread_id == spam.id, Post.is_question)).one()
    hidden = moderator.post(
        f"/mod/posts/{question.id}/hide", data={"csrf_token": token}, follow_redirects=False
    )
    assert hidden.status_code == 303, hidden.text[:300]
    member = _member(make_client, make_user, "ann_member")

    assert "Cheap watches for sale here" not in _get(member, LIST).text
    assert "Cheap watches for sale here" in _get(moderator, LIST).text
    assert "Cheap watches for sale here" not in _get(member, LIST).text
    assert "Roaming stopped after the update" in _get(member, LIST).text


def test_each_language_has_its_own_list(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], qa: QA
) -> None:
    qa.ask(make_user("asker"), title="Roaming stopped after the update")
    english = _get(_member(make_client, make_user, "ann_member"), LIST, **{"Accept-Language": "en"})
    spanish = _get(_member(make_client, make_user, "ben_member"), LIST, **{"Accept-Language": "es"})
    assert '<span class="badge">Question</span>' in english.text
    assert '<span class="badge">Pregunta</span>' in spanish.text
    assert '<span class="badge">Question</span>' not in spanish.text
