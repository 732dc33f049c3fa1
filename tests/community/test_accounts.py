"""Registration, login, logout, sessions, password changes and throttling through the pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest
import time_machine
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community.core.clock import utcnow
from community.core.models import User, UserSession
from community.core.settings import Settings
from tests.conftest import PASSWORD, csrf_token, fresh, log_in

COOKIE = "community_session"


def _register(client: TestClient, **fields: str) -> object:
    data = {
        "username": "jordan_k",
        "email": "jordan@example.com",
        "password": PASSWORD,
        "display_name": "Jordan K",
    } | fields
    data["csrf_token"] = csrf_token(client, "/register")
    return client.post("/register", data=data, follow_redirects=False)


def _user_count(db: Session) -> int:
    fresh(db)
    return db.scalar(select(func.count()).select_from(User)) or 0


def test_register_creates_an_unconfirmed_account_hashed_with_argon2id(
    client: TestClient, db: Session
) -> None:
    """Confirm-first (tests/community/accounts/test_registration.py): nobody is signed in
    until the e-mailed link is opened."""
    response = _register(client)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "We sent a link to jordan@example.com" in response.text  # type: ignore[attr-defined]
    user = db.scalar(select(User).where(User.username_key == "jordan_k"))
    assert user is not None
    assert user.email_verified_at is None
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert client.get("/api/v1/me").status_code == 401


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"username": "ab"}, "username", "3 to 30"),
        ({"username": "аdmin"}, "username", "look-alike"),
        ({"username": "Admin"}, "username", "reserved"),
        ({"email": "nope"}, "email", "valid e-mail"),
        ({"password": "password123"}, "password", "most common"),
        ({"password": "jordan_k2024"}, "password", "too easy"),
        ({"password": "short"}, "password", "at least 8"),
        ({"username": ""}, "username", "required"),
        ({"username": "x" * 65}, "username", "too long"),
    ],
)
def test_register_rejects_bad_input_and_changes_nothing(
    client: TestClient, db: Session, fields: dict[str, str], field: str, message: str
) -> None:
    response = _register(client, **fields)
    assert response.status_code == 422  # type: ignore[attr-defined]
    assert message in response.text  # type: ignore[attr-defined]
    assert f'id="error-{field}"' in response.text  # type: ignore[attr-defined]
    assert _user_count(db) == 0
    assert client.get("/api/v1/me").status_code == 401


def test_register_rejects_duplicates_including_lookalikes(
    make_client: Callable[[], TestClient], db: Session
) -> None:
    assert _register(make_client()).status_code == 200  # type: ignore[attr-defined]
    for fields, message in [
        ({"username": "JORDAN_K", "email": "other@example.com"}, "username is taken"),
        ({"username": "ＪＯＲＤＡＮ_Ｋ", "email": "other@example.com"}, "username is taken"),
    ]:
        response = _register(make_client(), **fields)
        assert response.status_code == 422, fields  # type: ignore[attr-defined]
        assert message in response.text  # type: ignore[attr-defined]
    # A taken address is not said to be taken (its owner gets an e-mail instead).
    response = _register(make_client(), username="someone", email="JORDAN@example.com")
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "already exists" not in response.text  # type: ignore[attr-defined]
    assert _user_count(db) == 1


def test_register_keeps_typed_values_but_never_echoes_the_password(client: TestClient) -> None:
    response = _register(client, email="bad", password="my-Secret-Phrase-99")
    assert 'value="jordan_k"' in response.text  # type: ignore[attr-defined]
    assert "my-Secret-Phrase-99" not in response.text  # type: ignore[attr-defined]


def test_login_with_username_or_email_and_logout(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("priya")
    log_in(client, "PRIYA@example.com")
    assert client.get("/api/v1/me").json()["username"] == "priya"
    token = csrf_token(client, "/")
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/api/v1/me").status_code == 401
    log_in(client, "Priya")
    assert client.get("/api/v1/me").status_code == 200


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("priya")
    answers = []
    for login in ("priya", "nobody_here"):
        response = client.post(
            "/login",
            data={"login": login, "password": "wrong-password-1", "csrf_token": csrf_token(client)},
        )
        answers.append((response.status_code, "not right" in response.text))
    assert answers == [(401, True), (401, True)]


def test_logout_revokes_the_session_server_side(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    make_user("priya")
    log_in(client, "priya")
    stolen = client.cookies.get(COOKIE)
    assert stolen
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    revoked = db.scalars(select(UserSession)).one()
    assert revoked.revoked_at is not None
    replay = TestClient(client.app, cookies={COOKIE: stolen})
    assert replay.get("/api/v1/me").status_code == 401
    assert replay.get("/account", follow_redirects=False).status_code == 303


def test_session_rotates_on_login(client: TestClient, make_user: Callable[..., User]) -> None:
    make_user("priya")
    client.get("/login")
    before = client.cookies.get(COOKIE)
    assert before
    log_in(client, "priya")
    after = client.cookies.get(COOKIE)
    assert after
    assert after != before
    # The pre-login cookie is anonymous: fixation gives an attacker nothing.
    fixed = TestClient(client.app, cookies={COOKIE: before})
    assert fixed.get("/api/v1/me").status_code == 401


def test_session_cookie_flags(client: TestClient, make_user: Callable[..., User]) -> None:
    make_user("priya")
    token = csrf_token(client)
    response = client.post(
        "/login",
        data={"login": "priya", "password": PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith(COOKIE)]
    assert len(cookies) == 1
    parsed = SimpleCookie()
    parsed.load(cookies[0])
    morsel = parsed[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert len(morsel.value) >= 43  # 256 random bits, url-safe base64


def test_cookie_is_secure_and_host_prefixed_behind_https(
    settings: Settings, engine: object
) -> None:
    from community.app import create_app

    secure_settings = settings.model_copy(update={"base_url": "https://support.example.com"})
    secure_app = create_app(secure_settings, engine=engine)  # type: ignore[arg-type]
    with TestClient(secure_app, base_url="https://testserver") as secure_client:
        response = secure_client.get("/login")
    header = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("__Host-community")
    )
    parsed = SimpleCookie()
    parsed.load(header)
    morsel = parsed["__Host-community_session"]
    assert morsel["secure"] is True
    assert "domain" not in header.lower()
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")


def test_wrong_password_throttling_per_account(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], settings: Settings
) -> None:
    make_user("priya")
    attacker = make_client()
    for _ in range(settings.login_failures_per_account):
        response = attacker.post(
            "/login",
            data={
                "login": "priya",
                "password": "guess-guess-1",
                "csrf_token": csrf_token(attacker),
            },
        )
        assert response.status_code == 401
    # Locked now, even with the right password and a spoofed forwarding header.
    response = attacker.post(
        "/login",
        data={"login": "priya", "password": PASSWORD, "csrf_token": csrf_token(attacker)},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert attacker.get("/api/v1/me").status_code == 401

    with time_machine.travel(utcnow() + timedelta(minutes=settings.login_throttle_minutes + 1)):
        log_in(make_client(), "priya")


def test_failures_from_elsewhere_never_lock_the_owner_out(
    app: FastAPI, make_user: Callable[..., User], settings: Settings
) -> None:
    """Anyone could lock an account for 15 minutes with 5 wrong passwords from anywhere."""
    make_user("priya")
    # Two clients at two addresses (what uvicorn reports after its trusted-proxies check).
    with (
        TestClient(app, client=("198.51.100.7", 40000)) as attacker,
        TestClient(app, client=("203.0.113.20", 40001)) as owner,
    ):
        for attempt in range(20):
            response = attacker.post(
                "/login",
                data={
                    "login": "priya",
                    "password": f"guess-guess-{attempt}",
                    "csrf_token": csrf_token(attacker),
                },
            )
            assert response.status_code in (401, 429)
        assert response.status_code == 429
        signed_in = owner.post(
            "/login",
            data={"login": "priya", "password": PASSWORD, "csrf_token": csrf_token(owner)},
            follow_redirects=False,
        )
        assert signed_in.status_code == 303
        assert owner.get("/api/v1/me").json()["username"] == "priya"
        # The attacker's address stays throttled, even with the right password.
        again = attacker.post(
            "/login",
            data={"login": "priya", "password": PASSWORD, "csrf_token": csrf_token(attacker)},
        )
        assert again.status_code == 429
        assert int(again.headers["retry-after"]) > 0
        assert attacker.get("/api/v1/me").status_code == 401


def test_wrong_password_throttling_per_ip(
    make_client: Callable[[], TestClient], make_user: Callable[..., User], settings: Settings
) -> None:
    make_user("victim")
    sprayer = make_client()
    for index in range(settings.login_failures_per_ip):
        sprayer.post(
            "/login",
            data={
                "login": f"guess{index}",
                "password": "guess-guess-1",
                "csrf_token": csrf_token(sprayer),
            },
        )
    response = sprayer.post(
        "/login",
        data={"login": "victim", "password": PASSWORD, "csrf_token": csrf_token(sprayer)},
    )
    assert response.status_code == 429


def test_login_rehashes_a_hash_with_old_parameters(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    user = make_user("priya")
    old = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=2).hash(PASSWORD)
    user.password_hash = old
    db.commit()
    log_in(client, "priya")
    fresh(db)
    refreshed = db.get(User, user.id)
    assert refreshed is not None
    assert refreshed.password_hash != old
    assert refreshed.password_hash is not None
    assert "t=1" in refreshed.password_hash


def test_login_next_only_allows_local_paths(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("priya")
    targets = {
        "/account": "/account",
        "//evil.example": "/",
        "/\\evil.example": "/",
        "https://evil.example/": "/",
        "javascript:alert(1)": "/",
        "/%09/evil.example": "/%09/evil.example",
    }
    for target, expected in targets.items():
        fresh = TestClient(client.app)
        response = fresh.post(
            "/login",
            data={
                "login": "priya",
                "password": PASSWORD,
                "next": target,
                "csrf_token": csrf_token(fresh),
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == expected, target


def test_change_password_requires_current_one_and_signs_out_other_devices(
    make_client: Callable[[], TestClient], make_user: Callable[..., User]
) -> None:
    make_user("priya")
    laptop, phone = make_client(), make_client()
    log_in(laptop, "priya")
    log_in(phone, "priya")
    laptop_cookie = laptop.cookies.get(COOKIE)

    wrong = laptop.post(
        "/account/password",
        data={
            "current_password": "not-my-password",
            "new_password": "brand-new-phrase-77",
            "csrf_token": csrf_token(laptop, "/account"),
        },
    )
    assert wrong.status_code == 422
    assert phone.get("/api/v1/me").status_code == 200

    ok = laptop.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": "brand-new-phrase-77",
            "csrf_token": csrf_token(laptop, "/account"),
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert laptop.cookies.get(COOKIE) != laptop_cookie  # rotated
    assert laptop.get("/api/v1/me").status_code == 200
    assert phone.get("/api/v1/me").status_code == 401
    fresh = make_client()
    log_in(fresh, "priya", "brand-new-phrase-77")


def test_deactivated_user_session_is_anonymous(
    client: TestClient, make_user: Callable[..., User], db: Session
) -> None:
    user = make_user("priya")
    log_in(client, "priya")
    user.deactivated_at = utcnow()
    db.commit()
    assert client.get("/api/v1/me").status_code == 401


def test_expired_session_is_anonymous(client: TestClient, make_user: Callable[..., User]) -> None:
    make_user("priya")
    log_in(client, "priya")
    with time_machine.travel(utcnow() + timedelta(days=31)):
        assert client.get("/api/v1/me").status_code == 401


def test_profile_and_account_pages(client: TestClient, make_user: Callable[..., User]) -> None:
    make_user("priya")
    profile = client.get("/u/Priya")
    assert profile.status_code == 200
    assert "@priya" in profile.text
    assert "priya@example.com" not in profile.text  # e-mail is private
    assert client.get("/u/nobody").status_code == 404
    assert client.get("/account", follow_redirects=False).headers["location"] == (
        "/login?next=%2Faccount"
    )
    log_in(client, "priya")
    account = client.get("/account")
    assert account.status_code == 200
    assert "priya@example.com" in account.text
    assert "this device" in account.text


def test_preferences_change_display_name_and_language(
    client: TestClient, make_user: Callable[..., User]
) -> None:
    make_user("priya")
    log_in(client, "priya")
    response = client.post(
        "/account/preferences",
        data={
            "display_name": "Priya S",
            "locale": "es",
            "csrf_token": csrf_token(client, "/account"),
        },
    )
    assert response.status_code == 200
    assert '<html lang="es">' in response.text
    assert client.get("/api/v1/me").json()["display_name"] == "Priya S"
    bad = client.post(
        "/account/preferences",
        data={"display_name": "x", "locale": "fr", "csrf_token": csrf_token(client, "/account")},
    )
    assert bad.status_code == 422
    assert client.get("/api/v1/me").json()["locale"] == "es"
