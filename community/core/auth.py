"""Authentication: password hashing, server-side sessions, role guards (counting failed logins is

The session cookie carries an opaque random token (256 bits). Only its SHA-256 is stored, so a
database leak does not hand out live sessions; revoking is deleting-by-marking the row.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from community.core import policy, policy_identity
from community.core.clock import utcnow
from community.core.db import SessionDep, begin_write
from community.core.errors import LoginRequired, PermissionDenied
from community.core.models import NO_GRANTS, Brand, Role, User, UserSession
from community.core.notifications import unread_count_of
from community.core.second_factor import (
    WithheldStaff,
    has_second_factor,
    withhold_staff_roles,
)
from community.core.settings import Settings
from community.core.staff import BrandRoles, brand_roles_of, has_grants, remember_brand_roles

logger = logging.getLogger(__name__)

SESSION_TOKEN_BYTES = 32
# Refreshing last_seen on every request would turn each page view into a write.
SESSION_TOUCH_INTERVAL = timedelta(minutes=5)
# Where a signed-in reader's request keeps the user row its viewer was loaded from.
VIEWER_ROW = "viewer_row"


# --- passwords -------------------------------------------------------------------------------


class Passwords:
    """Argon2id with the configured cost; upgrades old hashes when a user next logs in."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verifying against this when the account does not exist keeps the timing the same.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._dummy_hash, password) and bool(
                stored_hash
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


# --- sessions --------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(SESSION_TOKEN_BYTES)


# Visitors who are not signed in still get a cookie (their CSRF tokens derive from it); the
# prefix tells the server there is no session row to look up.
ANONYMOUS_PREFIX = "a."


def new_anonymous_token() -> str:
    return ANONYMOUS_PREFIX + new_token()


