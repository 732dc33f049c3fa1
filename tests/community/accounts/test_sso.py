"""Single sign-on with a brand's OpenID Connect provider: every flow, against a real provider
(tests/sso_provider.py, Authlib's server side) on both databases. The abuse cases are in
test_sso_abuse.py, the brand's settings in test_sso_settings.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.account_models import ExternalIdentity, SsoAttempt
from community.core.jobs import Worker
from community.core.models import Brand, Role, User
from community.core.settings import Settings
from community.core.workspace_models import BrandRole, StaffGrant
from tests.conftest import PASSWORD, Inbox, csrf_token, drain, fresh, make_settings
from tests.sso_provider import SsoSetup, sso_trip


@pytest.fixture
def settings(tmp_path: Path, database_url: str, meili_server: object) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        meili_server.url,
        sso_allow_private_issuers=True,  # type: ignore[attr-defined]
    )


def signed_in_as(client: TestClient) -> str | None:
    """The username the account page shows, or None when the client is not signed in."""
    page = client.get("/account", follow_redirects=False)
    if page.status_code != 200:
        return None
    return page.text


def create_account(client: TestClient, username: str) -> object:
    token = csrf_token(client, "/b/acme/sso/choose")
    return client.post(
        "/b/acme/sso/create",
        data={"username": username, "csrf_token": token},
        follow_redirects=False,
    )


def identity_of(db: Session, sub: str) -> ExternalIdentity | None:
    fresh(db)
    return db.scalar(select(ExternalIdentity).where(ExternalIdentity.subject == sub))


def test_a_first_sign_in_makes_an_account_with_the_vouched_address_and_the_next_signs_in(
    client: TestClient, db: Session, acme_sso: SsoSetup
) -> None:
    acme_sso.oidc.sign_in_as(
        sub="acme-1001", email="Rosa.Diaz@example.org", email_verified=True,
        name="Rosa Díaz", preferred_username="rosa",
    )  # fmt: skip
    back = sso_trip(client, next_path="/b/acme")
    assert back.status_code == 303 and back.headers["location"] == "/b/acme/sso/choose"

    choice = client.get("/b/acme/sso/choose")
    assert choice.status_code == 200
    assert 'value="rosa"' in choice.text  # the provider's preferred username, free
    assert "Rosa.Diaz@example.org" in choice.text
    assert "Rosa Díaz" in choice.text

    made = create_account(client, "rosa")
    assert made.status_code == 303 and made.headers["location"] == "/b/acme"  # type: ignore[attr-defined]
    fresh(db)
    user = db.scalar(select(User).where(User.username_key == "rosa"))
    assert user is not None
    assert user.display_name == "Rosa Díaz"
    assert user.email == "Rosa.Diaz@example.org" and user.email_verified_at is not None
    assert user.password_hash is None
    linked = identity_of(db, "acme-1001")
    assert linked is not None and linked.user_id == user.id
    assert "rosa" in (signed_in_as(client) or "")

    # The choice is used up: going back to it is refused.
    assert client.get("/b/acme/sso/choose").status_code == 400

    # Signed out, the next trip signs straight in to the same account.
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert signed_in_as(client) is None
    acme_sso.oidc.sign_in_as(sub="acme-1001", email="Rosa.Diaz@example.org", email_verified=True)
    again = sso_trip(client)
    assert again.status_code == 303 and again.headers["location"] == "/"
    assert "rosa" in (signed_in_as(client) or "")
    fresh(db)
    assert (
        db.scalar(select(User.id).where(User.username_key.like("rosa%")).order_by(User.id.desc()))
        == user.id
    )


def test_an_address_the_provider_does_not_vouch_for_is_not_kept(
    client: TestClient, db: Session, acme_sso: SsoSetup
) -> None:
    acme_sso.oidc.sign_in_as(
        sub="acme-2002", email="typed@example.org", email_verified=False, name="Typed"
    )
    assert sso_trip(client).status_code == 303
    choice = client.get("/b/acme/sso/choose")
    assert "no e-mail address" in choice.text
    assert create_account(client, "typed").status_code == 303  # type: ignore[attr-defined]
    fresh(db)
    user = db.scalar(select(User).where(User.username_key == "typed"))
    assert user is not None and user.email is None and user.email_verified_at is None


def test_the_suggested_username_is_made_free_and_a_taken_one_is_refused(
    client: TestClient, db: Session, acme_sso: SsoSetup, make_user: Callable[..., User]
) -> None:
    make_user("sam")
    acme_sso.oidc.sign_in_as(sub="acme-3003", email="sam@elsewhere.example", email_verified=True)
    sso_trip(client)
    choice = client.get("/b/acme/sso/choose")
    assert 'value="sam1"' in choice.text
    taken = create_account(client, "SAM")
    assert taken.status_code == 422  # type: ignore[attr-defined]
    assert "That username is taken." in taken.text  # type: ignore[attr-defined]
    assert create_account(client, "sam1").status_code == 303  # type: ignore[attr-defined]


def test_a_vouched_address_of_a_confirmed_account_links_it_and_tells_the_owner(
    client: TestClient,
    db: Session,
    acme_sso: SsoSetup,
    make_user: Callable[..., User],
    smtp: tuple[Inbox, int],
    mail_worker: Callable[[], Worker],
) -> None:
    owner = make_user("olga")  # olga@example.com, confirmed
    # Off (the default): the vouched address links nothing; the visitor chooses.
    acme_sso.oidc.sign_in_as(sub="acme-4004", email="OLGA@example.com", email_verified=True)
    choose = sso_trip(client)
    assert choose.status_code == 303 and choose.headers["location"] == "/b/acme/sso/choose"
    assert signed_in_as(client) is None and identity_of(db, "acme-4004") is None
    # A site admin trusts this provider's addresses with every brand's accounts.
    acme_sso.row.link_by_email = True
    db.commit()
    acme_sso.oidc.sign_in_as(sub="acme-4004", email="OLGA@example.com", email_verified=True)
    back = sso_trip(client)
    assert back.status_code == 303 and back.headers["location"] == "/"
    assert "olga" in (signed_in_as(client) or "")
    linked = identity_of(db, "acme-4004")
    assert linked is not None and linked.user_id == owner.id
    drain(mail_worker())
    inbox, _port = smtp
    [notice] = inbox.to("olga@example.com")
    assert "linked to Acme sign-in" in notice["Subject"]


def test_linking_an_existing_account_needs_its_password(
    client: TestClient, db: Session, acme_sso: SsoSetup, make_user: Callable[..., User]
) -> None:
    owner = make_user("pavel")
    acme_sso.oidc.sign_in_as(sub="acme-5005", email="p@corp.example", email_verified=False)
    sso_trip(client)
    token = csrf_token(client, "/b/acme/sso/choose")
    wrong = client.post(
        "/b/acme/sso/link",
        data={"login": "pavel", "password": "not his password", "csrf_token": token},
        follow_redirects=False,
    )
    assert wrong.status_code == 401
    assert identity_of(db, "acme-5005") is None
    right = client.post(
        "/b/acme/sso/link",
        data={"login": "pavel", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert right.status_code == 303, right.text[:500]
    linked = identity_of(db, "acme-5005")
    assert linked is not None and linked.user_id == owner.id
    assert "pavel" in (signed_in_as(client) or "")
    fresh(db)
    attempt = db.scalar(select(SsoAttempt).order_by(SsoAttempt.id.desc()))
    assert attempt is not None and attempt.finished_at is not None and attempt.claims is None


def test_the_verified_customer_claim_sets_and_clears_the_mark_at_every_sign_in(
    client: TestClient, db: Session, acme_sso: SsoSetup, make_user: Callable[..., User]
) -> None:
    acme_sso.row.verified_customer_claim = "plans"
    acme_sso.row.verified_customer_value = "premium"
    acme_sso.row.link_by_email = True  # vera@example.com links vera
    db.commit()
    member = make_user("vera")
    acme_sso.oidc.sign_in_as(
        sub="acme-6006", email="vera@example.com", email_verified=True, plans=["basic", "premium"]
    )
    assert sso_trip(client).status_code == 303
    fresh(db)
    assert db.get(User, member.id).verified_customer is True  # type: ignore[union-attr]

    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    acme_sso.oidc.sign_in_as(sub="acme-6006", plans=["basic"])
    assert sso_trip(client).status_code == 303
    fresh(db)
    assert db.get(User, member.id).verified_customer is False  # type: ignore[union-attr]


@pytest.mark.parametrize("role", ["site_admin", "other_brand_moderator"])
def test_a_vouched_address_never_links_a_staff_account(
    client: TestClient,
    db: Session,
    acme_sso: SsoSetup,
    make_user: Callable[..., User],
    role: str,
) -> None:
    """The brand's admins run its provider: an ID token vouching for a site admin's (or
    another brand's moderator's) address signed their account in, a brand admin's way to the
    whole site. Staff accounts now link only with their password: the visitor is asked."""
    if role == "site_admin":
        staff = make_user("rootbeer", role=Role.ADMIN)
    else:
        staff = make_user("moira")
        other = Brand(slug="globex", name="Globex", description="", theme={}, default_locale="en")
        db.add(other)
        db.flush()
        db.add(StaffGrant(user_id=staff.id, brand_id=other.id, role=BrandRole.MODERATOR))
    acme_sso.row.link_by_email = True  # even a provider trusted with members' addresses
    db.commit()
    acme_sso.oidc.sign_in_as(sub="evil-1", email=staff.email, email_verified=True)
    back = sso_trip(client)
    assert back.status_code == 303 and back.headers["location"] == "/b/acme/sso/choose"
    assert signed_in_as(client) is None
    assert identity_of(db, "evil-1") is None
