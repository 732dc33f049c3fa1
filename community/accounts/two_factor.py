"""Two-factor sign-in with an authenticator app (TOTP, RFC 6238) and single-use recovery codes,
and the sign-in challenge that asks for one after the first factor.

- The seed is 160 random bits (pyotp.random_base32), stored sealed (community.core.secretbox);
  it is shown only while the member sets the authenticator up.
- A code is accepted for its own 30-second step and one step either side (clock drift). The
  newest accepted step is kept (`TwoFactor.last_step`) and moved forward by a conditional
  UPDATE, so a code, or any older one, is refused once used: two requests carrying one code at
  the same moment cannot both pass (the second UPDATE finds the step already taken, on
  PostgreSQL after waiting for the first's row lock, on SQLite because writers take turns).
- Recovery codes are stored as an HMAC (keyed by SECRET_KEY) of the account and the code and
  used up by a conditional UPDATE on `used_at IS NULL`.
- A challenge (SignInChallenge) is the sign-in between the two factors: its token (hashed here,
  raw in a short-lived cookie) lives 5 minutes and takes 5 answers at most.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

import pyotp
import segno
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from community.core.account_models import RecoveryCode, SignInChallenge, TwoFactor, UserSession
from community.core.audit import record_audit
from community.core.auth import Passwords, hash_token, new_token
from community.core.clock import utcnow
from community.core.errors import Conflict, FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import User
from community.core.second_factor import has_second_factor
from community.core.secretbox import SecretUnreadable, seal, unseal

TOTP_DIGITS: Final = 6
TOTP_INTERVAL: Final = 30
# One step either side of the server's: phones' clocks drift by some seconds.
VALID_WINDOW: Final = 1
RECOVERY_CODE_COUNT: Final = 10
# Lower-case letters and digits without the ones read alike (0/o, 1/l/i): 31 symbols, so ten
# of them carry about 49 bits; shown as two groups of five.
RECOVERY_ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH: Final = 10
CHALLENGE_LIFETIME: Final = timedelta(minutes=5)
CHALLENGE_ATTEMPTS: Final = 5

CodeKind = Literal["authenticator", "recovery"]


class WrongCode(FormErrors):
    """The code (authenticator or recovery) is not right, already used, or from too long ago."""

    def __init__(self, field: str = "code") -> None:
        super().__init__({field: _("That code is not right. Enter the current code.")})


class ChallengeOver(NotFound):
    """The sign-in challenge is unknown, expired, used, or out of attempts."""

    code = "challenge_over"


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What the setup page shows: the seed for manual entry and the QR code of its URI."""

    secret: str
    uri: str
    qr_svg: str


# --- input --------------------------------------------------------------------------------------


def normalise_code(raw: str) -> str:
    """What the member typed without spaces and dashes (authenticators and our recovery codes
    show groups), in lower case."""
    return "".join(raw.split()).replace("-", "").lower()[:64]


def _is_totp_shape(code: str) -> bool:
    return len(code) == TOTP_DIGITS and code.isascii() and code.isdigit()


# --- authenticator codes --------------------------------------------------------------------


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_INTERVAL)


