"""Two-factor sign-in: setting up an authenticator, the code asked for after the password, its
abuse cases (replayed codes, concurrent answers, clock windows, guessing, another browser),
recovery codes, and turning it off."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pyotp
import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from community.accounts import two_factor
from community.core.account_models import RecoveryCode, SignInChallenge, TwoFactor, UserSession
from community.core.audit import AuditLog
from community.core.clock import utcnow
from community.core.errors import BadRequest
from community.core.models import User
from community.core.secretbox import unseal
from community.core.settings import Settings
from tests.conftest import PASSWORD, csrf_token, fresh, run_concurrently

UserFactory = Callable[..., User]
# A moment well inside a 30-second step, so that "now" and the step do not part mid-test.
START = datetime(2031, 3, 4, 10, 0, 5).astimezone()


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def enrol(db: Session, user: User, settings: Settings) -> tuple[str, list[str]]:
    """Turn two-factor sign-in on through the service, at START - 5 minutes (so that codes at
    START are new); the seed and the recovery codes."""
    key = settings.effective_secret_key
    with time_machine.travel(START - timedelta(minutes=5), tick=False):
        factor = two_factor.begin_setup(db, user, key)
        secret = unseal(key, factor.secret)
        codes = two_factor.confirm_setup(
            db, user, key, code_at(secret, utcnow()), session_id=None, ip=None
        )
    db.commit()
    return secret, codes


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def password_step(browser: TestClient, user: User, next_url: str = "/account") -> None:
    response = browser.post(
        "/login",
        data={
            "login": user.username,
            "password": PASSWORD,
            "next": next_url,
            "csrf_token": csrf_token(browser),
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login/two-factor"


def send_code(browser: TestClient, code: str) -> tuple[int, str]:
    """Post a code on the challenge page; (status, location or page text)."""
    token = csrf_token(browser, "/account")  # any page: the CSRF token is the browser's
    response = browser.post(
        "/login/two-factor", data={"code": code, "csrf_token": token}, follow_redirects=False
    )
    return response.status_code, response.headers.get("location", response.text)


def signed_in(browser: TestClient) -> bool:
    return browser.get("/account", follow_redirects=False).status_code == 200


def sessions_of(db: Session, user: User) -> list[UserSession]:
    fresh(db)
    return list(db.scalars(select(UserSession).where(UserSession.user_id == user.id)))


# --- setting it up --------------------------------------------------------------------------


def test_setting_up_shows_the_seed_once_stores_it_sealed_and_needs_a_right_code(
    client: TestClient, db: Session, make_user: UserFactory, settings: Settings
) -> None:
    member = make_user("mira")
    log_in_plain(client, member)
    assert "Set up two-factor sign-in" in client.get("/account/two-factor").text
    token = csrf_token(client, "/account/two-factor")
    response = client.post("/account/two-factor/setup", data={"csrf_token": token})
    assert response.status_code == 200  # followed to the page
    page = client.get("/account/two-factor")
    assert page.headers["cache-control"] == "no-store"
    assert "<svg" in page.text and 'role="img"' in page.text
    shown = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', page.text)
    assert shown is not None
    secret = shown.group(1).replace(" ", "")
    assert len(secret) == 32  # 160 bits
    fresh(db)
    factor = db.get(TwoFactor, member.id)
    assert factor is not None and factor.enabled_at is None
    assert secret not in factor.secret  # sealed, not plain
    assert unseal(settings.effective_secret_key, factor.secret) == secret

    wrong = client.post("/account/two-factor/confirm", data={"code": "000000", "csrf_token": token})
    assert wrong.status_code == 422 and "That code is not right" in wrong.text
    fresh(db)
    assert db.get(TwoFactor, member.id).enabled_at is None  # type: ignore[union-attr]

    code = pyotp.TOTP(secret).now()
    right = client.post(
        "/account/two-factor/confirm",
        data={"code": f" {code[:3]} {code[3:]} ", "csrf_token": token},
    )
    assert right.status_code == 200 and right.headers["cache-control"] == "no-store"
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", right.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    fresh(db)
    assert db.get(TwoFactor, member.id).enabled_at is not None  # type: ignore[union-attr]
    stored = list(
        db.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == member.id))
    )
    assert len(stored) == 10
    plain_hashes = {hashlib.sha256(c.encode()).hexdigest() for c in codes}
    plain_hashes |= {hashlib.sha256(c.replace("-", "").encode()).hexdigest() for c in codes}
    assert not plain_hashes & set(stored) and not set(codes) & set(stored)
    # The session that proved the code counts as having passed it.
    (session,) = [row for row in sessions_of(db, member) if row.revoked_at is None]
    assert session.two_factor_at is not None
    actions = db.scalars(select(AuditLog.action).where(AuditLog.target_id == str(member.id)))
    assert "two_factor.enabled" in list(actions)
    # Shown once: the settings page shows neither the codes nor the seed any more.
    later = client.get("/account/two-factor").text
    assert codes[0] not in later and secret not in later
    assert "10 recovery codes left" in later


def log_in_plain(browser: TestClient, user: User) -> None:
    response = browser.post(
        "/login",
        data={"login": user.username, "password": PASSWORD, "csrf_token": csrf_token(browser)},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/"


# --- the code after the password ------------------------------------------------------------


def test_password_alone_starts_no_session_and_the_code_does(
    client: TestClient,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("nadia")
    secret, _codes = enrol(db, member, settings)
    password_step(client, member, "/account")
    assert not signed_in(client)
    assert sessions_of(db, member) == []
    cookie = next(c for c in client.cookies.jar if c.name == "community_2fa")
    assert cookie.has_nonstandard_attr("HttpOnly")
    page = client.get("/login/two-factor")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert "5 attempts left" in page.text

    status, location = send_code(client, code_at(secret, utcnow()))
    assert (status, location) == (303, "/account")
    assert signed_in(client)
    (session,) = sessions_of(db, member)
    assert session.two_factor_at is not None
    # The challenge is spent and its cookie cleared.
    assert not any(c.name == "community_2fa" for c in client.cookies.jar)


def test_accounts_without_a_second_factor_sign_in_at_once(
    client: TestClient, db: Session, make_user: UserFactory
) -> None:
    member = make_user("olaf")
    log_in_plain(client, member)
    assert signed_in(client)
    (session,) = sessions_of(db, member)
    assert session.two_factor_at is None
    assert db.scalars(select(SignInChallenge)).all() == []


def test_a_used_code_is_refused_even_in_the_same_step(
    make_client: Callable[[], TestClient],
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("pia")
    secret, _codes = enrol(db, member, settings)
    first, second = make_client(), make_client()
    code = code_at(secret, utcnow())
    password_step(first, member)
    assert send_code(first, code)[0] == 303
    # Someone who saw the code (and knows the password) tries it at once: refused.
    password_step(second, member)
    status, text = send_code(second, code)
    assert status == 401 and "That code is not right" in text
    # So is the previous step's code, still inside the drift window but older than the last.
    status, _ = send_code(second, code_at(secret, utcnow() - timedelta(seconds=30)))
    assert status == 401
    assert not signed_in(second)
    # The next step's code works.
    frozen.shift(timedelta(seconds=30))
    assert send_code(second, code_at(secret, utcnow()))[0] == 303
    assert len(sessions_of(db, member)) == 2


def test_two_answers_with_one_code_at_once_start_at_most_one_sign_in(
    engine: Engine,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("quinn")
    secret, _codes = enrol(db, member, settings)
    key = settings.effective_secret_key
    browsers = ["browser-a", "browser-b", "browser-c"]
    tokens = [
        two_factor.start_challenge(db, member, "/", browser_token=browser) for browser in browsers
    ]
    db.commit()
    code = code_at(secret, utcnow())

    def answer(token: str, browser: str) -> Callable[[Session], object]:
        def action(session: Session) -> None:
            challenge = two_factor.open_challenge(session, token, browser_token=browser)
            assert challenge is not None
            if two_factor.answer_challenge(session, challenge, key, code) is None:
                raise BadRequest("wrong code")

        return action

    outcomes = run_concurrently(
        engine, [answer(t, b) for t, b in zip(tokens, browsers, strict=True)]
    )
    assert sorted(code for code, _ in outcomes) == ["bad_request", "bad_request", "ok"]
    fresh(db)
    used = db.scalars(select(SignInChallenge).where(SignInChallenge.used_at.is_not(None))).all()
    assert len(used) == 1


def test_two_answers_on_one_challenge_at_once_use_it_once(
    engine: Engine,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    """A right code and a right recovery code sent together on one challenge: one sign-in."""
    member = make_user("rhea")
    secret, codes = enrol(db, member, settings)
    key = settings.effective_secret_key
    token = two_factor.start_challenge(db, member, "/", browser_token="browser")
    db.commit()

    def answer(code: str) -> Callable[[Session], object]:
        def action(session: Session) -> None:
            challenge = two_factor.open_challenge(session, token, browser_token="browser")
            if challenge is None:
                raise BadRequest("over")
            if two_factor.answer_challenge(session, challenge, key, code) is None:
                raise BadRequest("wrong code")

        return action

    outcomes = run_concurrently(engine, [answer(code_at(secret, utcnow())), answer(codes[0])])
    assert sorted(code for code, _ in outcomes) in (
        ["bad_request", "ok"],
        ["challenge_over", "ok"],
    )


@pytest.mark.parametrize(
    ("offset_steps", "accepted"),
    [(-2, False), (-1, True), (0, True), (1, True), (2, False)],
)
def test_codes_are_accepted_one_step_either_side_only(
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
    offset_steps: int,
    accepted: bool,
) -> None:
    member = make_user("sol")
    secret, _codes = enrol(db, member, settings)
    code = code_at(secret, utcnow() + timedelta(seconds=30 * offset_steps))
    assert two_factor.verify(db, member.id, settings.effective_secret_key, code) is accepted


def test_a_recovery_code_signs_in_once(
    make_client: Callable[[], TestClient],
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("tara")
    _secret, codes = enrol(db, member, settings)
    first, second = make_client(), make_client()
    password_step(first, member)
    # Typed as people do: upper case, a space instead of the dash.
    status, location = send_code(first, codes[3].upper().replace("-", " "))
    assert (status, location) == (303, "/account")
    assert "9 left" in first.get("/account").text
    password_step(second, member)
    assert send_code(second, codes[3])[0] == 401
    fresh(db)
    used = db.scalars(select(RecoveryCode).where(RecoveryCode.used_at.is_not(None))).all()
    assert len(used) == 1


def test_a_challenge_expires_after_five_minutes(
    client: TestClient,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("uma")
    secret, _codes = enrol(db, member, settings)
    password_step(client, member)
    frozen.shift(timedelta(minutes=5, seconds=1))
    status, location = send_code(client, code_at(secret, utcnow()))
    assert (status, location) == (303, "/login")
    assert not signed_in(client)
    assert client.get("/login/two-factor", follow_redirects=False).headers["location"] == "/login"


def test_five_wrong_codes_use_up_the_challenge(
    client: TestClient,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("vera")
    secret, _codes = enrol(db, member, settings)
    password_step(client, member)
    right = code_at(secret, utcnow())
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        status, text = send_code(client, wrong)
        assert status == 401 and f"{left} attempt" in text
    assert send_code(client, wrong) == (303, "/login")
    # The right code no longer helps: the challenge is spent.
    assert send_code(client, right) == (303, "/login")
    assert not signed_in(client)
    fresh(db)
    (challenge,) = db.scalars(select(SignInChallenge)).all()
    assert challenge.attempts == 5 and challenge.used_at is None


def test_wrong_codes_across_challenges_are_throttled(
    client: TestClient,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    """Signing in again for a fresh challenge does not give endless guesses."""
    member = make_user("wim")
    secret, _codes = enrol(db, member, settings)
    right = code_at(secret, utcnow())
    wrong = f"{(int(right) + 7) % 1_000_000:06d}"
    for _round in range(settings.login_failures_per_account):
        password_step(client, member)
        send_code(client, wrong)
    password_step(client, member)
    status, text = send_code(client, right)
    assert status == 429 and "Too many wrong codes" in text
    assert not signed_in(client)


def test_the_challenge_cookie_works_only_in_its_own_browser(
    make_client: Callable[[], TestClient],
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("xena")
    secret, _codes = enrol(db, member, settings)
    victim, attacker = make_client(), make_client()
    password_step(victim, member)
    stolen = victim.cookies.get("community_2fa")
    assert stolen
    attacker.get("/login")  # a browser of its own (its own session cookie)
    attacker.cookies.set("community_2fa", stolen)
    assert send_code(attacker, code_at(secret, utcnow())) == (303, "/login")
    assert not signed_in(attacker)
    # Without any challenge cookie: the same.
    other = make_client()
    other.get("/login")
    assert send_code(other, code_at(secret, utcnow())) == (303, "/login")
    # The owner's browser still can.
    assert send_code(victim, code_at(secret, utcnow()))[0] == 303


def test_a_suspended_account_cannot_finish_with_its_code(
    client: TestClient,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("yara")
    secret, _codes = enrol(db, member, settings)
    password_step(client, member)
    member.suspended_until = utcnow() + timedelta(days=1)
    db.commit()
    assert send_code(client, code_at(secret, utcnow())) == (303, "/login")
    assert not signed_in(client)


# --- recovery codes and turning it off ------------------------------------------------------


def _signed_in_with_code(browser: TestClient, member: User, secret: str) -> None:
    password_step(browser, member, "/account")
    assert send_code(browser, code_at(secret, utcnow()))[0] == 303


def test_new_recovery_codes_need_a_code_and_replace_the_old(
    client: TestClient,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("zoe")
    secret, old_codes = enrol(db, member, settings)
    _signed_in_with_code(client, member, secret)
    token = csrf_token(client, "/account/two-factor")
    refused = client.post(
        "/account/two-factor/recovery-codes", data={"code": "123456", "csrf_token": token}
    )
    assert refused.status_code == 422
    frozen.shift(timedelta(seconds=30))
    made = client.post(
        "/account/two-factor/recovery-codes",
        data={"code": code_at(secret, utcnow()), "csrf_token": token},
    )
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store"
    new_codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", made.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    key = settings.effective_secret_key
    assert not two_factor.verify(db, member.id, key, old_codes[0])
    assert two_factor.verify(db, member.id, key, new_codes[0])
    actions = list(db.scalars(select(AuditLog.action).where(AuditLog.target_id == str(member.id))))
    assert "two_factor.recovery_codes_replaced" in actions


def test_turning_off_needs_the_password_and_a_code(
    client: TestClient,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("ada")
    secret, codes = enrol(db, member, settings)
    _signed_in_with_code(client, member, secret)
    token = csrf_token(client, "/account/two-factor")
    frozen.shift(timedelta(seconds=30))
    code = code_at(secret, utcnow())
    # A right code with a wrong password: refused, and the code is not spent.
    response = client.post(
        "/account/two-factor/disable",
        data={"password": "not-the-password", "code": code, "csrf_token": token},
    )
    assert response.status_code == 422 and "Your password is not right" in response.text
    # The password without a code: refused.
    response = client.post(
        "/account/two-factor/disable",
        data={"password": PASSWORD, "code": "", "csrf_token": token},
    )
    assert response.status_code == 422
    fresh(db)
    assert two_factor.is_enabled(db, member.id)
    response = client.post(
        "/account/two-factor/disable",
        data={"password": PASSWORD, "code": code, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    fresh(db)
    assert not two_factor.is_enabled(db, member.id)
    assert db.scalars(select(RecoveryCode).where(RecoveryCode.user_id == member.id)).all() == []
    assert all(row.two_factor_at is None for row in sessions_of(db, member))
    actions = list(db.scalars(select(AuditLog.action).where(AuditLog.target_id == str(member.id))))
    assert "two_factor.disabled" in actions
    # Signing in is one step again.
    other = TestClient(client.app, base_url="http://testserver")
    with other:
        log_in_plain(other, member)
    assert codes  # (kept for the reader: they died with the factor)


def test_a_session_from_before_can_be_confirmed_with_a_code(
    client: TestClient,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    frozen: time_machine.Traveller,
) -> None:
    member = make_user("bob")
    log_in_plain(client, member)  # before the authenticator was set up elsewhere
    secret, _codes = enrol(db, member, settings)
    token = csrf_token(client, "/account/two-factor")
    page = client.get("/account/two-factor").text
    assert "Confirm this session" in page
    response = client.post(
        "/account/two-factor/session",
        data={"code": code_at(secret, utcnow()), "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    (session,) = sessions_of(db, member)
    assert session.two_factor_at is not None


def test_setup_and_code_pages_refuse_bad_input_without_errors(
    client: TestClient, db: Session, make_user: UserFactory
) -> None:
    member = make_user("cyd")
    log_in_plain(client, member)
    token = csrf_token(client, "/account/two-factor")
    # Confirming with nothing being set up, odd codes, turning off what is not on: 4xx.
    for path, data in (
        ("/account/two-factor/confirm", {"code": "x" * 5000}),
        ("/account/two-factor/recovery-codes", {"code": "\u0663\u0664\u0665\u0666\u0667\u0668"}),
        ("/account/two-factor/disable", {"password": PASSWORD, "code": "1"}),
        ("/account/two-factor/session", {"code": ""}),
    ):
        response = client.post(path, data=data | {"csrf_token": token})
        assert 400 <= response.status_code < 500, (path, response.status_code)
    # Without a CSRF token nothing is set up.
    assert client.post("/account/two-factor/setup").status_code == 403
    fresh(db)
    assert db.get(TwoFactor, member.id) is None


def test_the_operator_turns_off_a_lost_second_factor_and_the_password_signs_in_again(
    client: TestClient,
    db: Session,
    make_user: UserFactory,
    settings: Settings,
    cli_env: None,
) -> None:
    """The way back in when the authenticator and the recovery codes are lost (or SECRET_KEY
    changed and the seed no longer opens): `community two-factor-reset <username>`."""
    from typer.testing import CliRunner

    from community.cli import app as cli

    member = make_user("lostphone")
    enrol(db, member, settings)
    password_step(client, member)  # the code would be asked for
    result = CliRunner().invoke(cli, ["two-factor-reset", "lostphone"])
    assert result.exit_code == 0, result.output
    assert "turned off for lostphone" in result.output
    fresh(db)
    assert two_factor.factor_of(db, member.id) is None
    assert db.scalars(select(RecoveryCode).where(RecoveryCode.user_id == member.id)).all() == []
    audit = db.scalars(select(AuditLog).where(AuditLog.action == "two_factor.reset")).one()
    assert audit.target_id == str(member.id) and audit.actor_id is None
    log_in_plain(client, member)
    assert signed_in(client)
    again = CliRunner().invoke(cli, ["two-factor-reset", "lostphone"])
    assert again.exit_code == 0 and "unchanged" in again.output
    unknown = CliRunner().invoke(cli, ["two-factor-reset", "nobody-here"])
    assert unknown.exit_code == 1 and "no active member" in unknown.output
