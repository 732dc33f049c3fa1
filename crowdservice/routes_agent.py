"""The agent workspace: the escalation queue (ordered by the deadline that matters, refreshed
by htmx), one item with its whole context, the actions on it, and an agent's own figures.
Agents and admins only (admins are the lead agents)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from community.core import policy
from community.core import service as community_service
from community.core.auth import Agent
from community.core.clock import utcnow
from community.core.db import SessionDep
from community.core.errors import Conflict, NotFound
from community.core.models import User
from community.core.staff import home_brand
from community.core.web import flash_redirect, render
from crowdservice import agent, figures
from crowdservice.models import Escalation, EscalationStatus

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]


@router.get("/agent", name="agent_default")
def agent_default(request: Request, db: SessionDep, user: Agent) -> Response:
    brand = home_brand(
        db, user, community_service.default_brand(db, request.app.state.settings.default_brand)
    )
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
    forums = community_service.list_forums(db, brand)
    return render(
        request,
        "crowdservice/agent_queue.html",
        {
            "brand": brand,
            "listing": listing,
            "workload": listing.counts.workload,
            "filters": filters,
            "forums": forums,
            # The htmx refresh asks for the page shown, with the same filters.
            "query": filters.query(page=listing.page),
            "states": [status.value for status in EscalationStatus],
        },
        block="queue",
    )


def render_item(
    request: Request, db: Session, user: User, escalation: Escalation, **extra: Any
) -> Response:
    """The whole item page; `extra` fills the answer box area (saved replies found, or one
    inserted) when a browser without htmx asks for it."""
    context = agent.item_context(db, escalation, now=utcnow())
    similar = agent.similar_entries(request.app.state.search, db, escalation)
    agents = agent.assignable_agents(db, escalation.brand_id)
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
            "saved_matches": None,
            "saved_query": "",
            "inserted": None,
        }
        | extra,
    )


@router.get("/agent/escalations/{escalation_id}", response_class=HTMLResponse, name="agent_item")
def item_page(request: Request, db: SessionDep, user: Agent, escalation_id: int) -> Response:
    return render_item(request, db, user, agent.access_escalation(db, user, escalation_id))


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
    saved_reply: FormText = "",
) -> Response:
    agent.require_known_action(action)
    escalation = agent.access_escalation(db, user, escalation_id)
    here = f"/agent/escalations/{escalation.id}"
    form = agent.ActionForm(body=body, note=note, to=to, link=link, saved_reply=saved_reply)
    try:
        message = agent.perform(db, user, escalation, action, form)
    except Conflict as exc:
        db.rollback()
        return flash_redirect(request, here, str(exc), category="error")
    db.commit()
    return flash_redirect(request, here, message)


@router.get("/agent/me", response_class=HTMLResponse, name="agent_figures")
def figures_page(
    request: Request, user: Agent, db: SessionDep, days: int = 30, brand: str = ""
) -> Response:
    days = min(max(days, 1), 365)
    if brand:
        chosen = community_service.get_brand(db, brand[:60])
    else:
        found = home_brand(
            db, user, community_service.default_brand(db, request.app.state.settings.default_brand)
        )
        if found is None:
            raise NotFound()
        chosen = found
    policy.ensure_agent(user, chosen.id)
    now = utcnow()
    mine = figures.agent_figures(db, user, chosen, since=now - timedelta(days=days), now=now)
    return render(
        request,
        "crowdservice/agent_figures.html",
        {"figures": mine, "days": days, "brand": chosen},
    )