def _matching_step(secret: str, code: str) -> int | None:
    """The time step (within the window) whose code this is, or None."""
    totp = _totp(secret)
    current = totp.timecode(utcnow().timestamp())
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _claim_step(db: Session, factor: TwoFactor, step: int) -> bool:
    """Move the account's newest used step to `step` unless it is there or past it already:
    the single statement that makes a code usable once, whoever else submits it meanwhile."""
    result = db.execute(
        update(TwoFactor)
        .where(TwoFactor.user_id == factor.user_id, TwoFactor.last_step < step)
        .values(last_step=step)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        return False
    db.refresh(factor, ["last_step"])
    return True


def _check_totp(db: Session, factor: TwoFactor, secret_key: str, code: str) -> bool:
    if not _is_totp_shape(code):
        return False
    try:
        secret = unseal(secret_key, factor.secret)
    except SecretUnreadable:
        return False  # sealed under another SECRET_KEY: only a recovery code gets in now
    step = _matching_step(secret, code)
    return step is not None and _claim_step(db, factor, step)


# --- recovery codes -------------------------------------------------------------------------


def _recovery_hash(secret_key: str, user_id: int, code: str) -> str:
    # Keyed, and bound to the account: a copy of the database alone cannot test guesses, and
    # two accounts' codes never collide on the unique column.
    message = f"recovery:{user_id}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def _new_recovery_code() -> str:
    return "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))


def format_recovery_code(code: str) -> str:
    half = RECOVERY_CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def _replace_recovery_codes(db: Session, user: User, secret_key: str) -> list[str]:
    """Drop the account's recovery codes and make new ones: returned once, stored hashed."""
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        db.add(RecoveryCode(user_id=user.id, code_hash=_recovery_hash(secret_key, user.id, code)))
    db.flush()
    return [format_recovery_code(code) for code in codes]


def _use_recovery_code(db: Session, user_id: int, secret_key: str, code: str) -> bool:
    if len(code) != RECOVERY_CODE_LENGTH:
        return False
    result = db.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user_id,
            RecoveryCode.code_hash == _recovery_hash(secret_key, user_id, code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def recovery_codes_left(db: Session, user: User) -> int:
    return (
        db.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        )
        or 0
    )


# --- the member's authenticator -------------------------------------------------------------


def factor_of(db: Session, user_id: int) -> TwoFactor | None:
    return db.get(TwoFactor, user_id)


def enabled_factor(db: Session, user_id: int) -> TwoFactor | None:
    factor = factor_of(db, user_id)
    return factor if factor is not None and factor.enabled_at is not None else None


is_enabled = has_second_factor


def check_code(db: Session, user_id: int, secret_key: str, raw_code: str) -> CodeKind | None:
    """Which kind of code passed (an authenticator's or an unused recovery code of an enabled
    second factor), or None; either is used up by passing."""
    factor = enabled_factor(db, user_id)
    if factor is None:
        return None
    code = normalise_code(raw_code)
    if _check_totp(db, factor, secret_key, code):
        return "authenticator"
    if _use_recovery_code(db, user_id, secret_key, code):
        return "recovery"
    return None


def verify(db: Session, user_id: int, secret_key: str, raw_code: str) -> bool:
    return check_code(db, user_id, secret_key, raw_code) is not None


def begin_setup(db: Session, user: User, secret_key: str) -> TwoFactor:
    """A new seed waiting for its first code (replacing one never confirmed)."""
    factor = factor_of(db, user.id)
    if factor is not None and factor.enabled_at is not None:
        raise Conflict(_("Two-factor sign-in is already on."))
    sealed = seal(secret_key, pyotp.random_base32(length=32))  # 32 symbols: 160 bits
    if factor is None:
        factor = TwoFactor(user_id=user.id, secret=sealed, last_step=0, created_at=utcnow())
        db.add(factor)
    else:
        factor.secret, factor.last_step, factor.created_at = sealed, 0, utcnow()
    db.flush()
    return factor


def pending_enrolment(db: Session, user: User, secret_key: str, issuer: str) -> Enrolment | None:
    """The seed being set up, as the setup page shows it (None: nothing being set up)."""
    factor = factor_of(db, user.id)
    if factor is None or factor.enabled_at is not None:
        return None
    try:
        secret = unseal(secret_key, factor.secret)
    except SecretUnreadable:
        return None
    uri = _totp(secret).provisioning_uri(name=user.username, issuer_name=issuer)
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=4, svgclass="qr-code")
    return Enrolment(secret=secret, uri=uri, qr_svg=svg)


def confirm_setup(
    db: Session,
    user: User,
    secret_key: str,
    raw_code: str,
    *,
    session_id: int | None,
    ip: str | None,
) -> list[str]:
    """Turn the pending seed on with a current code; the recovery codes, shown once. The
    session that did it counts as having passed a second factor (it just proved one)."""
    factor = factor_of(db, user.id)
    if factor is None or factor.enabled_at is not None:
        raise Conflict(_("Start setting up two-factor sign-in again."))
    if not _check_totp(db, factor, secret_key, normalise_code(raw_code)):
        raise WrongCode()
    now = utcnow()
    factor.enabled_at = now
    codes = _replace_recovery_codes(db, user, secret_key)
    if session_id is not None:
        db.execute(
            update(UserSession)
            .where(UserSession.id == session_id, UserSession.user_id == user.id)
            .values(two_factor_at=now)
        )
    record_audit(
        db, actor=user, action="two_factor.enabled", target_type="user", target_id=user.id, ip=ip
    )
    return codes


def confirm_session(
    db: Session, user: User, secret_key: str, raw_code: str, *, session_id: int | None
) -> None:
    """Mark a session that predates the second factor (or passed without it) as having
    passed it, with a code now: staff need not sign out and in again."""
    if session_id is None or not verify(db, user.id, secret_key, raw_code):
        raise WrongCode()
    db.execute(
        update(UserSession)
        .where(UserSession.id == session_id, UserSession.user_id == user.id)
        .values(two_factor_at=utcnow())
    )


def regenerate_recovery_codes(
    db: Session, user: User, secret_key: str, raw_code: str, *, ip: str | None
) -> list[str]:
    if not verify(db, user.id, secret_key, raw_code):
        raise WrongCode()
    codes = _replace_recovery_codes(db, user, secret_key)
    record_audit(
        db,
        actor=user,
        action="two_factor.recovery_codes_replaced",
        target_type="user",
        target_id=user.id,
        ip=ip,
    )
    return codes


