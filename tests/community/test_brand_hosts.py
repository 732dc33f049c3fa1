"""A brand on a host name of its own: the Host maps to the brand (its home at "/"), hosts the
site does not know get a 400, another brand's pages are sent to that brand's address, header
links stay relative to the host a brand is read on, and a brand's absolute links use its host."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from community.core import brand_look_service, hosts
from community.core.brand_look import brand_base_url, request_host, shared_hosts
from community.core.clock import utcnow
from community.core.models import Brand, Forum, Role, User
from community.core.settings import Settings
from tests.community.test_brand_look import second_brand
from tests.conftest import QA, csrf_token, fresh, log_in

UserFactory = Callable[..., User]
BRAVO_HOST = "support.bravo.example"


@pytest.fixture
def checked_hosts(app: FastAPI, settings: Settings) -> Settings:
    """This test's app with the Host check on: BASE_URL's host and the test client's only."""
    # http: the session cookie is not Secure, so the test client keeps sending it.
    checked = settings.model_copy(
        update={"base_url": "http://community.example", "allowed_hosts": "testserver"}
    )
    app.state.settings = checked
    return checked


def _bravo(db: Session) -> Forum:
    return second_brand(db, host=BRAVO_HOST)


def _on(app: FastAPI, host: str, scheme: str = "http") -> TestClient:
    return TestClient(app, base_url=f"{scheme}://{host}")


def _header(page: str) -> str:
    return page.split('<main id="main"')[0]


def test_a_brands_host_serves_that_brand(
    app: FastAPI, db: Session, forum: Forum, checked_hosts: Settings
) -> None:
    _bravo(db)
    browser = _on(app, BRAVO_HOST)
    home = browser.get("/")
    assert home.status_code == 200
    assert "Bravo help desk" in home.text and "Mobile</a>" not in home.text.split("<main")[1]
    header = _header(home.text)
    assert "Bravo Mobile" in header and "Acme" not in header
    # On its own host the brand's home, KB and search are at the host's root.
    assert 'href="/"' in header and 'href="/kb"' in header and 'href="/search"' in header
    assert "/b/acme" not in header
    assert "Bravo" in browser.get("/kb").text
    # Its /b/<slug> pages answer there too.
    assert browser.get("/b/bravo").status_code == 200
    # The shared host still serves every brand under /b/<slug>, the default at "/".
    shared = _on(app, "testserver")
    assert "Acme" in _header(shared.get("/").text)
    bravo_on_shared = _header(shared.get("/b/bravo").text)
    assert "Bravo Mobile" in bravo_on_shared and 'href="/b/bravo/kb"' in bravo_on_shared


def test_hosts_the_site_does_not_know_get_a_400(
    app: FastAPI, db: Session, forum: Forum, checked_hosts: Settings
) -> None:
    _bravo(db)
    for host in ("evil.example", "support.bravo.example.evil.example", "bravo.example"):
        refused = _on(app, host).get("/")
        assert refused.status_code == 400, host
        assert "Unknown host" in refused.text
        api = _on(app, host).get("/api/v1/brands")
        assert api.status_code == 400 and api.json()["error"]["code"] == "unknown_host"
    assert _on(app, "community.example").get("/").status_code == 200
    assert _on(app, "COMMUNITY.example:8080").get("/").status_code == 200
    assert _on(app, "testserver").get("/").status_code == 200
    # Load balancers probe by address.
    assert _on(app, "10.0.0.7:8000").get("/healthz").status_code == 200


def test_with_any_host_allowed_a_brands_host_still_serves_that_brand(
    app: FastAPI, db: Session, forum: Forum, settings: Settings
) -> None:
    """ALLOWED_HOSTS=* lets any host in as the shared site, but a brand's own host is still
    that brand's."""
    app.state.settings = settings.model_copy(
        update={"base_url": "http://community.example", "allowed_hosts": "*"}
    )
    _bravo(db)
    hosts.forget_brands(app.state)
    assert "Bravo Mobile" in _header(_on(app, BRAVO_HOST).get("/").text)
    anywhere = _on(app, "anything.example").get("/")
    assert anywhere.status_code == 200 and "Acme" in _header(anywhere.text)


