"""Deflection measured by experiment: a brand may hold back the ask form's suggestions from a
share of its visitors (the holdout) and compare how often their sessions end in a new question
with everyone else's (crowdservice.insights.deflection computes the figure).

- **Assignment**: sha256 of "<brand id>:<visitor key>" read as a number, modulo 100; below the
  brand's holdout percent the visitor is in the holdout. The visitor key is
  community.core.viewcount.viewer_key (a signed-in member's is the hash of "user:<id>"), so a
  member stays in one group on every device and visit while the share is unchanged; the hash
  includes the brand, so one member is not held back on every brand at once.
- **Session**: a signed-in visitor typing a question's title on one brand's ask form. It
  starts with the first suggestion request for a title long enough to search, stays open while
  suggestion requests keep coming less than 30 minutes apart, and ends when the visitor posts a
  question in the brand (its outcome) or 30 minutes after the last request. Only signed-in
  visitors' sessions are stored: the ask form needs an account, so nobody else can end a session
  with a question, and a crawler calling the endpoint would only dilute both groups. Others get
  the same treatment by the same hash, unrecorded.
- The group is stored on the session when it starts, with the share in force then, and kept for
  the whole session even if an admin changes the share meanwhile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from community.core.audit import record_audit
from community.core.errors import FormErrors
from community.core.forms import read_whole_number
from community.core.i18n import gettext as _
from community.core.models import Brand, Thread, User
from kb.models import AskArm, AskSession

SESSION_WINDOW = timedelta(minutes=30)
# The ask form asks for suggestions every few hundred milliseconds while a title is typed: the
# session's last activity is kept to the minute, so a title typed in one go costs one write.
ACTIVITY_STEP = timedelta(minutes=1)
# The share when an admin switches the holdout on without saying one, and the most allowed: a
# holdout past half the visitors would cost more self-service than the measure is worth.
DEFAULT_HOLDOUT_PERCENT = 10
MAX_HOLDOUT_PERCENT = 50


def assigned_arm(brand_id: int, visitor_key: str, holdout_percent: int) -> AskArm:
    """The group a visitor belongs to on a brand at the given share: stable, and about
    `holdout_percent` of all visitors in the holdout (sha256 spreads keys evenly)."""
    if holdout_percent <= 0:
        return AskArm.SUGGESTIONS
    digest = hashlib.sha256(f"{brand_id}:{visitor_key}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    return AskArm.HOLDOUT if bucket < holdout_percent else AskArm.SUGGESTIONS


def _open_session(db: Session, brand_id: int, visitor_key: str, now: datetime) -> AskSession | None:
    """The visitor's latest session if it is still open at `now`."""
    latest = db.scalars(
        select(AskSession)
        .where(AskSession.brand_id == brand_id, AskSession.visitor_key == visitor_key)
        .order_by(AskSession.number.desc())
        .limit(1)
    ).first()
    if (
        latest is None
        or latest.ended_with_thread_at is not None
        or latest.last_activity_at <= now - SESSION_WINDOW
    ):
        return None
    return latest


def visit(db: Session, brand: Brand, visitor_key: str, *, signed_in: bool, now: datetime) -> AskArm:
    """A suggestion request from the ask form: the group whose treatment it gets. For a
    signed-in visitor it continues the open session (its stored group) or starts one."""
    return visit_session(db, brand, visitor_key, signed_in=signed_in, now=now)[0]


def visit_session(
    db: Session, brand: Brand, visitor_key: str, *, signed_in: bool, now: datetime
) -> tuple[AskArm, AskSession | None]:
    """`visit`, with the stored session (flushed, so it has its id) of a signed-in visitor:
    what was matched in it is recorded against it (known-issue impressions)."""
    if not signed_in:
        return assigned_arm(brand.id, visitor_key, brand.holdout_percent), None
    session = _open_session(db, brand.id, visitor_key, now)
    if session is not None:
        if now - session.last_activity_at >= ACTIVITY_STEP:
            session.last_activity_at = now
        return session.arm, session
    started = _start_session(db, brand, visitor_key, now)
    return started.arm, started


def _start_session(db: Session, brand: Brand, visitor_key: str, now: datetime) -> AskSession:
    previous = db.scalar(
        select(func.max(AskSession.number)).where(
            AskSession.brand_id == brand.id, AskSession.visitor_key == visitor_key
        )
    )
    number = (previous or 0) + 1
    session = AskSession(
        brand_id=brand.id,
        visitor_key=visitor_key,
        number=number,
        arm=assigned_arm(brand.id, visitor_key, brand.holdout_percent),
        holdout_percent=brand.holdout_percent,
        started_at=now,
        last_activity_at=now,
    )
    try:
        with db.begin_nested():
            db.add(session)
    except IntegrityError:
        # Another request of the same visitor opened this session a moment ago: it is the one.
        return db.scalars(
            select(AskSession).where(
                AskSession.brand_id == brand.id,
                AskSession.visitor_key == visitor_key,
                AskSession.number == number,
            )
        ).one()
    return session


def record_question(
    db: Session, brand: Brand, visitor_key: str, thread: Thread, *, now: datetime
) -> AskSession | None:
    """The visitor posted a question in the brand: the outcome of their open session, if any
    (none when they asked without typing a title the suggestions searched, e.g. without
    JavaScript; that question belongs to no session)."""
    session = _open_session(db, brand.id, visitor_key, now)
    if session is not None:
        session.thread_id = thread.id
        session.ended_with_thread_at = now
        session.last_activity_at = now
    return session


# --- the admin setting ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HoldoutForm:
    """The form as typed: the switch ("1" when ticked) and the share as text."""

    enabled: bool = False
    percent: str = ""


def holdout_percent(form: HoldoutForm) -> int:
    """0 when switched off; otherwise the typed share (10 when left empty), a whole number from
    0 to 50, or a FormErrors naming the field."""
    if not form.enabled:
        return 0
    if not form.percent.strip():
        return DEFAULT_HOLDOUT_PERCENT
    number = read_whole_number(form.percent)
    if number is None or not 0 <= number <= MAX_HOLDOUT_PERCENT:
        raise FormErrors(
            {
                "holdout_percent": _(
                    "Enter a whole number of percent from 0 to %(high)d (0 switches it off)."
                )
                % {"high": MAX_HOLDOUT_PERCENT}
            }
        )
    return number


def do_set_holdout(
    db: Session, admin: User, brand: Brand, form: HoldoutForm, *, ip: str | None = None
) -> int:
    """Checks before changing: a FormErrors leaves the brand as it was. Audited. Sessions
    already open keep their group; new ones are assigned at the new share."""
    percent = holdout_percent(form)
    before = brand.holdout_percent
    if percent != before:
        brand.holdout_percent = percent
        record_audit(
            db,
            actor=admin,
            action="brand.holdout",
            target_type="brand",
            target_id=brand.id,
            before={"holdout_percent": before},
            after={"holdout_percent": percent},
            ip=ip,
        )
    return percent
