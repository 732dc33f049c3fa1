"""Single sign-on in Chromium against the real test provider (tests/sso_provider.py) with its
own login form: a visitor clicks "Sign in with Acme ID", signs in at the provider, comes back
and creates an account named from the provider's claims; signed out, a second trip signs in
to the same account. The choice page's screenshot goes to docs/sso-sign-in.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.models import Brand, Forum, User
from community.core.settings import Settings
from tests.browser.conftest import WatchedBrowser
from tests.conftest import LiveServer, fresh, make_settings
from tests.sso_provider import Person, TestProvider, add_provider
from tests.sso_provider import oidc as oidc
from tests.sso_provider import oidc_provider as oidc_provider

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, meili_server: object) -> Settings:
    url = meili_server.url  # type: ignore[attr-defined]
    return make_settings(tmp_path, database_url, url, sso_allow_private_issuers=True)


def sign_in_at_acme(page: Page, base: str) -> None:
    page.goto(f"{base}/login?next=/b/acme")
    page.get_by_role("link", name="Sign in with Acme ID").click()
    expect(page.get_by_role("heading", name="Acme ID")).to_be_visible()
    page.get_by_label("Acme user name").fill("rosa")
    page.get_by_label("Acme password").fill("whatever the provider checks")
    page.get_by_role("button", name="Continue to the community").click()


def test_a_visitor_signs_in_with_acme_and_returns_to_the_same_account(
    browser: WatchedBrowser,
    live_server: LiveServer,
    db: Session,
    forum: Forum,
    oidc: TestProvider,
    backend: str,
) -> None:
    # The provider sends browsers back to the live server: BASE_URL is its address.
    app = live_server.app
    app.state.settings = app.state.settings.model_copy(update={"base_url": live_server.url})
    brand = db.get(Brand, forum.brand_id)
    assert brand is not None
    add_provider(db, app.state.settings, brand, oidc)
    oidc.login_form = True
    oidc.people["rosa"] = Person(
        claims={
            "sub": "acme-7700", "email": "rosa.diaz@acme.example", "email_verified": True,
            "name": "Rosa Díaz", "preferred_username": "rosa.diaz",
        }
    )  # fmt: skip
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)

    sign_in_at_acme(page, live_server.url)
    expect(page.get_by_role("heading", name="Finish signing in with Acme ID")).to_be_visible()
    expect(page.get_by_label("Username", exact=True)).to_have_value("rosa.diaz")
    expect(page.get_by_text("Your display name will be Rosa Díaz.")).to_be_visible()
    if backend == "sqlite":  # once per run: the picture in docs/
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "sso-sign-in.png"), full_page=True)
    page.get_by_role("button", name="Create my account").click()
    expect(page.get_by_role("status")).to_contain_text("Welcome, Rosa Díaz!")
    assert page.url == f"{live_server.url}/b/acme"
    fresh(db)
    user = db.scalar(select(User).where(User.username_key == "rosa.diaz"))
    assert user is not None and user.email == "rosa.diaz@acme.example"

    page.locator(".account-menu summary").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You are signed out.")

    sign_in_at_acme(page, live_server.url)
    expect(page.get_by_role("status")).to_contain_text("Signed in as Rosa Díaz.")
    fresh(db)
    assert db.scalars(select(User.id).where(User.display_name == "Rosa Díaz")).all() == [user.id]
    context.close()
