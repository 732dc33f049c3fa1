"""The admins' brand pages over HTTP: who may open and use them (anonymous, member, staff, a
brand admin of another brand, site admins), CSRF, pages with and without htmx, forms with
mistakes (a 4xx, the message beside the field, nothing saved), and what archiving a brand does
to its pages and API answers for members and for site admins."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.audit import AuditLog
from community.core.models import Brand, Forum, ForumAccess, Role, User
from community.core.workspace_models import BrandRole, StaffGrant
from tests.conftest import QA, csrf_token, fresh, log_in

AsRole = Callable[[Role | None], tuple[TestClient, User | None]]
UserFactory = Callable[..., User]
HTMX = {"HX-Request": "true"}


def _token(browser: TestClient) -> str:
    return csrf_token(browser, "/")


def _brand_admin(
    db: Session, make_user: UserFactory, make_client: Callable[[], TestClient], brand: Brand
) -> TestClient:
    user = make_user("owner")
    db.add(StaffGrant(user_id=user.id, brand_id=brand.id, role=BrandRole.BRAND_ADMIN))
    db.commit()
    browser = make_client()
    log_in(browser, "owner")
    return browser


def _brand(db: Session, slug: str) -> Brand:
    fresh(db)
    brand = db.scalar(select(Brand).where(Brand.slug == slug))
    assert brand is not None
    return brand


@pytest.fixture
def globex(db: Session, forum: Forum) -> Brand:
    brand = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(brand)
    db.commit()
    return brand


# --- who may -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 303), (Role.MEMBER, 403), (Role.MODERATOR, 403), (Role.AGENT, 403), (Role.ADMIN, 200)],
)
@pytest.mark.parametrize("path", ["/admin/brands", "/admin/brands/new", "/admin/brands/acme"])
def test_who_opens_the_brand_pages(
    as_role: AsRole, forum: Forum, role: Role | None, status: int, path: str
) -> None:
    browser, _user = as_role(role)
    response = browser.get(path, follow_redirects=False)
    assert response.status_code == status
    if status == 303:
        assert response.headers["location"].startswith("/login?next=")


def test_a_brand_admin_runs_their_brand_and_nothing_else(
    db: Session, make_user: UserFactory, make_client: Callable[[], TestClient], globex: Brand
) -> None:
    acme = _brand(db, "acme")
    browser = _brand_admin(db, make_user, make_client, acme)
    listing = browser.get("/admin/brands")
    assert listing.status_code == 200
    assert "/admin/brands/acme" in listing.text and "/admin/brands/globex" not in listing.text
    assert "/admin/brands/new" not in listing.text  # creating brands is the site admins'
    assert browser.get("/admin/brands/acme").status_code == 200
    assert browser.get("/admin/brands/globex").status_code == 403
    assert browser.get("/admin/brands/new").status_code == 403
    token = _token(browser)
    refused = [
        browser.post("/admin/brands/globex", data={"name": "Mine", "csrf_token": token}),
        browser.post(
            "/admin/brands/globex/forums",
            data={"slug": "mine", "name": "Mine", "csrf_token": token},
        ),
        browser.post("/admin/brands/globex/forums/nope/archive", data={"csrf_token": token}),
        browser.post("/admin/brands/acme/archive", data={"csrf_token": token}),
        browser.post(
            "/admin/brands/new", data={"slug": "mine", "name": "Mine", "csrf_token": token}
        ),
    ]
    assert [response.status_code for response in refused] == [403] * 5
    assert _brand(db, "globex").name == "Globex" and _brand(db, "acme").archived_at is None
    assert db.scalar(select(Brand).where(Brand.slug == "mine")) is None
    assert db.scalars(select(AuditLog)).all() == []


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(
    as_role: AsRole, db: Session, forum: Forum
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    attempts = [
        ("/admin/brands/new", {"slug": "globex", "name": "Globex"}),
        ("/admin/brands/acme", {"name": "Renamed"}),
        ("/admin/brands/acme/archive", {}),
        ("/admin/brands/acme/forums", {"slug": "tv", "name": "TV"}),
        ("/admin/brands/acme/forums/mobile/archive", {}),
        ("/admin/brands/acme/threads/move", {"thread_ids": "1", "forum": "mobile"}),
    ]
    for path, data in attempts:
        assert browser.post(path, data=data).status_code == 403, path
    acme = _brand(db, "acme")
    assert acme.name == "Acme" and acme.archived_at is None
    assert [f.slug for f in acme.forums] == ["mobile"] and acme.forums[0].archived_at is None
    assert db.scalar(select(Brand).where(Brand.slug == "globex")) is None


# --- the pages ---------------------------------------------------------------------------------


def test_a_site_admin_creates_a_brand_from_the_page(as_role: AsRole, db: Session) -> None:
    browser, _admin = as_role(Role.ADMIN)
    page = browser.get("/admin/brands/new")
    assert '<li><a href="/admin">Administration</a></li>' in page.text
    assert 'name="slug"' in page.text and 'name="default_locale"' in page.text
    created = browser.post(
        "/admin/brands/new",
        data={
            "slug": "globex", "name": "Globex", "default_locale": "es",
            "description": "Routers", "contact_email": "help@globex.example",
            "csrf_token": _token(browser),
        },
        follow_redirects=False,
    )  # fmt: skip
    assert created.status_code == 303 and created.headers["location"] == "/admin/brands/globex"
    brand = _brand(db, "globex")
    assert (brand.name, brand.default_locale, brand.contact_email) == (
        "Globex",
        "es",
        "help@globex.example",
    )
    listing = browser.get("/admin/brands").text
    assert 'href="/admin/brands/globex">Globex</a>' in listing


@pytest.mark.parametrize(
    ("data", "field", "status"),
    [
        ({"slug": "Bad Slug", "name": "Globex"}, "slug", 422),
        ({"slug": "acme", "name": "Globex"}, "slug", 409),
        ({"slug": "globex", "name": ""}, "name", 422),
        ({"slug": "globex", "name": "Globex", "contact_email": "nope"}, "contact_email", 422),
        ({"slug": "globex", "name": "Globex", "default_locale": "xx"}, "default_locale", 422),
    ],
)
def test_a_new_brand_form_with_a_mistake_is_shown_again(
    as_role: AsRole, db: Session, forum: Forum, data: dict[str, str], field: str, status: int
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    response = browser.post("/admin/brands/new", data=data | {"csrf_token": _token(browser)})
    assert response.status_code == status
    assert f'id="error-{field}"' in response.text
    assert f'value="{data["name"]}"' in response.text  # what was typed stays
    fresh(db)
    assert [b.slug for b in db.scalars(select(Brand))] == ["acme"]


def test_the_brand_page_saves_settings_and_refuses_bad_ones(
    as_role: AsRole, db: Session, forum: Forum
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    page = browser.get("/admin/brands/acme")
    assert page.status_code == 200 and "HX-Request" in page.headers["vary"]
    for link in (
        "/admin/brands/acme/service",
        "/admin/brands/acme/look",
        "/admin/brands/acme/staff",
    ):
        assert f'href="{link}"' in page.text
    fields = {
        "name": "Acme Mobile", "default_locale": "es", "description": "Phones and plans",
        "code_of_conduct": "Be **kind**.", "contact_email": "care@acme.example",
        "solution_threshold": "30", "article_threshold": "65.5", "review_period_days": "120",
    }  # fmt: skip
    saved = browser.post(
        "/admin/brands/acme", data=fields | {"csrf_token": _token(browser)}, follow_redirects=False
    )
    assert saved.status_code == 303
    brand = _brand(db, "acme")
    assert (brand.name, brand.default_locale, brand.code_of_conduct) == (
        "Acme Mobile",
        "es",
        "Be **kind**.",
    )
    assert (brand.article_threshold, brand.review_period_days) == (65.5, 120)
    bad = browser.post(
        "/admin/brands/acme",
        data=fields | {"name": "Other", "review_period_days": "5", "csrf_token": _token(browser)},
    )
    assert bad.status_code == 422
    assert 'id="error-review_period_days"' in bad.text and 'value="Other"' in bad.text
    assert _brand(db, "acme").name == "Acme Mobile"


def test_forums_are_created_edited_reordered_and_archived_with_and_without_htmx(
    as_role: AsRole, db: Session, forum: Forum
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    token = _token(browser)
    made = browser.post(
        "/admin/brands/acme/forums",
        data={"slug": "billing", "name": "Billing", "access": "verified", "csrf_token": token},
        follow_redirects=False,
    )
    assert made.status_code == 303
    taken = browser.post(
        "/admin/brands/acme/forums",
        data={"slug": "billing", "name": "Again", "csrf_token": token},
    )
    assert taken.status_code == 409 and 'id="error-forum_slug"' in taken.text
    reserved = browser.post(
        "/admin/brands/acme/forums", data={"slug": "kb", "name": "KB", "csrf_token": token}
    )
    assert reserved.status_code == 422
    # htmx: the forums section alone comes back, with the change.
    edited = browser.post(
        "/admin/brands/acme/forums/billing",
        data={"name": "Bills", "description": "Invoices", "access": "staff", "csrf_token": token},
        headers=HTMX,
    )
    assert edited.status_code == 200
    assert edited.text.lstrip().startswith('<section class="card" id="forums"')
    assert "<html" not in edited.text and "Bills" in edited.text
    moved = browser.post(
        "/admin/brands/acme/forums/billing/move",
        data={"direction": "up", "csrf_token": token},
        headers=HTMX,
    )
    assert moved.status_code == 200 and "Bills moved up." in moved.text
    # Without htmx: a redirect back to the forums.
    archived = browser.post(
        "/admin/brands/acme/forums/mobile/archive",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert archived.status_code == 303 and archived.headers["location"].endswith("#forums")
    fresh(db)
    forums = {f.slug: f for f in db.scalars(select(Forum))}
    assert forums["billing"].name == "Bills" and forums["billing"].access == ForumAccess.STAFF
    assert forums["billing"].position == 0 and forums["mobile"].archived_at is not None
    bad = browser.post(
        "/admin/brands/acme/forums/billing",
        data={"name": "Bills", "access": "everyone", "csrf_token": token},
        headers=HTMX,
    )
    assert bad.status_code == 422
    assert (
        browser.post(
            "/admin/brands/acme/forums/billing/move",
            data={"direction": "sideways", "csrf_token": token},
        ).status_code
        == 422
    )
    assert (
        browser.post(
            "/admin/brands/acme/forums/nope/archive", data={"csrf_token": token}
        ).status_code
        == 404
    )
    fresh(db)
    assert db.scalar(select(Forum).where(Forum.slug == "billing")).access == ForumAccess.STAFF  # type: ignore[union-attr]


def test_the_move_section_lists_a_forums_threads_alone_for_htmx(
    as_role: AsRole, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"), title="My phone will not charge at all")
    browser, _admin = as_role(Role.ADMIN)
    whole = browser.get("/admin/brands/acme?move_from=mobile")
    assert whole.status_code == 200 and "<html" in whole.text
    assert f'value="{thread.id}"' in whole.text
    part = browser.get("/admin/brands/acme?move_from=mobile", headers=HTMX)
    assert part.status_code == 200 and "<html" not in part.text
    assert part.text.lstrip().startswith('<section class="card" id="move-threads"')
    assert f'value="{thread.id}"' in part.text
    assert browser.get("/admin/brands/acme?move_from=nope", headers=HTMX).status_code == 200


def test_the_admin_home_links_the_brand_pages(as_role: AsRole, forum: Forum) -> None:
    browser, _admin = as_role(Role.ADMIN)
    home = browser.get("/admin").text
    for path in ("/admin/brands", "/admin/brands/new", "/admin/brands/acme"):
        assert re.search(rf'<a href="{re.escape(path)}">[^<]+</a><p class="meta">', home), path


# --- archiving a brand -------------------------------------------------------------------------


def test_an_archived_brand_is_404_for_members_and_there_for_site_admins(
    as_role: AsRole, db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"), title="My phone will not charge at all")
    admin_browser, _admin = as_role(Role.ADMIN)
    member_browser, _member = as_role(Role.MEMBER)
    anonymous, _nobody = as_role(None)
    archived = admin_browser.post(
        "/admin/brands/acme/archive",
        data={"csrf_token": _token(admin_browser)},
        follow_redirects=False,
    )
    assert archived.status_code == 303
    gone = [
        "/b/acme", "/b/acme/mobile", f"/t/{thread.id}", "/b/acme/kb",
        f"/api/v1/threads/{thread.id}", "/api/v1/brands/acme/forums",
        f"/api/v1/forums/{qa.forum.id}/threads",
    ]  # fmt: skip
    for path in gone:
        assert member_browser.get(path).status_code == 404, path
        assert anonymous.get(path).status_code == 404, path
    assert "acme" not in [b["slug"] for b in member_browser.get("/api/v1/brands").json()]
    # The site admin still reads the brand, its forum and its thread.
    for path in ("/b/acme", "/b/acme/mobile", f"/t/{thread.id}", f"/api/v1/threads/{thread.id}"):
        assert admin_browser.get(path).status_code == 200, path
    listing = admin_browser.get("/admin/brands").text
    assert "Archived" in listing and 'href="/admin/brands/acme"' in listing
    # Brought back: public again, as it was.
    back = admin_browser.post(
        "/admin/brands/acme/unarchive",
        data={"csrf_token": _token(admin_browser)},
        follow_redirects=False,
    )
    assert back.status_code == 303
    assert member_browser.get(f"/t/{thread.id}").status_code == 200
    assert anonymous.get("/b/acme/mobile").status_code == 200


def test_an_archived_forum_keeps_its_threads_but_takes_no_new_ones(
    as_role: AsRole, db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"), title="My phone will not charge at all")
    admin_browser, _admin = as_role(Role.ADMIN)
    admin_browser.post(
        "/admin/brands/acme/forums/mobile/archive", data={"csrf_token": _token(admin_browser)}
    )
    member_browser, _member = as_role(Role.MEMBER)
    assert member_browser.get(f"/t/{thread.id}").status_code == 200
    assert 'href="/b/acme/mobile"' not in member_browser.get("/b/acme").text
    assert member_browser.get("/api/v1/brands/acme/forums").json() == []
    token = _token(member_browser)
    asked = member_browser.post(
        "/b/acme/ask/new",
        data={
            "forum": "mobile", "title": "Where did the mobile forum go?",
            "body": "I used to ask here about my phone.", "csrf_token": token,
        },
    )  # fmt: skip
    assert asked.status_code == 422
    by_api = member_browser.post(
        f"/api/v1/forums/{qa.forum.id}/threads",
        json={"title": "Where did the mobile forum go?", "body": "I used to ask here."},
        headers={"X-CSRF-Token": token},
    )
    assert by_api.status_code == 422 and "forum" in by_api.json()["error"]["details"]


def test_a_renamed_brand_shows_its_new_name_and_address_at_once(
    as_role: AsRole, db: Session, forum: Forum
) -> None:
    """The header and footer of pages without a brand of their own (/account) read the brands
    this process keeps: saving the settings drops them, as saving the look does."""
    browser, _admin = as_role(Role.ADMIN)
    assert "Acme" in browser.get("/account").text  # the brands are now kept
    for send in (
        lambda: browser.post(
            "/admin/brands/acme",
            data={
                "name": "Acme Mobile",
                "default_locale": "en",
                "contact_email": "care@acme.example",
                "solution_threshold": "30",
                "article_threshold": "60",
                "review_period_days": "90",
                "csrf_token": _token(browser),
            },
        ),
        lambda: browser.patch(
            "/api/v1/brands/acme",
            json={"name": "Acme Phones"},
            headers={"X-CSRF-Token": _token(browser)},
        ),
    ):
        assert send().status_code == 200
        page = browser.get("/account").text
        assert f"· {_brand(db, 'acme').name}</title>" in page
    assert "mailto:care@acme.example" in browser.get("/account").text
