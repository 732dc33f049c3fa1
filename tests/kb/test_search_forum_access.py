"""Search and restricted forums (issue 16), on the real Meilisearch: the search page (KB and
community), the JSON search API and the ask form's suggestions find only threads and community
solutions of forums the reader may read, the database fallback too; a change of a forum's access
applies at once and the documents follow it once the worker has indexed them again; an archived
brand's documents never come back for anyone but a site admin."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from community import voting
from community.core import indexing
from community.core.clock import utcnow
from community.core.db import make_session_factory
from community.core.models import Brand, Forum, ForumAccess, Thread, User
from community.core.settings import Settings
from community.core.staff import load_brand_roles
from community.worker import Worker
from kb import service_search, suggestions
from kb.search import SearchEngine
from tests.community.test_forum_access import (
    PUBLIC,
    STAFF,
    VERIFIED,
    acme_and_globex,
    add_readers,
    restrict,
)
from tests.community.test_forum_access import READS as ALL_READS
from tests.conftest import QA, drain, fresh, log_in

UserFactory = Callable[..., User]

# The readers of tests/community/test_forum_access.py but the agent (a moderator is as much staff).
READS = {who: forums for who, forums in ALL_READS.items() if who != "agent"}


@dataclass
class Indexed:
    acme: Brand
    forums: dict[str, Forum]
    threads: dict[str, Thread]
    worker: Worker
    readers: dict[str, User] = field(default_factory=dict)


@pytest.fixture
def indexed(
    db: Session, forum: Forum, make_user: UserFactory, settings: Settings, engine: Engine
) -> Indexed:
    """A solved, promoted thread in each of acme's forums (public, verified customers', staff's),
    all indexed, and one person per kind of reader."""
    forums, globex = acme_and_globex(db, forum)
    asker, helper = make_user("asker"), make_user("helper")
    fans = [make_user(f"fan{index}") for index in range(3)]
    made: dict[str, Thread] = {}
    for slug, target in forums.items():
        qa = QA(db=db, forum=target)
        thread = qa.ask(asker, title=f"Roaming charges abroad in the {slug} corner")
        answer = qa.answer(helper, thread, f"Turn data roaming off ({slug}).")
        for fan in fans:
            voting.cast_vote(db, fan, answer.id, 1)
        voting.accept(db, asker, answer.id)
        db.commit()
        made[slug] = thread
    restrict(db, forums)
    worker = Worker(settings, make_session_factory(engine))
    drain(worker)
    return Indexed(
        forum.brand, forums, made, worker, add_readers(db, make_user, forum.brand, globex)
    )


def _browser(make_client: Callable[[], TestClient], indexed: Indexed, who: str) -> TestClient:
    browser = make_client()
    if who != "anonymous":
        log_in(browser, indexed.readers[who].username)
    return browser


def _found_forums(indexed: Indexed, text: str) -> set[str]:
    """Which of the threads (by forum) a page or JSON body links to."""
    return {slug for slug, thread in indexed.threads.items() if f'/t/{thread.id}"' in text}


def _result_links(html: str) -> str:
    return "".join(f'{link}"' for link in re.findall(r'<h2><a href="([^"]+)">', html))


def _searched(browser: TestClient) -> tuple[str, str, str]:
    """The community search page, the KB search page and the ask form's suggestions."""
    community = browser.get("/b/acme/search", params={"q": "roaming", "scope": "community"})
    kb = browser.get("/b/acme/search", params={"q": "roaming"})
    suggested = browser.get(
        "/b/acme/kb/suggest",
        params={"title": "roaming charges abroad"},
        headers={"HX-Request": "true"},
    )
    assert [page.status_code for page in (community, kb, suggested)] == [200, 200, 200]
    return community.text, kb.text, suggested.text


@pytest.mark.parametrize("who", sorted(READS))
def test_search_suggestions_and_the_api_find_only_readable_forums(
    make_client: Callable[[], TestClient], indexed: Indexed, who: str
) -> None:
    browser = _browser(make_client, indexed, who)
    community, kb, suggested = _searched(browser)
    api = browser.get("/api/v1/brands/acme/search", params={"q": "roaming", "scope": "community"})
    api_kb = browser.get("/api/v1/brands/acme/search", params={"q": "roaming"})
    assert api.status_code == api_kb.status_code == 200
    for text in (community, kb, suggested):
        assert "reduced mode" not in text  # Meilisearch answered, not the fallback
    assert _found_forums(indexed, _result_links(community)) == READS[who]
    assert _found_forums(indexed, _result_links(kb)) == READS[who]  # the solutions
    for body in (api.json(), api_kb.json()):
        urls = "".join(f'{hit["url"]}"' for hit in body["hits"])
        assert _found_forums(indexed, urls) == READS[who]
        assert body["total"] == len(READS[who])  # counts say nothing of the others either
    assert _found_forums(indexed, suggested) == READS[who]
    # Facets count only what may be read: no restricted forum's slug in them.
    faceted = browser.get(
        "/api/v1/brands/acme/search",
        params={"q": "roaming", "scope": "community", "facets": "true"},
    ).json()
    forums = {value for facet in faceted["facets"] for value, *_count in facet["values"]}
    assert forums & {PUBLIC, VERIFIED, STAFF} == READS[who]