def test_the_shared_host_answers_without_reading_the_brands(
    app: FastAPI, forum: Forum, checked_hosts: Settings
) -> None:
    hosts.forget_brands(app.state)
    _on(app, "testserver").get("/healthz")
    assert getattr(app.state, hosts.STATE_NAME, None) is None


def test_another_brands_pages_go_to_its_own_address(
    app: FastAPI, db: Session, forum: Forum, checked_hosts: Settings
) -> None:
    _bravo(db)
    on_bravo = _on(app, BRAVO_HOST)
    moved = on_bravo.get("/b/acme/mobile?sort=newest", follow_redirects=False)
    assert moved.status_code == 302
    assert moved.headers["location"] == "http://community.example/b/acme/mobile?sort=newest"
    refused = on_bravo.post("/b/acme/ask/new", data={"title": "x"}, follow_redirects=False)
    assert refused.status_code == 404
    # Acme on a host of its own: Bravo's host sends there.
    acme = db.get(Brand, forum.brand_id)
    assert acme is not None
    acme.host = "help.acme.example"
    db.commit()
    hosts.forget_brands(app.state)
    again = on_bravo.get("/b/acme", follow_redirects=False)
    assert again.headers["location"] == "http://help.acme.example/b/acme"
    # Stylesheets of any brand are served on any host (a page of another brand links them).
    assert on_bravo.get("/b/acme/theme.css").status_code == 404  # none: no colours of its own


def test_a_thread_read_on_its_brands_host_shows_that_brand(
    app: FastAPI, db: Session, forum: Forum, make_user: UserFactory, checked_hosts: Settings
) -> None:
    bravo_forum = _bravo(db)
    thread = QA(db=db, forum=bravo_forum).ask(make_user("asker"), title="Roaming with Bravo")
    for host, home in ((BRAVO_HOST, "/"), ("testserver", "/b/bravo")):
        page = _on(app, host).get(f"/t/{thread.id}")
        assert page.status_code == 200
        header = _header(page.text)
        assert "Bravo Mobile" in header and "Acme" not in header
        assert f'class="brand-mark" href="{home}"' in header


def test_pages_without_a_brand_show_the_hosts_brand(
    app: FastAPI, db: Session, forum: Forum, checked_hosts: Settings
) -> None:
    _bravo(db)
    login = _on(app, BRAVO_HOST).get("/login")
    assert "Bravo Mobile" in _header(login.text)
    assert "Acme" in _header(_on(app, "testserver").get("/login").text)


def test_host_names_through_the_api(
    client: TestClient, db: Session, forum: Forum, make_user: UserFactory, checked_hosts: Settings
) -> None:
    _bravo(db)
    log_in(client, make_user("siteadmin", role=Role.ADMIN).username)
    headers = {"X-CSRF-Token": csrf_token(client, "/")}
    for host, message in (
        (BRAVO_HOST, "Another brand"),
        ("community.example", "whole site"),
        ("https://help.acme.example", "host name only"),
        ("help.acme.example:8443", "host name only"),
    ):
        refused = client.put("/api/v1/brands/acme/look", json={"host": host}, headers=headers)
        assert refused.status_code == 422, host
        assert message in refused.json()["error"]["details"]["host"]
    fresh(db)
    acme = db.get(Brand, forum.brand_id)
    assert acme is not None and acme.host is None

    saved = client.put(
        "/api/v1/brands/acme/look", json={"host": "Help.Acme.Example"}, headers=headers
    )
    assert saved.status_code == 200 and saved.json()["host"] == "help.acme.example"
    # Served there at once (the route dropped the brands this process keeps).
    assert "Acme" in _header(_on(client.app, "help.acme.example").get("/").text)  # type: ignore[arg-type]


