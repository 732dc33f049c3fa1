"""Staff's side of possible duplicates (kb.duplicates finds them): what the thread page and the
moderation queue show, and the two decisions, close as a duplicate or not a duplicate.

Staff (moderators, agents, admins) see the suggestions; moderators and admins, who may close
threads (moderation.actions), decide. Nobody else learns that a suggestion exists: loading one
for anyone else is a 404. A decision is a conditional update of the open suggestion, so when
two moderators click at once one wins and the other is told who decided.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, aliased, selectinload

from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import Conflict, NotFound
from community.core.i18n import gettext as _
from community.core.models import Forum, Thread, ThreadStatus, User, Visibility
from community.core.policy import ensure_moderator, is_staff
from kb.duplicate_models import DuplicateSuggestion, SuggestionStatus
from moderation import actions

QUEUE_PAGE = 50

_Question = aliased(Thread)
_Candidate = aliased(Thread)


def _shown(statement: Select[Any]) -> Select[Any]:
    """Open suggestions still worth a look: the question visible and not closed (a moderator
    may have closed it by hand), the suggested original visible."""
    return (
        statement.join(_Question, _Question.id == DuplicateSuggestion.thread_id)
        .join(_Candidate, _Candidate.id == DuplicateSuggestion.candidate_thread_id)
        .where(
            DuplicateSuggestion.status == SuggestionStatus.OPEN,
            _Question.visibility == Visibility.VISIBLE,
            _Question.status != ThreadStatus.CLOSED,
            _Candidate.visibility == Visibility.VISIBLE,
        )
    )


def for_thread(db: Session, viewer: User | None, thread: Thread) -> list[DuplicateSuggestion]:
    """The thread page's notice: staff only (members' pages cost no query here)."""
    if not is_staff(viewer, thread.brand_id) or thread.status == ThreadStatus.CLOSED:
        return []
    return list(
        db.scalars(
            _shown(select(DuplicateSuggestion))
            .where(DuplicateSuggestion.thread_id == thread.id)
            .options(selectinload(DuplicateSuggestion.candidate))
            .order_by(DuplicateSuggestion.score.desc(), DuplicateSuggestion.id)
        )
    )


def open_for_brand(
    db: Session, brand_id: int, *, limit: int = QUEUE_PAGE
) -> list[DuplicateSuggestion]:
    """The moderation queue's section: newest questions first, closest original first."""
    return list(
        db.scalars(
            _shown(select(DuplicateSuggestion))
            .join(Forum, Forum.id == _Question.forum_id)
            .where(Forum.brand_id == brand_id)
            .options(
                selectinload(DuplicateSuggestion.thread).selectinload(Thread.forum),
                selectinload(DuplicateSuggestion.candidate),
            )
            .order_by(
                DuplicateSuggestion.thread_id.desc(),
                DuplicateSuggestion.score.desc(),
                DuplicateSuggestion.id,
            )
            .limit(limit)
        )
    )


def count_open(db: Session, brand_id: int) -> int:
    return int(
        db.scalar(
            _shown(select(func.count()).select_from(DuplicateSuggestion))
            .join(Forum, Forum.id == _Question.forum_id)
            .where(Forum.brand_id == brand_id)
        )
        or 0
    )


def access_suggestion(db: Session, user: User, suggestion_id: int) -> DuplicateSuggestion:
    """A suggestion for staff; for anyone else it does not exist."""
    if not is_staff(user):
        raise NotFound()
    suggestion = db.get(DuplicateSuggestion, suggestion_id)
    if suggestion is None:
        raise NotFound()
    thread = db.get(Thread, suggestion.thread_id)
    if thread is None or not is_staff(user, thread.brand_id):
        raise NotFound()
    return suggestion


def _decide(
    db: Session, moderator: User, suggestion: DuplicateSuggestion, status: SuggestionStatus
) -> None:
    result = db.execute(
        update(DuplicateSuggestion)
        .where(
            DuplicateSuggestion.id == suggestion.id,
            DuplicateSuggestion.status == SuggestionStatus.OPEN,
        )
        .values(status=status, decided_by_id=moderator.id, decided_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.refresh(suggestion)
    if getattr(result, "rowcount", 0) != 1:
        who = suggestion.decided_by.display_name if suggestion.decided_by else _("someone")
        raise Conflict(_("Already decided by %(name)s.") % {"name": who})


def close_as_duplicate(
    db: Session, moderator: User, suggestion: DuplicateSuggestion, *, ip: str | None = None
) -> Thread:
    """One click: close the question as a duplicate of the suggested original (the
    moderators' own close action: its checks, audit row and reindexing). Returns the
    original."""
    ensure_moderator(moderator, suggestion.thread.brand_id)
    thread, original = suggestion.thread, suggestion.candidate
    if suggestion.status == SuggestionStatus.OPEN and thread.status == ThreadStatus.CLOSED:
        raise Conflict(_("This thread is already closed."))
    if original.visibility != Visibility.VISIBLE:
        raise Conflict(_("The suggested original is no longer visible."))
    _decide(db, moderator, suggestion, SuggestionStatus.CLOSED_AS_DUPLICATE)
    actions.close(
        db,
        moderator,
        thread,
        actions.CloseReason.DUPLICATE,
        duplicate_of=original,
        reason=_("Possible duplicate found by search (similarity %(percent)d%%).")
        % {"percent": suggestion.percent},
        ip=ip,
    )
    return original


def dismiss(
    db: Session, moderator: User, suggestion: DuplicateSuggestion, *, ip: str | None = None
) -> None:
    """Not a duplicate: the suggestion goes away and the pair is never suggested again."""
    ensure_moderator(moderator, suggestion.thread.brand_id)
    _decide(db, moderator, suggestion, SuggestionStatus.DISMISSED)
    record_audit(
        db,
        actor=moderator,
        action="thread.duplicate_dismissed",
        target_type="thread",
        target_id=suggestion.thread_id,
        after={"not_duplicate_of": suggestion.candidate_thread_id},
        ip=ip,
    )
