"""Single sign-on's abuse cases against the real test provider, on both databases: the state
(missing, unknown, replayed, from another browser, expired), the nonce, a replayed code, ID
tokens for another client or issuer, account takeover by an unverified address, password
guessing on the link form, a switched-off provider, suspended accounts, and member passwords
on a brand that signs in with its provider only."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.account_models import ExternalIdentity, UserSession
from community.core.clock import utcnow
from community.core.models import Role, User
from community.core.settings import Settings
from tests.conftest import PASSWORD, csrf_token, fresh, make_settings
from tests.sso_provider import SsoSetup, sso_trip, to_provider

INVALID = "This sign-in link is no longer valid; start again."


@pytest.fixture
def settings(tmp_path: Path, database_url: str, meili_server: object) -> Settings:
    url = meili_server.url  # type: ignore[attr-defined]
    return make_settings(tmp_path, database_url, url, sso_allow_private_issuers=True)


def signed_in(client: TestClient) -> bool:
    return client.get("/account", follow_redirects=False).status_code == 200


def sessions_of(db: Session, user_id: int) -> int:
    fresh(db)
    return db.scalar(select(func.count()).where(UserSession.user_id == user_id)) or 0


def identities(db: Session) -> int:
    fresh(db)
    return db.scalar(select(func.count()).select_from(ExternalIdentity)) or 0


def with_state(path: str, state: str | None) -> str:
    parts = urlsplit(path)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "state"]
    if state is not None:
        query.append(("state", state))
    return urlunsplit(("", "", parts.path, urlencode(query), ""))


def test_a_callback_without_a_live_state_of_this_browser_is_refused(
    client: TestClient, make_client: Callable[[], TestClient], db: Session, acme_sso: SsoSetup
) -> None:
    acme_sso.oidc.sign_in_as(sub="acme-1", email="a@example.org", email_verified=True)
    back = to_provider(client)
    for path in (with_state(back, None), with_state(back, "made-up-state")):
        refused = client.get(path, follow_redirects=False)
        assert refused.status_code == 400 and INVALID in refused.text
    # Another browser (another cookie) with the right state: refused, and it did not use the
    # attempt up, so the browser that started it still finishes.
    other = make_client()
    stolen = other.get(back, follow_redirects=False)
    assert stolen.status_code == 400 and INVALID in stolen.text
    assert not signed_in(other)
    assert client.get(back, follow_redirects=False).status_code == 303
    # Replayed: the same callback again is refused and signs nobody in.
    again = make_client().get(back, follow_redirects=False)
    assert again.status_code == 400
    assert client.get(back, follow_redirects=False).status_code == 400


def test_an_expired_attempt_is_refused(client: TestClient, acme_sso: SsoSetup) -> None:
    acme_sso.oidc.sign_in_as(sub="acme-2", email="b@example.org", email_verified=True)
    back = to_provider(client)
    with time_machine.travel(utcnow() + timedelta(minutes=11), tick=False):
        refused = client.get(back, follow_redirects=False)
    assert refused.status_code == 400 and INVALID in refused.text
    assert not signed_in(client)


def test_a_tampered_nonce_is_refused(client: TestClient, db: Session, acme_sso: SsoSetup) -> None:
    def other_nonce(url: str) -> str:
        return re.sub(r"nonce=[^&]+", "nonce=attacker-chosen-nonce", url)

    acme_sso.oidc.sign_in_as(sub="acme-3", email="c@example.org", email_verified=True)
    refused = sso_trip(client, tamper_url=other_nonce)
    assert refused.status_code == 502
    assert "ID token was refused" in refused.text
    assert not signed_in(client) and identities(db) == 0


def test_a_replayed_code_is_refused_by_the_provider_and_by_us(
    client: TestClient, db: Session, acme_sso: SsoSetup
) -> None:
    acme_sso.oidc.sign_in_as(sub="acme-4", email="d@example.org", email_verified=False)
    first = to_provider(client)
    assert client.get(first, follow_redirects=False).status_code == 303
    code = dict(parse_qsl(urlsplit(first).query))["code"]
    # A new attempt in the same browser, answered with the old code: the provider has used it
    # up (and its PKCE challenge was another attempt's).
    acme_sso.oidc.sign_in_as(sub="acme-4", email="d@example.org", email_verified=False)
    second = to_provider(client)
    replay = dict(parse_qsl(urlsplit(second).query)) | {"code": code}
    refused = client.get(f"/b/acme/sso/callback?{urlencode(replay)}", follow_redirects=False)
    assert refused.status_code == 502 and "refused the code" in refused.text


@pytest.mark.parametrize("claim", ["aud", "iss"])
def test_an_id_token_for_another_client_or_issuer_is_refused(
    claim: str, client: TestClient, db: Session, acme_sso: SsoSetup
) -> None:
    acme_sso.oidc.tamper = {claim: "https://someone-else.example" if claim == "iss" else "other"}
    acme_sso.oidc.sign_in_as(sub="acme-5", email="e@example.org", email_verified=True)
    refused = sso_trip(client)
    assert refused.status_code == 502 and "ID token was refused" in refused.text
    assert not signed_in(client) and identities(db) == 0


def test_an_unverified_address_claim_never_takes_over_an_account(
    client: TestClient, db: Session, acme_sso: SsoSetup, make_user: Callable[..., User]
) -> None:
    victim = make_user("victim")  # victim@example.com, confirmed
    before = (victim.email, victim.password_hash, victim.display_name)
    acme_sso.oidc.sign_in_as(
        sub="attacker-1", email="victim@example.com", email_verified=False, name="Victim"
    )
    back = sso_trip(client)
    assert back.status_code == 303 and back.headers["location"] == "/b/acme/sso/choose"
    choice = client.get("/b/acme/sso/choose")
    assert "victim@example.com" not in choice.text
    assert not signed_in(client) and identities(db) == 0 and sessions_of(db, victim.id) == 0
    # Creating an account gives the attacker a new one, without the victim's address.
    token = csrf_token(client, "/b/acme/sso/choose")
    made = client.post(
        "/b/acme/sso/create", data={"username": "notvictim", "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert made.status_code == 303
    fresh(db)
    attacker = db.scalar(select(User).where(User.username_key == "notvictim"))
    assert attacker is not None and attacker.email is None
    again = db.get(User, victim.id)
    assert again is not None and (again.email, again.password_hash, again.display_name) == before
    linked = db.scalar(select(ExternalIdentity).where(ExternalIdentity.subject == "attacker-1"))
    assert linked is not None and linked.user_id == attacker.id


def test_an_unconfirmed_local_address_is_not_linked_even_when_the_provider_vouches(
    client: TestClient, db: Session, acme_sso: SsoSetup, make_user: Callable[..., User]
) -> None:
    squatter = make_user("squatter")
    squatter.email_verified_at = None  # someone signed up with an address they do not own
    db.commit()
    acme_sso.oidc.sign_in_as(sub="owner-1", email="squatter@example.com", email_verified=True)
    back = sso_trip(client)
    assert back.headers["location"] == "/b/acme/sso/choose"
    assert identities(db) == 0 and sessions_of(db, squatter.id) == 0


def test_guessing_the_password_of_an_account_to_link_is_throttled(
    client: TestClient, db: Session, acme_sso: SsoSetup, make_user: Callable[..., User],
    settings: Settings,
) -> None:  # fmt: skip
    target = make_user("target")
    acme_sso.oidc.sign_in_as(sub="guesser-1", email="g@example.org", email_verified=False)
    sso_trip(client)
    token = csrf_token(client, "/b/acme/sso/choose")
    statuses = []
    for guess in range(settings.login_failures_per_account + 1):
        answer = client.post(
            "/b/acme/sso/link",
            data={"login": "target", "password": f"guess-{guess}", "csrf_token": token},
            follow_redirects=False,
        )
        statuses.append(answer.status_code)
    assert set(statuses[:-1]) == {401} and statuses[-1] == 429
    # Throttled, even the right password is refused now.
    right = client.post(
        "/b/acme/sso/link", data={"login": "target", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )  # fmt: skip
    assert right.status_code == 429
    assert identities(db) == 0 and sessions_of(db, target.id) == 0


def test_a_switched_off_provider_is_a_404(
    client: TestClient, db: Session, acme_sso: SsoSetup
) -> None:
    acme_sso.row.enabled = False
    db.commit()
    assert client.get("/b/acme/sso/start", follow_redirects=False).status_code == 404
    assert client.get("/b/acme/sso/callback?state=x&code=y").status_code == 404
    assert "Sign in with" not in client.get("/login").text


def test_a_suspended_account_is_refused(
    client: TestClient, db: Session, acme_sso: SsoSetup, make_user: Callable[..., User]
) -> None:
    member = make_user("suspended")
    member.suspended_until = utcnow() + timedelta(days=3)
    acme_sso.row.link_by_email = True  # the vouched address finds the suspended account
    db.commit()
    acme_sso.oidc.sign_in_as(sub="acme-9", email="suspended@example.com", email_verified=True)
    refused = sso_trip(client)
    assert refused.status_code == 403 and "suspended until" in refused.text
    assert not signed_in(client) and identities(db) == 0


def test_a_provider_that_says_no_or_is_down_is_a_clear_page(
    client: TestClient, db: Session, acme_sso: SsoSetup
) -> None:
    acme_sso.oidc.sign_in_as(sub="acme-10")
    back = to_provider(client)
    denied = dict(parse_qsl(urlsplit(back).query)) | {"error": "access_denied"}
    denied.pop("code")
    answer = client.get(f"/b/acme/sso/callback?{urlencode(denied)}", follow_redirects=False)
    assert answer.status_code == 403 and "access_denied" in answer.text
    acme_sso.row.issuer = "http://127.0.0.1:9"  # nothing listens there
    db.commit()
    down = client.get("/b/acme/sso/start", follow_redirects=False)
    assert down.status_code == 502 and "could not be reached" in down.text


def test_password_sign_in_off_refuses_members_and_keeps_staff(
    client: TestClient, make_client: Callable[[], TestClient], db: Session,
    acme_sso: SsoSetup, make_user: Callable[..., User],
) -> None:  # fmt: skip
    acme_sso.brand.password_sign_in = False
    db.commit()
    member = make_user("plainmember")
    moderator = make_user("sitemod", role=Role.MODERATOR)
    page = client.get("/login")
    assert 'id="sso-button"' in page.text and "Sign in with Acme ID" in page.text
    assert "<details>" in page.text and "Staff: sign in with a password" in page.text
    assert "New here?" not in page.text  # sign-ups go through the provider
    refused = client.post(
        "/login", data={"login": member.username, "password": PASSWORD,
                        "csrf_token": csrf_token(client)}, follow_redirects=False,
    )  # fmt: skip
    assert refused.status_code == 403 and "sign in with Acme ID" in refused.text
    assert not signed_in(client) and sessions_of(db, member.id) == 0
    staff = make_client()
    allowed = staff.post(
        "/login", data={"login": moderator.username, "password": PASSWORD,
                        "csrf_token": csrf_token(staff)}, follow_redirects=False,
    )  # fmt: skip
    assert allowed.status_code == 303 and signed_in(staff)


def test_start_never_sends_a_browser_to_an_unchecked_provider(
    client: TestClient, db: Session, acme_sso: SsoSetup
) -> None:
    """The discovery document's issuer must be the saved one exactly."""
    acme_sso.row.issuer = acme_sso.oidc.issuer + "/"
    db.commit()
    answer = client.get("/b/acme/sso/start", follow_redirects=False)
    assert answer.status_code == 502 and "names the issuer" in answer.text
    assert httpx.URL(acme_sso.oidc.issuer).host == "127.0.0.1"


def test_a_client_secret_sealed_under_another_secret_key_is_a_clear_page(
    client: TestClient, db: Session, acme_sso: SsoSetup
) -> None:
    """After SECRET_KEY changes the stored client secret cannot be read: sign-in says the
    brand's admins must enter it again (502), never a 500, and no attempt is left behind."""
    from community.core import secretbox
    from community.core.account_models import SsoAttempt

    acme_sso.row.client_secret = secretbox.seal("an earlier secret key", "the client secret")
    db.commit()
    answer = client.get("/b/acme/sso/start", follow_redirects=False)
    assert answer.status_code == 502
    assert "client secret again" in answer.text
    fresh(db)
    assert db.scalar(select(func.count()).select_from(SsoAttempt)) == 0
