"""The administration home: admins only, and a link with a description to every admin page of
the site and of each brand (a page added later fails this test until it is listed)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, Role, User
from community.core.web import walk_routes

RoleClient = Callable[[Role | None], tuple[TestClient, User | None]]

# Not pages of their own: the home itself, redirects, an export and an htmx fragment.
NOT_LISTED = {
    "admin_home",
    "admin_service_default",
    "admin_rules_export",
    "brand_look_contrast",
}


def admin_pages(app: FastAPI, brand_slugs: list[str]) -> list[str]:
    """Every GET page under /admin that takes no parameter but the brand, for each brand."""
    found: list[str] = []
    for route in walk_routes(app.router.routes):
        path, name = getattr(route, "path", ""), getattr(route, "name", "")
        methods = getattr(route, "methods", None) or set()
        if not path.startswith("/admin") or "GET" not in methods or name in NOT_LISTED:
            continue
        params = set(re.findall(r"{(\w+)}", path))
        if params == {"brand_slug"}:
            found += [path.format(brand_slug=slug) for slug in brand_slugs]
        elif not params:
            found.append(path)
    return found


@pytest.fixture
def second_brand(db: Session, forum: Forum) -> Brand:
    """A second brand: each has its own section."""
    brand = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(brand)
    db.commit()
    return brand


@pytest.mark.parametrize(
    ("role", "status"),
    [(None, 303), (Role.MEMBER, 403), (Role.MODERATOR, 403), (Role.AGENT, 403), (Role.ADMIN, 200)],
)
def test_only_admins_open_the_admin_home(
    as_role: RoleClient, role: Role | None, status: int
) -> None:
    browser, _user = as_role(role)
    assert browser.get("/admin", follow_redirects=False).status_code == status


def test_the_admin_home_links_every_admin_page(
    as_role: RoleClient, app: FastAPI, forum: Forum, second_brand: Brand
) -> None:
    browser, _admin = as_role(Role.ADMIN)
    page = browser.get("/admin")
    assert page.status_code == 200
    html = page.text
    pages = admin_pages(app, ["acme", second_brand.slug])
    assert "/admin/brands/acme/search" in pages  # the page that used to be linked from nowhere
    assert len(pages) >= 10
    for path in [*pages, "/mod/audit"]:
        link = re.search(
            rf'<a href="{re.escape(path)}">([^<]+)</a><p class="meta">([^<]+)</p>', html
        )
        assert link, path
        assert link.group(1).strip() and len(link.group(2).strip()) > 20, path
    # Reached from the main navigation and from every admin page's breadcrumb.
    assert 'href="/admin" aria-current="page"' in html
    for path in pages:
        assert '<li><a href="/admin">Administration</a></li>' in browser.get(path).text, path