def disable(
    db: Session,
    passwords: Passwords,
    user: User,
    secret_key: str,
    *,
    password: str,
    raw_code: str,
    ip: str | None,
) -> None:
    """Turn two-factor sign-in off: the password and a code (or recovery code) both, so that
    neither a stolen session nor a stolen password alone can."""
    if enabled_factor(db, user.id) is None:
        raise Conflict(_("Two-factor sign-in is not on."))
    errors: dict[str, str] = {}
    if not passwords.verify(user.password_hash, password):
        errors["password"] = _("Your password is not right.")
    # Only checked (and so used up) when the password is right: a wrong password must not
    # burn the member's codes.
    elif not verify(db, user.id, secret_key, raw_code):
        errors["code"] = _("That code is not right. Enter the current code.")
    if errors:
        raise FormErrors(errors)
    _remove(db, user.id)
    record_audit(
        db, actor=user, action="two_factor.disabled", target_type="user", target_id=user.id, ip=ip
    )


def reset_by_operator(db: Session, user: User) -> bool:
    """The way back in for someone who lost both authenticator and recovery codes, or whose
    seed no longer opens after SECRET_KEY changed: the operator (`community two-factor-reset`,
    no account, audited without an actor) removes the factor; the member sets it up again.
    False when there was none."""
    if factor_of(db, user.id) is None:
        return False
    _remove(db, user.id)
    record_audit(
        db, actor=None, action="two_factor.reset", target_type="user", target_id=user.id, ip=None
    )
    return True


def _remove(db: Session, user_id: int) -> None:
    db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    db.execute(delete(TwoFactor).where(TwoFactor.user_id == user_id))
    # No session of theirs counts as having passed a factor the account no longer has.
    db.execute(update(UserSession).where(UserSession.user_id == user_id).values(two_factor_at=None))


# --- the sign-in challenge ------------------------------------------------------------------


def _challenge_hash(token: str, browser_token: str) -> str:
    # Bound to the browser that passed the first factor (its session cookie, anonymous until
    # the sign-in ends): the challenge cookie copied into another browser finds nothing.
    return hash_token(f"{token}:{hash_token(browser_token)}")


def start_challenge(db: Session, user: User, next_url: str, *, browser_token: str) -> str:
    """A challenge for a sign-in that passed its first factor; the raw token for the cookie.
    `browser_token`: the session cookie of the browser signing in."""
    token = new_token()
    now = utcnow()
    db.add(
        SignInChallenge(
            token_hash=_challenge_hash(token, browser_token),
            user_id=user.id,
            next_url=next_url[:500],
            attempts=0,
            created_at=now,
            expires_at=now + CHALLENGE_LIFETIME,
        )
    )
    db.flush()
    return token


def open_challenge(
    db: Session, token: str | None, *, browser_token: str | None
) -> SignInChallenge | None:
    """The challenge behind a cookie, in the browser it was made for, if it can still be
    answered."""
    if not token or len(token) > 128 or not browser_token:
        return None
    challenge = db.scalar(
        select(SignInChallenge).where(
            SignInChallenge.token_hash == _challenge_hash(token, browser_token)
        )
    )
    if (
        challenge is None
        or challenge.used_at is not None
        or challenge.expires_at <= utcnow()
        or challenge.attempts >= CHALLENGE_ATTEMPTS
    ):
        return None
    return challenge


def answer_challenge(
    db: Session, challenge: SignInChallenge, secret_key: str, raw_code: str
) -> CodeKind | None:
    """Count one attempt and check the code. A kind of code: the challenge is used up by this
    answer and the sign-in may go on; None: a wrong code. ChallengeOver when it could not be
    answered any more (expired, used by a concurrent answer, attempts spent)."""
    now = utcnow()
    counted = db.execute(
        update(SignInChallenge)
        .where(
            SignInChallenge.id == challenge.id,
            SignInChallenge.used_at.is_(None),
            SignInChallenge.expires_at > now,
            SignInChallenge.attempts < CHALLENGE_ATTEMPTS,
        )
        .values(attempts=SignInChallenge.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(counted, CursorResult)
    if counted.rowcount != 1:
        raise ChallengeOver()
    kind = check_code(db, challenge.user_id, secret_key, raw_code)
    if kind is None:
        db.refresh(challenge, ["attempts"])
        return None
    used = db.execute(
        update(SignInChallenge)
        .where(SignInChallenge.id == challenge.id, SignInChallenge.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(used, CursorResult)
    if used.rowcount != 1:
        raise ChallengeOver()
    return kind


def attempts_left(challenge: SignInChallenge) -> int:
    return max(0, CHALLENGE_ATTEMPTS - challenge.attempts)
