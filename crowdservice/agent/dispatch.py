"""The workspace's action buttons, by name: one table from the name in the URL
(`/agent/escalations/{id}/{action}`) to the action and the message the agent sees after it.
A name not in the table is a 404, whatever the escalation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import Role, User
from community.core.staff import holds_role_in
from community.core.workspace_models import BrandRole
from crowdservice.agent.actions import ask_details, claim, reassign, release, respond
from crowdservice.agent.handoff import hand_off, resolve, return_to_community
from crowdservice.agent.links import link_answer
from crowdservice.models import Escalation
from crowdservice.saved_replies.use import count_use


@dataclass(frozen=True, slots=True)
class ActionForm:
    """The item page's form fields; each action reads the ones it needs."""

    body: str = ""  # the public answer or the question to the customer
    note: str = ""  # for the helpdesk, the community or the resolution
    to: str = ""  # the username of the agent to reassign to
    link: str = ""  # a KB entry or solved thread, by link or number
    saved_reply: str = ""  # the saved reply the answer box was filled from, if any


# An action changes the escalation (flushing, never committing) and says what it did.
ActionHandler = Callable[[Session, User, Escalation, ActionForm], str]


def _text(form: ActionForm) -> str:
    text = form.body.strip()
    if not text:
        raise FormErrors({"body": _("Write something first.")})
    return text


def _claim(db: Session, user: User, escalation: Escalation, form: ActionForm) -> str:
    claim(db, user, escalation)
    return _("It is yours.")


def _release(db: Session, user: User, escalation: Escalation, form: ActionForm) -> str:
    release(db, user, escalation)
    return _("Released to the queue.")


def _reassign(db: Session, user: User, escalation: Escalation, form: ActionForm) -> str:
    target = db.scalar(select(User).where(User.username_key == form.to.strip().casefold()))
    if target is None:
        raise FormErrors({"agent": _("Choose an agent.")})
    reassign(db, user, escalation, target)
    return _("Reassigned to %(name)s.") % {"name": target.display_name}


def _respond(db: Session, user: User, escalation: Escalation, form: ActionForm) -> str:
    respond(db, user, escalation, _text(form))
    return _("Your answer is on the thread.")


def _ask(db: Session, user: User, escalation: Escalation, form: ActionForm) -> str:
    ask_details(db, user, escalation, _text(form))
    return _("Asked for details; the resolution clock is paused.")


def _handoff(db: Session, user: User, escalation: Escalation, form: ActionForm) -> str:
    hand_off(db, user, escalation, form.note)
    return _("Handed off to the helpdesk.")


def _return(db: Session, user: User, escalation: Escalation, form: ActionForm) -> str:
    return_to_community(db, user, escalation, form.note)
    return _("Returned to the community.")


def _resolve(db: Session, user: User, escalation: Escalation, form: ActionForm) -> str:
    # The resolve form sends a note; the answer box's "Answer and resolve" (a saved reply that
    # suggests resolving) sends its body, posted the same way as the public note.
    resolve(db, user, escalation, form.note.strip() or form.body)
    return _("Resolved.")


def _link(db: Session, user: User, escalation: Escalation, form: ActionForm) -> str:
    link_answer(db, user, escalation, form.link)
    return _("Linked on the thread.")


ACTION_HANDLERS: Mapping[str, ActionHandler] = {
    "claim": _claim,
    "release": _release,
    "reassign": _reassign,
    "respond": _respond,
    "ask": _ask,
    "handoff": _handoff,
    "return": _return,
    "resolve": _resolve,
    "link": _link,
}


# The actions that post what the answer box holds: sending one counts a use of the saved reply
# it was filled from. Inserting a reply alone counts nothing.
COUNTS_SAVED_REPLY = frozenset({"respond", "ask", "resolve"})


def require_known_action(action: str) -> None:
    """Checked before the escalation is loaded, so a made-up URL is a 404 for anyone."""
    if action not in ACTION_HANDLERS:
        raise NotFound()


def perform(db: Session, user: User, escalation: Escalation, action: str, form: ActionForm) -> str:
    """Run the named action on the escalation; the message to show the agent after it."""
    require_known_action(action)
    message = ACTION_HANDLERS[action](db, user, escalation, form)
    if action in COUNTS_SAVED_REPLY and form.saved_reply:
        # Only after the action succeeded, in its transaction: a refused answer counts nothing.
        count_use(db, user, escalation.brand_id, form.saved_reply)
    return message


def assignable_agents(db: Session, brand_id: int) -> list[User]:
    """Who an item of the brand may be reassigned to: active agents and admins, the site's and
    the brand's, by username."""
    brand_agents = or_(User.role.in_(Role.AGENTS), holds_role_in(brand_id, BrandRole.AGENTS))
    return list(
        db.scalars(
            select(User).where(brand_agents, User.deactivated_at.is_(None)).order_by(User.username)
        )
    )
