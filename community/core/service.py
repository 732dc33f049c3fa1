"""Business rules for accounts, brands and forums. No HTTP here: functions take a database
session, flush (never commit) and raise community.core.errors exceptions the web layer renders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from community.core.account_models import EmailLink, LinkPurpose
from community.core.api_tokens import revoke_all_tokens
from community.core.audit import record_audit
from community.core.auth import (
    Passwords,
    revoke_session_token,
    revoke_user_sessions,
    session_passed_two_factor,
    start_session,
)
from community.core.clock import utcnow
from community.core.errors import AppError, FormErrors, NotFound, PermissionDenied, TooManyRequests
from community.core.forum_access import readable_threads_anywhere
from community.core.i18n import SUPPORTED_LOCALES
from community.core.i18n import gettext as _
from community.core.identity import (
    IdentityError,
    check_password_policy,
    normalise_display_name,
    normalise_email,
    normalise_username,
)
from community.core.models import Brand, Forum, Post, Role, Thread, User, UserSession, Visibility
from community.core.policy import HasRole, Reader, can_read_forum, ensure_admin, ensure_brand_shown
from community.core.schemas import LoginIn, PasswordChangeIn, PreferencesIn, RegistrationIn
from community.core.throttle import LoginThrottle


class InvalidCredentials(AppError):
    status_code = 401
    code = "invalid_credentials"


class AddressNotConfirmed(InvalidCredentials):
    """The right password for an account whose address is not confirmed yet: answered like a
    wrong one (same status and message), so it tells nothing to someone guessing."""

    def __init__(self, message: str, user: User) -> None:
        super().__init__(message)
        self.user = user


class AddressTaken(FormErrors):
    """The address belongs to `owner`. Sign-up answers as if it had worked (and e-mails the
    owner); the operator's command says so."""

    def __init__(self, owner: User) -> None:
        super().__init__({"email": _("An account with that e-mail address already exists.")})
        self.owner = owner


class AccountSuspended(AppError):
    status_code = 403
    code = "account_suspended"