def is_anonymous_token(token: str) -> bool:
    return token.startswith(ANONYMOUS_PREFIX)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is making the request, loaded once per request by the context middleware."""

    user_id: int | None = None
    username: str | None = None
    display_name: str | None = None
    role: Role | None = None
    locale: str | None = None
    session_id: int | None = None
    unread_notifications: int = 0
    trust_level: int = 0
    verified_customer: bool = False
    # The account's e-mail address is confirmed (brands may require it to post), and this
    # session passed a second factor at sign-in (brands may require it on staff pages).
    email_verified: bool = False
    two_factor: bool = False
    # Staff roles this session holds back until it passes a second factor (brands require
    # one): `role` and `brand_roles` above are what it acts with meanwhile.
    withheld: WithheldStaff | None = None
    # Staff roles per brand (community.core.staff): the policy scopes every staff check by them.
    brand_roles: BrandRoles = field(default_factory=lambda: NO_GRANTS)

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    # What templates ask of the viewer (base.html's menu, moderator links): the policy's answers.
    @property
    def is_staff(self) -> bool:
        return policy.is_staff(self)

    @property
    def can_moderate(self) -> bool:
        return policy.can_moderate(self)

    @property
    def is_agent(self) -> bool:
        return policy.is_agent(self)

    @property
    def is_admin(self) -> bool:
        return policy.is_admin(self)

    @property
    def staffed_brand_ids(self) -> frozenset[int]:
        """The brands this viewer holds a grant in (site-wide roles not included)."""
        return frozenset(self.brand_roles)


ANONYMOUS = Viewer()


def viewer_of(
    user: User,
    *,
    session_id: int | None = None,
    brand_roles: BrandRoles = NO_GRANTS,
    two_factor: bool = False,
) -> Viewer:
    """The viewer a signed-in user is, by cookie session (`session_id`) or API token."""
    return Viewer(
        user_id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        locale=user.locale,
        session_id=session_id,
        trust_level=user.trust_level,
        verified_customer=user.verified_customer,
        email_verified=user.email_verified_at is not None,
        two_factor=two_factor,
        brand_roles=brand_roles,
    )


def may_sign_in(now: datetime | BindParameter[datetime]) -> ColumnElement[bool]:
    """Accounts a session or token still works for: not deactivated, not suspended at `now`."""
    return and_(
        User.deactivated_at.is_(None),
        or_(User.suspended_until.is_(None), User.suspended_until <= now),
    )


def start_session(
    db: Session,
    user: User,
    *,
    max_age: timedelta,
    ip: str | None,
    user_agent: str | None,
    two_factor: bool = False,
) -> str:
    """Create a session row and return the raw token for the cookie (the only copy).
    `two_factor`: this sign-in passed a second factor (staff pages may require one)."""
    token = new_token()
    now = utcnow()
    db.add(
        UserSession(
            user_id=user.id,
            token_hash=hash_token(token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + max_age,
            ip=ip,
            user_agent=(user_agent or "")[:255] or None,
            two_factor_at=now if two_factor else None,
        )
    )
    db.flush()
    return token


def revoke_session_token(db: Session, token: str | None) -> None:
    if not token:
        return
    db.execute(
        update(UserSession)
        .where(UserSession.token_hash == hash_token(token), UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def session_passed_two_factor(db: Session, token: str | None) -> bool:
    """Whether the session behind a cookie token passed a second factor (a rotated session,
    as after a password change, keeps that)."""
    if not token or is_anonymous_token(token):
        return False
    passed_at = db.scalar(
        select(UserSession.two_factor_at).where(UserSession.token_hash == hash_token(token))
    )
    return passed_at is not None


def revoke_user_sessions(
    db: Session, user_id: int, *, except_session_id: int | None = None
) -> None:
    statement = (
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if except_session_id is not None:
        statement = statement.where(UserSession.id != except_session_id)
    db.execute(statement)


@functools.cache
def _viewer_statement() -> Select[UserSession, User, int, bool]:
    """The session, its user, their unread count and whether they hold staff grants in one
    statement, built once: every signed-in request runs it, and building it and its cache key
    cost more than running it. Parameters: token_hash, now."""
    now = bindparam("now", type_=UserSession.expires_at.type)
    return (
        select(UserSession, User, unread_count_of(User.id), has_grants(User.id))
        .join(User, User.id == UserSession.user_id)
        .where(
            UserSession.token_hash == bindparam("token_hash"),
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
            may_sign_in(now),
        )
    )


def acting_viewer(db: Session, viewer: Viewer) -> Viewer:
    """The viewer as it acts: without the staff roles its brands want a second factor for,
    when it has not passed one (community.core.second_factor.withhold_staff_roles)."""
    if viewer.two_factor or viewer.user_id is None:
        return viewer
    role, roles, withheld = withhold_staff_roles(db, cast(Role, viewer.role), viewer.brand_roles)
    if withheld is None:
        return viewer
    return replace(viewer, role=role, brand_roles=roles, withheld=withheld)


def load_viewer(db: Session, token: str | None) -> Viewer:
    """The signed-in user behind a cookie token, or ANONYMOUS (unknown, expired, revoked)."""
    if not token or len(token) > 128 or is_anonymous_token(token):
        return ANONYMOUS
    now = utcnow()
    row = db.execute(_viewer_statement(), {"token_hash": hash_token(token), "now": now}).first()
    if row is None:
        return ANONYMOUS
    user_session, user, unread, granted = row
    # Kept for RequestContextMiddleware, which hands the row on to the page (VIEWER_ROW).
    db.info[VIEWER_ROW] = user
    roles = brand_roles_of(db, user.id) if granted else NO_GRANTS
    viewer = acting_viewer(
        db,
        viewer_of(
            user,
            session_id=user_session.id,
            brand_roles=roles,
            two_factor=user_session.two_factor_at is not None,
        ),
    )
    if now - user_session.last_seen_at > SESSION_TOUCH_INTERVAL:
        _touch(db, user_session.id, user.id, new_day=user.last_seen_at is None
               or user.last_seen_at.date() != now.date())  # fmt: skip
    return replace(viewer, unread_notifications=unread or 0)


def _touch(db: Session, session_id: int, user_id: int, *, new_day: bool) -> None:
    """Record activity (last seen, days visited) in a short write of its own: a busy
    database may delay it, but never turns a page view into an error or a sign-out."""
    now = utcnow()
    db.rollback()
    try:
        begin_write(db)
        db.execute(update(UserSession).where(UserSession.id == session_id).values(last_seen_at=now))
        values: dict[str, object] = {"last_seen_at": now}
        if new_day:
            values["days_visited"] = User.days_visited + 1  # an input of trust levels
        db.execute(update(User).where(User.id == user_id).values(**values))
        db.commit()
    except OperationalError:
        db.rollback()


# --- request dependencies --------------------------------------------------------------------


# The request-scoped dependencies below are coroutines: FastAPI runs a plain function dependency
# in a worker thread, a round trip through the thread pool that costs more than their work.


async def get_viewer(request: Request) -> Viewer:
    viewer: Viewer = getattr(request.state, "viewer", ANONYMOUS)
    return viewer


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


async def get_current_user(request: Request, db: SessionDep) -> User:
    user = await get_optional_user(request, db)
    if user is None:
        raise LoginRequired()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_optional_user(request: Request, db: SessionDep) -> User | None:
    viewer: Viewer = getattr(request.state, "viewer", ANONYMOUS)
    if viewer.user_id is None:
        return None
    row: User | None = getattr(request.state, VIEWER_ROW, None)
    if row is not None and row.id == viewer.user_id:
        # The row the viewer was loaded from moments ago: attached as it is, not read again (a
        # write's own transaction would read what the viewer's round read, committed data a
        # few milliseconds old; services change a user's counters with SQL expressions).
        user: User | None = db.merge(row, load=False)  # no query: fine on the event loop
    else:
        user = await run_in_threadpool(db.get, User, viewer.user_id)
    if user is None or user.deactivated_at is not None:
        return None
    if viewer.withheld is not None:
        # The role it acts with for this request, as if loaded so: never written back.
        set_committed_value(user, "role", viewer.role)
    return remember_brand_roles(user, viewer.brand_roles)


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def _signed_in_and(
    allowed: Callable[[policy.HasRole, int | None], bool],
) -> Callable[[Request, Session, User], Awaitable[User]]:
    """A dependency that lets through the signed-in users the policy predicate allows (403 for
    the others, the login page for nobody). Under a `brand_slug` path the predicate is asked
    for that brand: a moderator of one brand is nobody in another. Elsewhere it is asked for
    any brand, and the route's service checks the brand of what it acts on."""

    async def guard(request: Request, db: SessionDep, user: CurrentUser) -> User:
        viewer: Viewer = getattr(request.state, "viewer", ANONYMOUS)
        slug = request.path_params.get("brand_slug")
        brand_id: int | None = None
        grants = viewer.withheld.brand_roles if viewer.withheld else user.brand_roles
        if isinstance(slug, str) and grants:
            # Only people with grants per brand need the brand's id: for everyone else the
            # answer is the same in every brand (site-wide roles), so it costs no query.
            brand_id = await run_in_threadpool(
                db.scalar, select(Brand.id).where(Brand.slug == slug)
            )
        if not allowed(user, brand_id):  # the policy's predicates never read the database
            if viewer.withheld is not None and allowed(viewer.withheld, brand_id):
                # Allowed with the roles the session holds back: ask for the second factor.
                await run_in_threadpool(refuse_without_second_factor, db, user.id)
            raise PermissionDenied()
        return user

    return guard


