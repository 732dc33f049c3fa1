"""Insights for a brand's support leads: one page with every panel (agents and admins), and
each panel as JSON and as CSV from the API. All three call the same service functions."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from community import api as community_api
from community.core import service as community_service
from community.core.auth import Agent
from community.core.clock import utcnow
from community.core.db import SessionDep
from community.core.errors import FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import Brand
from community.core.web import render
from crowdservice.insights import export, panels, weekly
from crowdservice.insights.period import InsightsFilter, insights_filter, week_of

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", responses=community_api.ERRORS, tags=["insights"])  # type: ignore[arg-type]

Day = Annotated[date | None, Query(description="First or last UTC day (YYYY-MM-DD)")]
Text = Annotated[str | None, Query(max_length=60)]


@dataclass(frozen=True, slots=True)
class Scope:
    brand: Brand
    period: InsightsFilter


def _scope(
    db: SessionDep,
    brand_slug: str,
    start: Day = None,
    end: Day = None,
    forum: Text = None,
    language: Text = None,
) -> Scope:
    brand = community_service.get_brand(db, brand_slug)
    period = insights_filter(utcnow().date(), start=start, end=end, forum=forum, language=language)
    return Scope(brand, period)


# After `Agent` in every signature: who may look is settled before the brand and the period.
InScope = Annotated[Scope, Depends(_scope)]


@router.get("/b/{brand_slug}/insights", response_class=HTMLResponse, name="insights")
def insights_page(request: Request, db: SessionDep, user: Agent, scope: InScope) -> Response:
    brand, period = scope.brand, scope.period
    return render(
        request,
        "crowdservice/insights.html",
        {
            "brand": brand,
            "period": period,
            "panels": panels.compute_all(db, brand, period, now=utcnow()),
            "forums": community_service.list_forums(db, brand),
        },
    )


@router.get("/b/{brand_slug}/insights/weekly", response_class=HTMLResponse, name="insights_weekly")
def weekly_page(
    request: Request, db: SessionDep, user: Agent, brand_slug: str, week: Day = None
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    today = utcnow().date()
    chosen = week_of(week) if week else weekly.last_full_week(today)
    if chosen > week_of(today):
        raise FormErrors({"week": _("That week has not begun.")})
    summary = weekly.weekly_summary(db, brand, chosen, now=utcnow())
    return render(
        request, "crowdservice/insights_weekly.html", {"brand": brand, "summary": summary}
    )


# The CSV route first: "{panel}" alone would also match "volume.csv".
@api.get("/analytics/{brand_slug}/{panel}.csv", response_class=Response)
def api_panel_csv(db: SessionDep, user: Agent, scope: InScope, panel: str) -> Response:
    chosen = _panel(panel)
    rows = chosen.rows(chosen.compute(db, scope.brand, scope.period, utcnow()))
    return _csv(export.to_csv(chosen.columns, rows), scope, panel)


@api.get("/analytics/{brand_slug}/{panel}")
def api_panel(db: SessionDep, user: Agent, scope: InScope, panel: str) -> dict[str, Any]:
    """One panel's figures for the period (see the insights page for each definition)."""
    data = _panel(panel).compute(db, scope.brand, scope.period, utcnow())
    return {"period": scope.period.as_params(), **asdict(data)}


def _panel(name: str) -> panels.Panel:
    chosen = panels.PANELS.get(name)
    if chosen is None:
        raise NotFound(_("There is no insights panel of that name."))
    return chosen


def _csv(body: str, scope: Scope, panel: str) -> Response:
    period = scope.period
    name = f"{scope.brand.slug}-{panel}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