def test_absolute_links_of_a_brand_start_at_its_host() -> None:
    assert brand_base_url("https://community.example/", None) == "https://community.example"
    assert brand_base_url("https://community.example", BRAVO_HOST) == f"https://{BRAVO_HOST}"
    assert brand_base_url("http://127.0.0.1:8000", BRAVO_HOST) == f"http://{BRAVO_HOST}"


def test_host_headers_are_read_without_their_port() -> None:
    assert request_host("Support.Example:8443") == "support.example"
    assert request_host("[::1]:8000") == "::1"
    assert request_host("") == ""
    assert "localhost" in shared_hosts("http://127.0.0.1:8000", "")
    assert "localhost" not in shared_hosts("https://community.example", "")
    assert shared_hosts("https://community.example", " a.example , b.example") >= {
        "community.example",
        "a.example",
        "b.example",
    }


def test_the_redirect_to_another_brand_keeps_the_path_encoded(
    app: FastAPI, db: Session, forum: Forum, checked_hosts: Settings
) -> None:
    """A crafted link ("%0d%0a", non-ASCII) never puts raw bytes into the Location header
    (uvicorn refuses such a header: a 500) and never changes the path's meaning."""
    _bravo(db)
    on_bravo = _on(app, BRAVO_HOST)
    for sent, expected in (
        ("/b/acme/%0d%0aSet-Cookie:%20x=1", "/b/acme/%0d%0aSet-Cookie:%20x=1"),
        ("/b/acme/caf%C3%A9?q=%E2%80%A8", "/b/acme/caf%C3%A9?q=%E2%80%A8"),
        ("/b/acme/a%2Fb", "/b/acme/a%2Fb"),
    ):
        moved = on_bravo.get(sent, follow_redirects=False)
        assert moved.status_code == 302, sent
        assert moved.headers["location"] == f"http://community.example{expected}"
        assert "set-cookie" not in moved.headers


def test_an_archived_brands_host_stylesheet_and_address_are_gone(
    app: FastAPI, db: Session, forum: Forum, checked_hosts: Settings
) -> None:
    """Archived: its host no longer shows its name and contact address on every brand-less
    page (/login), its colours are not served, and another brand's host does not send people
    to (and so name) its host."""
    bravo = db.get(Brand, _bravo(db).brand_id)
    acme = db.get(Brand, forum.brand_id)
    assert bravo is not None and acme is not None
    bravo.theme = {"primary": "#0b5cad", "accent": "#aa0000"}
    bravo.contact_email = "help@bravo.example"
    acme.host = "help.acme.example"
    db.commit()
    hosts.forget_brands(app.state)
    assert _on(app, "testserver").get("/b/bravo/theme.css").status_code == 200
    bravo.archived_at = utcnow()
    db.commit()
    hosts.forget_brands(app.state)
    login = _on(app, BRAVO_HOST).get("/login")
    assert login.status_code == 400 and "Bravo" not in login.text
    assert _on(app, "testserver").get("/b/bravo/theme.css").status_code == 404
    sent = _on(app, "help.acme.example").get("/b/bravo", follow_redirects=False)
    assert sent.status_code == 404 and BRAVO_HOST not in sent.headers.get("location", "")


def test_two_brands_claiming_one_host_at_once_get_a_422_not_a_500(
    client: TestClient,
    db: Session,
    forum: Forum,
    make_user: UserFactory,
    checked_hosts: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The other brand saved the host after this request checked it was free: the unique
    index refuses it, and the answer names the field."""
    _bravo(db)
    monkeypatch.setattr(
        brand_look_service, "_free_host", lambda _db, _settings, _brand, text, _errors: text
    )
    log_in(client, make_user("siteadmin", role=Role.ADMIN).username)
    headers = {"X-CSRF-Token": csrf_token(client, "/")}
    refused = client.put("/api/v1/brands/acme/look", json={"host": BRAVO_HOST}, headers=headers)
    assert refused.status_code == 422
    assert "Another brand" in refused.json()["error"]["details"]["host"]
    fresh(db)
    acme = db.get(Brand, forum.brand_id)
    assert acme is not None and acme.host is None