def test_the_database_fallback_keeps_the_same_rule(
    app: FastAPI, settings: Settings, make_client: Callable[[], TestClient], indexed: Indexed
) -> None:
    """With Meilisearch out of reach, search and suggestions come from the database: still
    nothing of a forum the reader may not read."""
    app.state.search = SearchEngine(settings.model_copy(update={"meili_url": None}), writes=False)
    for who in ("member", "verified", "moderator"):
        community, kb, suggested = _searched(_browser(make_client, indexed, who))
        assert "reduced mode" in community
        assert _found_forums(indexed, _result_links(community)) == READS[who], who
        assert _found_forums(indexed, _result_links(kb)) == READS[who], who
        assert _found_forums(indexed, suggested) == READS[who], who


def _search(db: Session, app: FastAPI, indexed: Indexed, reader: User | None) -> set[str]:
    fresh(db)
    brand = db.get(Brand, indexed.acme.id)
    assert brand is not None
    if reader is not None:
        reader = load_brand_roles(db, reader)  # as the request's user carries them
    page = service_search.search(
        db, app.state.search, brand, "roaming", scope="community", reader=reader
    )
    assert not page.degraded
    return _found_forums(indexed, "".join(f'{hit.url}"' for hit in page.hits))


def _indexed_access(app: FastAPI, indexed: Indexed, slug: str) -> tuple[str, bool]:
    """The access level and archived state the thread's document carries in the index."""
    engine: SearchEngine = app.state.search
    thread_id = indexed.threads[slug].id
    found = engine.search(
        engine.threads_index(indexed.acme.slug), "", filters=[f'id = "{thread_id}"']
    )
    assert len(found.hits) == 1
    return found.hits[0]["access"], found.hits[0]["brand_archived"]


def test_a_change_of_access_applies_at_once_and_the_documents_follow(
    app: FastAPI, db: Session, indexed: Indexed
) -> None:
    member = indexed.readers["member"]
    public = indexed.forums[PUBLIC]
    assert _indexed_access(app, indexed, PUBLIC) == ("public", False)
    public.access = ForumAccess.STAFF
    indexing.forum_access_changed(db, public.id)
    db.commit()
    # Before the worker has run: the forum is left out by what the database says now.
    assert _search(db, app, indexed, member) == set()
    assert _search(db, app, indexed, indexed.readers["moderator"]) == set(READS["moderator"])
    drain(indexed.worker)
    assert _indexed_access(app, indexed, PUBLIC) == ("staff", False)
    # Opened again: the documents say "public" again once indexed, and members find it.
    fresh(db)
    reopened = db.get(Forum, public.id)
    assert reopened is not None
    reopened.access = ForumAccess.PUBLIC
    indexing.forum_access_changed(db, reopened.id)
    db.commit()
    drain(indexed.worker)
    assert _indexed_access(app, indexed, PUBLIC) == ("public", False)
    assert _search(db, app, indexed, member) == {PUBLIC}


def test_an_archived_brand_never_comes_back_from_search_but_for_site_admins(
    app: FastAPI, db: Session, indexed: Indexed
) -> None:
    brand = db.get(Brand, indexed.acme.id)
    assert brand is not None
    brand.archived_at = utcnow()
    indexing.brand_archived(db, brand.id)
    db.commit()
    drain(indexed.worker)
    assert _indexed_access(app, indexed, PUBLIC) == ("public", True)
    for who in ("member", "verified", "moderator", "other_brand_staff"):
        assert _search(db, app, indexed, indexed.readers[who]) == set(), who
    assert _search(db, app, indexed, None) == set()
    assert _search(db, app, indexed, indexed.readers["admin"]) == set(READS["admin"])
    fresh(db)
    archived = db.get(Brand, indexed.acme.id)
    assert archived is not None
    hits, _degraded = suggestions.suggest(
        db,
        app.state.search,
        archived,
        "roaming charges abroad",
        locale="en",
        reader=load_brand_roles(db, indexed.readers["moderator"]),
    )
    assert hits == []