@dataclass(frozen=True, slots=True)
class SessionStart:
    user: User
    token: str


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a sign-in comes from: the cookie it replaces and what we record about the device."""

    previous_token: str | None
    max_age: timedelta
    ip: str | None
    user_agent: str | None


# --- accounts --------------------------------------------------------------------------------


def register(
    db: Session,
    passwords: Passwords,
    data: RegistrationIn,
    *,
    role: Role = Role.MEMBER,
    confirmed: bool = False,
) -> User:
    """A new account; its address is unconfirmed unless `confirmed` (an operator vouches).
    An address in use raises AddressTaken after the same work as a new account (the password
    is hashed either way), so the time taken does not tell."""
    errors: dict[str, str] = {}
    username = username_key = email = email_key = ""
    try:
        username, username_key = normalise_username(data.username)
    except IdentityError as exc:
        errors["username"] = str(exc)
    try:
        email, email_key = normalise_email(data.email)
    except IdentityError as exc:
        errors["email"] = str(exc)
    try:
        check_password_policy(data.password, user_inputs=[data.username, data.email])
    except IdentityError as exc:
        errors["password"] = str(exc)
    try:
        display_name = normalise_display_name(data.display_name, fallback=username)
    except IdentityError as exc:
        errors["display_name"] = str(exc)
    if "username" not in errors and _exists(db, User.username_key == username_key):
        errors["username"] = _("That username is taken.")
    if errors:
        raise FormErrors(errors)
    password_hash = passwords.hash(data.password)
    owner = db.scalar(select(User).where(User.email_key == email_key))
    if owner is not None:
        raise AddressTaken(owner)
    now = utcnow()
    user = User(
        username=username,
        username_key=username_key,
        email=email,
        email_key=email_key,
        display_name=display_name,
        password_hash=password_hash,
        password_changed_at=now,
        email_verified_at=now if confirmed else None,
        role=role,
    )
    try:
        with db.begin_nested():
            db.add(user)
            db.flush()
    except IntegrityError as exc:
        # Two sign-ups raced for the same name; the database's unique index decided.
        raise FormErrors({"username": _("That username is taken.")}) from exc
    return user


def _exists(db: Session, condition: object) -> bool:
    return db.scalar(select(func.count()).select_from(User).where(condition)) != 0  # type: ignore[arg-type]


def _login_key(login: str) -> str:
    """The throttling key for what was typed: the canonical username or e-mail if it parses."""
    text = login.strip()
    try:
        return normalise_email(text)[1] if "@" in text else normalise_username(text)[1]
    except IdentityError:
        return text.casefold()[:254]


def authenticate(
    db: Session, passwords: Passwords, throttle: LoginThrottle, data: LoginIn, *, ip: str
) -> User:
    """The user whose credentials these are. Same answer and same work for unknown accounts."""
    key = _login_key(data.login)
    throttled = throttle.check(key, ip)
    if throttled:
        raise TooManyRequests(
            throttled.retry_after_seconds,
            _("Too many failed attempts. Try again in %(minutes)d minutes.")
            % {"minutes": max(1, round(throttled.retry_after_seconds / 60))},
        )
    user = db.scalar(
        select(User).where(
            or_(User.username_key == key, User.email_key == key), User.deactivated_at.is_(None)
        )
    )
    if not passwords.verify(user.password_hash if user else None, data.password) or user is None:
        throttle.record_failure(key, ip)
        raise InvalidCredentials(wrong_credentials_message())
    if user.email_verified_at is None:
        # Counted as a failure, as a wrong password is: the two answers must stay alike to
        # the end. Someone who signed up with another person's address and then signs in
        # with the password they chose would otherwise learn, from the 429 that never came,
        # that the address was free (their account exists) rather than taken (a wrong one).
        throttle.record_failure(key, ip)
        raise AddressNotConfirmed(wrong_credentials_message(), user)
    throttle.record_success(key, ip)
    if user.suspended_until is not None and user.suspended_until > utcnow():
        raise AccountSuspended(
            _("This account is suspended until %(until)s.")
            % {"until": user.suspended_until.strftime("%Y-%m-%d %H:%M UTC")}
        )
    assert user.password_hash is not None  # verify() is False for accounts without one
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(data.password)
    return user


def wrong_credentials_message() -> str:
    # One message for a wrong password and for an account still waiting for its address to
    # be confirmed: the answer must not tell which.
    return _(
        "That username or password is not right. "
        "If you have just signed up, open the link we e-mailed you first."
    )


def log_in(
    db: Session, user: User, client: ClientInfo, *, two_factor: bool = False
) -> SessionStart:
    """Start a fresh session (a new token: the pre-login cookie is worthless afterwards).
    `two_factor`: the sign-in passed a second factor (community.accounts.two_factor)."""
    revoke_session_token(db, client.previous_token)
    now = utcnow()
    if user.last_seen_at is None or user.last_seen_at.date() != now.date():
        user.days_visited = User.days_visited + 1  # a visit on a new day: trust levels count it
    user.last_seen_at = now
    token = start_session(
        db,
        user,
        max_age=client.max_age,
        ip=client.ip,
        user_agent=client.user_agent,
        two_factor=two_factor,
    )
    return SessionStart(user=user, token=token)


def log_out(db: Session, token: str | None) -> None:
    revoke_session_token(db, token)


def change_password(
    db: Session,
    passwords: Passwords,
    user: User,
    data: PasswordChangeIn,
    client: ClientInfo,
) -> SessionStart:
    """Re-authenticate, set the new hash, end every other session (and, when asked, every API
    token) and rotate this one."""
    if not passwords.verify(user.password_hash, data.current_password):
        raise FormErrors({"current_password": _("Your current password is not right.")})
    try:
        check_password_policy(data.new_password, user_inputs=[user.username, user.email or ""])
    except IdentityError as exc:
        raise FormErrors({"new_password": str(exc)}) from exc
    user.password_hash = passwords.hash(data.new_password)
    user.password_changed_at = utcnow()
    # This device's new session keeps the second factor its old one passed.
    two_factor = session_passed_two_factor(db, client.previous_token)
    revoke_user_sessions(db, user.id)
    if data.revoke_api_tokens:
        revoke_all_tokens(db, user.id)
    # A pending change of address (or reset) may be an intruder's, asked with the old password:
    # taking the account back ends it, as the notice to the old address promises.
    db.execute(
        update(EmailLink)
        .where(
            EmailLink.user_id == user.id,
            EmailLink.purpose.in_([LinkPurpose.CHANGE_EMAIL, LinkPurpose.RESET_PASSWORD]),
            EmailLink.used_at.is_(None),
        )
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return log_in(db, user, client, two_factor=two_factor)


def update_preferences(user: User, data: PreferencesIn) -> User:
    try:
        user.display_name = normalise_display_name(data.display_name, fallback=user.username)
    except IdentityError as exc:
        raise FormErrors({"display_name": str(exc)}) from exc
    user.locale = data.locale if data.locale in SUPPORTED_LOCALES else None
    user.email_notifications = data.email_notifications
    if data.expert_invitations is not None:
        user.expert_opt_out = not data.expert_invitations
        # Away until the end of that day; a past day simply means "not away".
        user.vacation_until = (
            datetime.combine(data.away_until, time.max, tzinfo=UTC) if data.away_until else None
        )
    return user


def set_role(db: Session, actor: User, target: User, role: Role, *, ip: str | None) -> User:
    """Admins change other people's roles; nobody changes their own (no self-promotion and
    no admin accidentally locking the site out of its last admin account)."""
    ensure_admin(actor)
    if actor.id == target.id:
        raise PermissionDenied(_("You cannot change your own role."))
    if target.role == role:
        return target
    before = {"role": target.role.value}
    target.role = role
    record_audit(
        db,
        actor=actor,
        action="user.role_changed",
        target_type="user",
        target_id=target.id,
        before=before,
        after={"role": role.value},
        ip=ip,
    )
    return target


def get_user_by_username(db: Session, username: str) -> User:
    try:
        _display, key = normalise_username(username)
    except IdentityError as exc:
        raise NotFound() from exc
    user = db.scalar(select(User).where(User.username_key == key, User.deactivated_at.is_(None)))
    if user is None:
        raise NotFound()
    return user


def get_user(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound()
    return user


def search_users(db: Session, query: str = "", *, limit: int = 50, offset: int = 0) -> list[User]:
    statement = select(User).order_by(User.id)
    text = query.strip().casefold()
    if text:
        pattern = f"%{text.replace('%', '').replace('_', '')}%"
        statement = statement.where(
            or_(User.username_key.like(pattern), func.lower(User.display_name).like(pattern))
        )
    return list(db.scalars(statement.limit(limit).offset(offset)))


# --- brands and forums -----------------------------------------------------------------------


def list_brands(db: Session, *, include_archived: bool = False) -> list[Brand]:
    """The brands people browse; archived ones only when asked (the admins' brand list)."""
    statement = select(Brand).order_by(Brand.id)
    if not include_archived:
        statement = statement.where(Brand.archived_at.is_(None))
    return list(db.scalars(statement))


def default_brand(db: Session, preferred_slug: str | None = None) -> Brand | None:
    """The configured brand, else the oldest; never an archived one."""
    live = select(Brand).where(Brand.archived_at.is_(None))
    if preferred_slug:
        brand = db.scalar(live.where(Brand.slug == preferred_slug))
        if brand:
            return brand
    return db.scalar(live.order_by(Brand.id).limit(1))


def get_brand(db: Session, slug: str, *, viewer: HasRole | None = None) -> Brand:
    """The brand at /b/<slug>; an archived one only for a site admin `viewer`."""
    brand = db.scalar(select(Brand).where(Brand.slug == slug))
    if brand is None:
        raise NotFound()
    ensure_brand_shown(brand, viewer)
    return brand


def list_forums(db: Session, brand: Brand, *, include_archived: bool = False) -> list[Forum]:
    """The brand's forums in their order. An archived forum leaves the list (and so the ask
    form) unless asked for; its threads stay readable at their addresses."""
    statement = select(Forum).where(Forum.brand_id == brand.id)
    if not include_archived:
        statement = statement.where(Forum.archived_at.is_(None))
    return list(db.scalars(statement.order_by(Forum.position, Forum.id)))


def readable_forums(
    db: Session, brand: Brand, who: Reader | None, *, include_archived: bool = False
) -> list[Forum]:
    """The brand's forums `who` may read (policy.can_read_forum): the brand page, the ask form
    and the API's list. A restricted forum is missing for anyone else, as if it did not exist."""
    forums = list_forums(db, brand, include_archived=include_archived)
    return [forum for forum in forums if can_read_forum(who, forum)]


def get_brand_by_id(db: Session, brand_id: int, *, viewer: HasRole | None = None) -> Brand:
    brand = db.get(Brand, brand_id)
    if brand is None:
        raise NotFound()
    ensure_brand_shown(brand, viewer)
    return brand


def get_forum(db: Session, brand: Brand, slug: str) -> Forum:
    forum = db.scalar(select(Forum).where(Forum.brand_id == brand.id, Forum.slug == slug))
    if forum is None:
        raise NotFound()
    return forum


@dataclass
class ProfileActivity:
    threads: list[Thread]
    answers: list[Post]
    thread_count: int
    answer_count: int
    accepted_count: int


def visible_thread_ids(
    db: Session, thread_ids: set[int], *, viewer: Reader | None = None
) -> set[int]:
    """Those of the threads that are visible, in forums `viewer` may read."""
    if not thread_ids:
        return set()
    return set(
        db.scalars(
            select(Thread.id).where(
                Thread.id.in_(thread_ids),
                Thread.visibility == Visibility.VISIBLE,
                readable_threads_anywhere(viewer),
            )
        )
    )


def profile_activity(
    db: Session, user: User, *, limit: int = 10, viewer: Reader | None = None
) -> ProfileActivity:
    """What a profile shows `viewer`: only visible threads and answers in visible threads, in
    forums the viewer may read (counts included: they would tell restricted threads exist)."""
    readable = readable_threads_anywhere(viewer)
    visible_threads = select(Thread).where(
        Thread.author_id == user.id, Thread.visibility == Visibility.VISIBLE, readable
    )
    visible_answers = (
        select(Post)
        .join(Thread, Thread.id == Post.thread_id)
        .where(
            Post.author_id == user.id,
            Post.is_question.is_(False),
            Post.visibility == Visibility.VISIBLE,
            Thread.visibility == Visibility.VISIBLE,
            readable,
        )
    )
    accepted = visible_answers.where(Thread.accepted_post_id == Post.id)

    def count(statement: Select[Any]) -> int:
        return db.scalar(select(func.count()).select_from(statement.subquery())) or 0

    return ProfileActivity(
        threads=list(db.scalars(visible_threads.order_by(Thread.created_at.desc()).limit(limit))),
        answers=list(
            db.scalars(
                visible_answers.options(selectinload(Post.thread))
                .order_by(Post.created_at.desc())
                .limit(limit)
            )
        ),
        thread_count=count(visible_threads),
        answer_count=count(visible_answers),
        accepted_count=count(accepted),
    )


def active_sessions(db: Session, user: User, *, limit: int = 20) -> list[UserSession]:
    """The member's signed-in sessions, the most recently used first (the account page lists
    them, each with a sign-out button)."""
    return list(
        db.scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user.id,
                UserSession.revoked_at.is_(None),
                UserSession.expires_at > utcnow(),
            )
            .order_by(UserSession.last_seen_at.desc())
            .limit(limit)
        )
    )
