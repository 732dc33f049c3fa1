"""The known-issue banner: on every page of the brand while an issue is open, on the right
forum and thread pages only when the issue is scoped, gone when closed, never on another
brand's pages, at most three, and no query per page once the short cache is warm."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, Role, Thread, User
from crowdservice.known_issues import service
from crowdservice.known_issues.forms import IssueForm
from crowdservice.known_issues.models import KnownIssue
from tests.conftest import QA, csrf_token, log_in

UserFactory = Callable[..., User]
BANNER = re.compile(r'<section class="known-issue-banner".*?</section>', re.S)


@pytest.fixture
def agent(make_user: UserFactory) -> User:
    return make_user("ava", role=Role.AGENT)


@pytest.fixture
def place(db: Session, qa: QA, make_user: UserFactory) -> dict[str, Any]:
    """Acme with two forums and a thread in each (one tagged esim), and Globex with its own."""
    brand = db.get(Brand, qa.forum.brand_id)
    assert brand is not None
    billing = Forum(brand_id=brand.id, slug="billing", name="Billing", description="")
    other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add_all([billing, other])
    db.flush()
    globex_forum = Forum(brand_id=other.id, slug="tv", name="TV", description="")
    db.add(globex_forum)
    db.commit()
    asker = make_user("asker")
    tagged = qa.ask(asker, title="eSIM will not activate", tags=["esim"])
    plain = qa.ask(asker, title="How do I change my plan?")
    qa.forum = billing
    billed = qa.ask(asker, title="Charged twice this month")
    qa.forum = globex_forum
    elsewhere = qa.ask(asker, title="Remote does not pair")
    return {
        "brand": brand, "billing": billing, "mobile": db.get(Forum, tagged.forum_id),
        "tagged": tagged, "plain": plain, "billed": billed, "elsewhere": elsewhere,
    }  # fmt: skip


def _publish(db: Session, agent: User, brand: Brand, title: str, **fields: object) -> KnownIssue:
    form = IssueForm(title=title)
    for name, value in fields.items():
        setattr(form, name, value)
    issue = service.publish(db, agent, brand, form)
    db.commit()
    return issue


def _banner(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    found = BANNER.search(page.text)
    return found.group(0) if found else ""


def _thread(thread: Thread) -> str:
    return f"/t/{thread.id}"


def test_an_unscoped_issue_shows_on_every_page_of_its_brand_only(
    client: TestClient, db: Session, agent: User, place: dict[str, Any]
) -> None:
    issue = _publish(db, agent, place["brand"], "Sign-in fails with error 502")
    for path in [
        "/b/acme", "/b/acme/mobile", "/b/acme/billing", "/b/acme/kb", "/b/acme/search?q=502",
        _thread(place["tagged"]), _thread(place["billed"]), "/b/acme/known-issues",
    ]:  # fmt: skip
        banner = _banner(client, path)
        assert "Sign-in fails with error 502" in banner, path
        assert f'href="/b/acme/known-issues/{issue.id}"' in banner and "Investigating" in banner
    for path in ["/b/globex", "/b/globex/tv", _thread(place["elsewhere"])]:
        assert _banner(client, path) == "", path


def test_a_forum_scoped_issue_shows_on_brand_pages_and_its_forum_only(
    client: TestClient, db: Session, agent: User, place: dict[str, Any]
) -> None:
    _publish(db, agent, place["brand"], "Invoices are late", forum_ids=[str(place["billing"].id)])
    for path in ["/b/acme", "/b/acme/kb", "/b/acme/billing", _thread(place["billed"])]:
        assert "Invoices are late" in _banner(client, path), path
    for path in ["/b/acme/mobile", _thread(place["tagged"]), _thread(place["plain"])]:
        assert _banner(client, path) == "", path


def test_a_tag_scoped_issue_shows_on_threads_with_the_tag(
    client: TestClient, db: Session, agent: User, place: dict[str, Any]
) -> None:
    _publish(db, agent, place["brand"], "eSIM activation stuck", tags=["esim"])
    assert "eSIM activation stuck" in _banner(client, _thread(place["tagged"]))
    assert "eSIM activation stuck" in _banner(client, "/b/acme")
    assert _banner(client, _thread(place["plain"])) == ""
    assert _banner(client, "/b/acme/mobile") == ""  # a forum page is not the tag's page


def test_closing_through_the_page_removes_the_banner_at_once(
    make_client: Callable[[], TestClient],
    db: Session,
    make_user: UserFactory,
    place: dict[str, Any],
) -> None:
    lead = make_user("lead", role=Role.AGENT)
    issue = _publish(db, lead, place["brand"], "Sign-in fails with error 502")
    browser = make_client()
    log_in(browser, lead.username)
    assert "Sign-in fails" in _banner(browser, "/b/acme")
    token = csrf_token(browser, "/b/acme")
    closed = browser.post(
        f"/agent/known-issues/{issue.id}/close",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert closed.status_code == 303
    assert _banner(browser, "/b/acme") == ""
    reopened = browser.post(
        f"/agent/known-issues/{issue.id}/reopen",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert reopened.status_code == 303
    assert "Sign-in fails" in _banner(browser, "/b/acme")


def test_at_most_three_newest_first(
    client: TestClient, db: Session, agent: User, place: dict[str, Any]
) -> None:
    for number in range(1, 5):
        _publish(db, agent, place["brand"], f"Problem number {number}")
    banner = _banner(client, "/b/acme")
    assert re.findall(r"Problem number (\d)", banner) == ["4", "3", "2"]


def test_fixed_issues_keep_their_banner_until_closed(
    client: TestClient, db: Session, agent: User, place: dict[str, Any]
) -> None:
    issue = _publish(db, agent, place["brand"], "Sign-in fails with error 502")
    service.post_update(db, agent, issue, "fixed", "Done.")
    db.commit()
    banner = _banner(client, "/b/acme")
    assert "Fixed" in banner and "badge" in banner


@contextmanager
def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_a_warm_cache_costs_pages_no_query(
    client: TestClient, db: Session, engine: Engine, agent: User, place: dict[str, Any]
) -> None:
    _publish(db, agent, place["brand"], "Sign-in fails with error 502")
    assert "Sign-in fails" in _banner(client, "/b/acme")
    with _statements(engine) as seen:
        assert "Sign-in fails" in _banner(client, "/b/acme/mobile")
        assert "Sign-in fails" in _banner(client, _thread(place["plain"]))
    assert not [sql for sql in seen if "known_issues" in sql]
