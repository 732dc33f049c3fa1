"""The agent workspace: the escalation queue (ordered by the deadline that matters, refreshed
by htmx), one item with its whole context, the actions on it, and an agent's own figures.
Agents and admins only (admins are the lead agents)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from community.core import policy
from community.core import service as community_service
from community.core.auth import Agent
from community.core.clock import utcnow
from community.core.db import SessionDep
from community.core.errors import Conflict, FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import Forum, Role, User
from community.core.web import flash_redirect, render
from crowdservice import agent, figures
from crowdservice.models import Escalation, EscalationStatus

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]
ACTIONS = ("claim", "release", "reassign", "respond", "ask", "handoff", "return", "resolve", "link")


@router.get("/agent", name="agent_default")
def agent_default(request: Request, db: SessionDep, user: Agent) -> Response:
    brand = community_service.default_brand(db, request.app.state.settings.default_brand)
    if brand is None:
        raise NotFound()
    return RedirectResponse(f"/b/{brand.slug}/agent", status_code=303)


@router.get("/b/{brand_slug}/agent", response_class=HTMLResponse, name="agent_queue")
def queue_page(request: Request, db: SessionDep, user: Agent, brand_slug: str) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    params = {key: value for key, value in request.query_params.items() if isinstance(value, str)}
    filters = agent.QueueFilters.from_params(params)
    now = utcnow()
    listing = agent.queue(db, user, brand, filters, now=now)
    forums = list(
        db.scalars(select(Forum).where(Forum.brand_id == brand.id).order_by(Forum.position))
    )
    return render(
        request,
        "crowdservice/agent_queue.html",
        {
            "brand": brand,
            "listing": listing,
            "workload": figures.workload(db, user, brand, now=now),
            "filters": filters,
            "forums": forums,
            "query": request.url.query,
            "states": [status.value for status in EscalationStatus],
        },
        block="queue",
    )


@router.get("/agent/escalations/{escalation_id}", response_class=HTMLResponse, name="agent_item")
def item_page(request: Request, db: SessionDep, user: Agent, escalation_id: int) -> Response:
    escalation = agent.access_escalation(db, user, escalation_id)
    context = agent.item_context(db, escalation, now=utcnow())
    similar = agent.similar_entries(request.app.state.search, db, escalation)
    agents = list(
        db.scalars(
            select(User)
            .where(User.role.in_(Role.AGENTS), User.deactivated_at.is_(None))
            .order_by(User.username)
        )
    )
    return render(
        request,
        "crowdservice/agent_item.html",
        {
            "item": context,
            "escalation": escalation,
            "brand": context.thread.forum.brand,
            "similar": similar,
            "agents": agents,
            "is_lead": policy.is_lead(user),
            "holds": escalation.assigned_agent_id == user.id,
        },
    )


@router.post("/agent/escalations/{escalation_id}/{action}", name="agent_action")
def item_action(
    request: Request,
    db: SessionDep,
    user: Agent,
    escalation_id: int,
    action: str,
    body: FormText = "",
    note: FormText = "",
    to: FormText = "",
    link: FormText = "",
) -> Response:
    if action not in ACTIONS:
        raise NotFound()
    escalation = agent.access_escalation(db, user, escalation_id)
    here = f"/agent/escalations/{escalation.id}"
    try:
        message = _act(db, user, escalation, action, body=body, note=note, to=to, link=link)
    except Conflict as exc:
        db.rollback()
        return flash_redirect(request, here, str(exc), category="error")
    db.commit()
    return flash_redirect(request, here, message)


def _act(
    db: SessionDep,
    user: User,
    escalation: Escalation,
    action: str,
    *,
    body: str,
    note: str,
    to: str,
    link: str,
) -> str:
    text = body.strip()
    if action in ("respond", "ask") and not text:
        raise FormErrors({"body": _("Write something first.")})
    if action == "claim":
        agent.claim(db, user, escalation)
        return _("It is yours.")
    if action == "release":
        agent.release(db, user, escalation)
        return _("Released to the queue.")
    if action == "reassign":
        target = db.scalar(select(User).where(User.username_key == to.strip().casefold()))
        if target is None:
            raise FormErrors({"agent": _("Choose an agent.")})
        agent.reassign(db, user, escalation, target)
        return _("Reassigned to %(name)s.") % {"name": target.display_name}
    if action == "respond":
        agent.respond(db, user, escalation, text)
        return _("Your answer is on the thread.")
    if action == "ask":
        agent.ask_details(db, user, escalation, text)
        return _("Asked for details; the resolution clock is paused.")
    if action == "handoff":
        agent.hand_off(db, user, escalation, note)
        return _("Handed off to the helpdesk.")
    if action == "return":
        agent.return_to_community(db, user, escalation, note)
        return _("Returned to the community.")
    if action == "resolve":
        agent.resolve(db, user, escalation, note)
        return _("Resolved.")
    agent.link_answer(db, user, escalation, link)
    return _("Linked on the thread.")


@router.get("/agent/me", response_class=HTMLResponse, name="agent_figures")
def figures_page(
    request: Request, user: Agent, db: SessionDep, days: int = 30, brand: str = ""
) -> Response:
    days = min(max(days, 1), 365)
    if brand:
        chosen = community_service.get_brand(db, brand[:60])
    else:
        found = community_service.default_brand(db, request.app.state.settings.default_brand)
        if found is None:
            raise NotFound()
        chosen = found
    now = utcnow()
    mine = figures.agent_figures(db, user, chosen, since=now - timedelta(days=days), now=now)
    return render(
        request,
        "crowdservice/agent_figures.html",
        {"figures": mine, "days": days, "brand": chosen},
    )