def refuse_without_second_factor(db: Session, user_id: int) -> None:
    """The identity policy's refusal of staff work to a session without the second factor its
    brand requires (it says whether to set one up or to confirm this session with a code)."""
    enrolled = has_second_factor(db, user_id)
    policy_identity.ensure_second_factor(required=True, passed=False, enrolled=enrolled)


def withheld_staff_of(viewer: Viewer, brand_id: int | None) -> bool:
    """The viewer would be staff of the brand (None: of some brand) with the roles its session
    holds back, and is not with those it acts with."""
    return (
        viewer.withheld is not None
        and policy.is_staff(viewer.withheld, brand_id)
        and not policy.is_staff(viewer, brand_id)
    )


def require_staff_second_factor(
    request: Request, db: Session, user: User, *, brand_id: int | None
) -> None:
    """For staff actions outside the role dependencies (moderation buttons on a thread page):
    the brand's staff are asked for the second factor their brand requires, rather than told
    they are not staff; members acting as members (a trusted member moving a thread) are not
    asked."""
    viewer: Viewer = getattr(request.state, "viewer", ANONYMOUS)
    if withheld_staff_of(viewer, brand_id):
        refuse_without_second_factor(db, user.id)


async def _staff_second_factor(request: Request, db: SessionDep) -> None:
    viewer: Viewer = getattr(request.state, "viewer", ANONYMOUS)
    if viewer.withheld is None or viewer.user_id is None:
        return  # members, and staff whose session holds nothing back, cost nothing
    slug = request.path_params.get("brand_slug")
    brand_id = None
    if isinstance(slug, str):
        brand_id = await run_in_threadpool(db.scalar, select(Brand.id).where(Brand.slug == slug))
    if withheld_staff_of(viewer, brand_id):
        await run_in_threadpool(refuse_without_second_factor, db, viewer.user_id)


# For routers whose every page is staff work checked by the service rather than by a role
# dependency (a brand's admin pages): APIRouter(dependencies=[StaffSecondFactor]).
StaffSecondFactor = Depends(_staff_second_factor)

# The role dependencies of every route and API module, defined once; what each lets through is
# the policy predicate it names (admins pass each of them).
Admin = Annotated[User, Depends(_signed_in_and(lambda user, _brand: policy.is_admin(user)))]
Moderator = Annotated[User, Depends(_signed_in_and(policy.can_moderate))]
Agent = Annotated[User, Depends(_signed_in_and(policy.is_agent))]
Curator = Annotated[User, Depends(_signed_in_and(policy.can_curate))]
BrandAdmin = Annotated[User, Depends(_signed_in_and(policy.is_brand_admin))]


def client_ip(request: Request) -> str:
    # Behind a proxy, uvicorn rewrites client from X-Forwarded-For only for TRUSTED_PROXIES.
    return request.client.host if request.client else "unknown"
