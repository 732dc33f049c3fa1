"""Atom feeds of forums and tags: valid Atom with absolute links, public content only (never
held, hidden or deleted threads, restricted forums or archived brands), ETag and 304, and the
links to them on the forum and tag pages."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.models import Forum, ForumAccess, Role, Thread, User, Visibility
from community.core.settings import Settings
from community.visibility import question_of
from moderation import actions
from tests.conftest import QA

UserFactory = Callable[..., User]
ATOM = "{http://www.w3.org/2005/Atom}"


def _feed(client: TestClient, path: str) -> etree._Element:
    response = client.get(path)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].startswith("application/atom+xml")
    root = etree.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    return root


def _titles(root: etree._Element) -> list[str]:
    return [entry.findtext(f"{ATOM}title") or "" for entry in root.iter(f"{ATOM}entry")]


def test_a_forum_feed_is_atom_with_absolute_links_authors_and_summaries(
    client: TestClient, settings: Settings, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    asker.display_name = "Ana <b>Asker</b>"
    qa.db.commit()
    thread = qa.ask(
        asker,
        "Roaming stopped after the update",
        "Since **yesterday** my phone says <script>alert(1)</script> no service abroad.",
        tags=["roaming"],
    )
    root = _feed(client, "/b/acme/mobile/feed.atom")
    base = settings.base_url.rstrip("/")
    assert root.findtext(f"{ATOM}id") == f"{base}/b/acme/mobile/feed.atom"
    assert root.findtext(f"{ATOM}title") == "Mobile · Acme"
    assert root.findtext(f"{ATOM}updated")
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links["self"] == f"{base}/b/acme/mobile/feed.atom"
    assert links["alternate"] == f"{base}/b/acme/mobile"
    [entry] = root.iter(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}id") == f"{base}/t/{thread.id}"
    assert entry.findtext(f"{ATOM}title") == "Roaming stopped after the update"
    assert entry.find(f"{ATOM}link").get("href") == f"{base}/t/{thread.id}"  # type: ignore[union-attr]
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "Ana <b>Asker</b>"  # text, not markup
    assert entry.find(f"{ATOM}category").get("term") == "roaming"  # type: ignore[union-attr]
    summary = entry.find(f"{ATOM}summary")
    assert summary is not None and summary.get("type") == "text"
    assert summary.text is not None and summary.text.startswith("Since yesterday my phone says")
    # What the asker typed is text in a text summary: escaped in the document, never markup.
    assert "<script>alert(1)</script> no service abroad." in summary.text
    assert b"<script>" not in etree.tostring(root)
    assert entry.findtext(f"{ATOM}updated", "").endswith("Z")


def test_feeds_leave_out_held_hidden_deleted_and_restricted_threads(
    client: TestClient, db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    member = make_user("member")
    shown = qa.ask(member, "A public question here", tags=["esim"])
    held = qa.ask(make_user("newcomer", trust_level=0), "A held question waiting", tags=["esim"])
    hidden = qa.ask(member, "A question a moderator hid", tags=["esim"])
    deleted = qa.ask(member, "A question its author deleted", tags=["esim"])
    moderator = make_user("modkim", role=Role.MODERATOR)
    actions.set_post_visibility(
        db, moderator, question_of(db, hidden), Visibility.HIDDEN, reason=None
    )
    actions.set_post_visibility(
        db, moderator, question_of(db, deleted), Visibility.DELETED, reason=None
    )
    staff_only = Forum(brand_id=forum.brand_id, slug="internal", name="Internal",
                       access=ForumAccess.STAFF)  # fmt: skip
    db.add(staff_only)
    db.commit()
    secret = QA(db=db, forum=staff_only).ask(moderator, "Staff only runbook", tags=["esim"])
    db.commit()
    assert db.get(Thread, held.id).visibility == Visibility.PENDING  # type: ignore[union-attr]

    for path in ("/b/acme/mobile/feed.atom", "/b/acme/tags/esim/feed.atom"):
        titles = _titles(_feed(client, path))
        assert titles == [shown.title], path
    assert secret.id
    # The restricted forum has no feed at all, for anyone.
    assert client.get("/b/acme/internal/feed.atom").status_code == 404


def test_feeds_of_unknown_or_archived_places_are_404(
    client: TestClient, db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    qa.ask(make_user("member"), "Voicemail does not work", tags=["voicemail"])
    for path in ("/b/acme/nope/feed.atom", "/b/nobrand/mobile/feed.atom",
                 "/b/acme/tags/nope/feed.atom"):  # fmt: skip
        assert client.get(path).status_code == 404, path
    assert client.get("/b/acme/tags/%00/feed.atom").status_code in (400, 404)
    forum.brand.archived_at = utcnow()
    db.commit()
    for path in ("/b/acme/mobile/feed.atom", "/b/acme/tags/voicemail/feed.atom"):
        assert client.get(path).status_code == 404, path


def test_an_unchanged_feed_answers_304_to_its_etag(
    client: TestClient, qa: QA, make_user: UserFactory
) -> None:
    asker = make_user("asker")
    qa.ask(asker, "First question about roaming")
    first = client.get("/b/acme/mobile/feed.atom")
    etag = first.headers["etag"]
    assert first.headers["last-modified"].endswith("GMT")
    again = client.get("/b/acme/mobile/feed.atom", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    qa.ask(asker, "Second question about voicemail")
    changed = client.get("/b/acme/mobile/feed.atom", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag


def test_characters_xml_cannot_hold_are_dropped(
    client: TestClient, db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"), "Roaming stopped after the update")
    thread.title = "Bell\x07 and \x1b[31mcolour\ufffe"
    db.commit()
    assert _titles(_feed(client, "/b/acme/mobile/feed.atom")) == ["Bell and [31mcolour"]


def test_the_forum_page_links_its_feed_and_a_tag_s_page(
    client: TestClient, db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    qa.ask(make_user("asker"), "Roaming stopped after the update", tags=["roaming"])
    page = client.get("/b/acme/mobile?tag=roaming").text
    assert 'href="/b/acme/mobile/feed.atom" type="application/atom+xml"' in page
    assert 'href="/b/acme/tags/roaming"' in page
    forum.access = ForumAccess.VERIFIED
    db.commit()
    verified = make_user("verified")
    verified.verified_customer = True
    db.commit()
    assert client.get("/b/acme/mobile/feed.atom").status_code == 404
