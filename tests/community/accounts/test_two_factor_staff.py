"""Staff pages of brands that require a second factor: refused (403 two_factor_required) to a
session that has not passed one, open once it has; other brands and members unaffected; API
tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pyotp
import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from community.accounts import two_factor
from community.core.clock import utcnow
from community.core.models import Brand, Forum, Role, Thread, User
from community.core.secretbox import unseal
from community.core.settings import Settings
from community.core.workspace_models import BrandRole, StaffGrant
from tests.conftest import PASSWORD, QA, csrf_token, fresh

UserFactory = Callable[..., User]
START = datetime(2031, 3, 4, 10, 0, 5).astimezone()


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def brands(db: Session, forum: Forum) -> tuple[Brand, Brand]:
    """Acme requires a second factor of its staff; Globex does not."""
    acme = db.get(Brand, forum.brand_id)
    assert acme is not None
    acme.require_staff_two_factor = True
    globex = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
    db.add(globex)
    db.commit()
    return acme, globex


def grant(db: Session, user: User, brand: Brand, role: BrandRole) -> User:
    db.add(StaffGrant(user_id=user.id, brand_id=brand.id, role=role))
    db.commit()
    return user


def enrol(db: Session, user: User, settings: Settings) -> str:
    key = settings.effective_secret_key
    with time_machine.travel(START - timedelta(minutes=5), tick=False):
        factor = two_factor.begin_setup(db, user, key)
        secret = unseal(key, factor.secret)
        two_factor.confirm_setup(
            db, user, key, pyotp.TOTP(secret).at(utcnow()), session_id=None, ip=None
        )
    db.commit()
    return secret


def sign_in(browser: TestClient, user: User, secret: str | None = None) -> None:
    response = browser.post(
        "/login",
        data={"login": user.username, "password": PASSWORD, "csrf_token": csrf_token(browser)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    if secret is not None:
        assert response.headers["location"] == "/login/two-factor"
        response = browser.post(
            "/login/two-factor",
            data={"code": pyotp.TOTP(secret).at(utcnow()), "csrf_token": csrf_token(browser)},
            follow_redirects=False,
        )
        assert response.status_code == 303


def test_a_moderator_of_a_brand_that_requires_it_needs_a_passed_second_factor(
    make_client: Callable[[], TestClient],
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    brands: tuple[Brand, Brand],
    frozen: time_machine.Traveller,
) -> None:
    acme, globex = brands
    moderator = grant(db, make_user("mona"), acme, BrandRole.MODERATOR)
    grant(db, moderator, globex, BrandRole.MODERATOR)
    browser = make_client()
    sign_in(browser, moderator)
    page = browser.get("/b/acme/mod/pending")
    assert page.status_code == 403
    assert "Set up two-factor sign-in" in page.text and 'href="/account/two-factor"' in page.text
    api = browser.get("/api/v1/brands/acme/moderation/counts")
    assert api.status_code == 403
    assert api.json()["error"]["code"] == "two_factor_required"
    assert api.json()["error"]["details"] == {"enrolled": False}
    # The same moderator in a brand that does not require it works as before.
    assert browser.get("/b/globex/mod/pending").status_code == 200
    assert browser.get("/api/v1/brands/globex/moderation/counts").status_code == 200
    # Without a brand in the path, the session works in the brands it keeps: /mod opens on
    # Globex (Acme's grant is held back until the second factor).
    landing = browser.get("/mod", follow_redirects=False)
    assert (landing.status_code, landing.headers["location"]) == (303, "/b/globex/mod")

    secret = enrol(db, moderator, settings)
    # Enrolled, but this session predates it: asked to confirm it with a code.
    page = browser.get("/b/acme/mod/pending")
    assert page.status_code == 403 and "Confirm this session with your code" in page.text
    other = make_client()
    sign_in(other, moderator, secret)
    assert other.get("/b/acme/mod/pending").status_code == 200
    assert other.get("/api/v1/brands/acme/moderation/counts").status_code == 200


def test_members_and_staff_of_other_brands_are_not_asked(
    make_client: Callable[[], TestClient],
    db: Session,
    make_user: UserFactory,
    brands: tuple[Brand, Brand],
) -> None:
    _acme, globex = brands
    globex_moderator = grant(db, make_user("gus"), globex, BrandRole.MODERATOR)
    browser = make_client()
    sign_in(browser, globex_moderator)
    assert browser.get("/b/globex/mod/pending").status_code == 200
    assert browser.get("/mod", follow_redirects=False).status_code == 303
    # Acme's queue is not theirs: a plain 403, not an invitation to set up a second factor.
    refused = browser.get("/api/v1/brands/acme/moderation/counts")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    member = make_user("mel")
    member_browser = make_client()
    sign_in(member_browser, member)
    assert member_browser.get("/account").status_code == 200


def test_a_site_admin_is_asked_when_any_brand_requires_it(
    make_client: Callable[[], TestClient],
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    brands: tuple[Brand, Brand],
    frozen: time_machine.Traveller,
) -> None:
    acme, _globex = brands
    admin = make_user("ada", role=Role.ADMIN)
    browser = make_client()
    sign_in(browser, admin)
    assert browser.get("/admin").status_code == 403
    # A site-wide role is staff of every brand, Acme's too: held back everywhere, Globex
    # (which does not require it) included, until the session passes a second factor.
    globex = browser.get("/b/globex/mod/pending")
    assert globex.status_code == 403 and "Set up two-factor sign-in" in globex.text
    acme.require_staff_two_factor = False
    db.commit()
    assert browser.get("/admin").status_code == 200
    acme.require_staff_two_factor = True
    db.commit()
    secret = enrol(db, admin, settings)
    passed = make_client()
    sign_in(passed, admin, secret)
    assert passed.get("/admin").status_code == 200


def test_brand_admin_pages_and_thread_moderation_are_covered(
    make_client: Callable[[], TestClient],
    db: Session,
    make_user: UserFactory,
    brands: tuple[Brand, Brand],
) -> None:
    """Staff work checked by services rather than by a role dependency."""
    acme, _globex = brands
    brand_admin = grant(db, make_user("bea"), acme, BrandRole.BRAND_ADMIN)
    browser = make_client()
    sign_in(browser, brand_admin)
    page = browser.get("/admin/brands/acme/look")
    assert page.status_code == 403 and "two-factor" in page.text
    api = browser.get("/api/v1/brands/acme/look")
    assert api.json()["error"]["code"] == "two_factor_required"


def test_api_tokens_pass_when_their_owner_has_a_second_factor(
    make_client: Callable[[], TestClient],
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    brands: tuple[Brand, Brand],
    frozen: time_machine.Traveller,
) -> None:
    acme, _globex = brands
    moderator = grant(db, make_user("tom"), acme, BrandRole.MODERATOR)
    browser = make_client()
    sign_in(browser, moderator)
    # A session that has not passed a second factor makes no token for such staff.
    refused = browser.post(
        "/account/tokens", data={"name": "sync", "csrf_token": csrf_token(browser, "/account")}
    )
    assert refused.status_code == 422 and "cmt_" not in refused.text
    secret = enrol(db, moderator, settings)
    passed = make_client()
    sign_in(passed, moderator, secret)
    made = passed.post(
        "/account/tokens", data={"name": "sync", "csrf_token": csrf_token(passed, "/account")}
    )
    assert made.status_code == 200
    token = made.text.split('id="new-token">', 1)[1].split("<", 1)[0]
    anonymous = make_client()
    headers = {"authorization": f"Bearer {token}"}
    counts = "/api/v1/brands/acme/moderation/counts"
    assert anonymous.get(counts, headers=headers).status_code == 200
    # The owner turns their authenticator off: the token no longer counts as passed.
    frozen.shift(timedelta(seconds=30))
    off = passed.post(
        "/account/two-factor/disable",
        data={
            "password": PASSWORD,
            "code": pyotp.TOTP(secret).at(utcnow()),
            "csrf_token": csrf_token(passed, "/account"),
        },
        follow_redirects=False,
    )
    assert off.status_code == 303
    answer = anonymous.get(counts, headers=headers)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "two_factor_required"
    # And the session itself no longer counts as passed either.
    assert passed.get("/b/acme/mod/pending").status_code == 403


def test_moderating_a_thread_of_such_a_brand_needs_it_too(
    make_client: Callable[[], TestClient],
    db: Session,
    make_user: UserFactory,
    brands: tuple[Brand, Brand],
    qa: QA,
) -> None:
    acme, _globex = brands
    thread = qa.ask(make_user("asker"))
    moderator = grant(db, make_user("milo"), acme, BrandRole.MODERATOR)
    browser = make_client()
    sign_in(browser, moderator)
    token = csrf_token(browser, f"/t/{thread.id}")
    response = browser.post(
        f"/mod/threads/{thread.id}/lock", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 403 and "two-factor" in response.text
    fresh(db)
    locked = db.get(Thread, thread.id)
    assert locked is not None and locked.locked_at is None
