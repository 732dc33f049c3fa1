"""Insights for a brand's support leads: one page with every panel (agents and admins), and
each panel as JSON and as CSV from the API. All three call the same service functions."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from community import api as community_api
from community.core import service as community_service
from community.core.auth import Agent
from community.core.clock import utcnow
from community.core.db import SessionDep
from community.core.models import Brand
from community.core.web import render
from crowdservice.insights import export
from crowdservice.insights.period import InsightsFilter, insights_filter
from crowdservice.insights.service_levels import service_panel
from crowdservice.insights.volume import volume

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", responses=community_api.ERRORS, tags=["insights"])  # type: ignore[arg-type]

Day = Annotated[date | None, Query(description="First or last UTC day (YYYY-MM-DD)")]
Text = Annotated[str | None, Query(max_length=60)]


def _scope(
    db: SessionDep, brand_slug: str, start: Day, end: Day, forum: Text, language: Text
) -> tuple[Brand, InsightsFilter]:
    brand = community_service.get_brand(db, brand_slug)
    period = insights_filter(utcnow().date(), start=start, end=end, forum=forum, language=language)
    return brand, period


@router.get("/b/{brand_slug}/insights", response_class=HTMLResponse, name="insights")
def insights_page(
    request: Request,
    db: SessionDep,
    user: Agent,
    brand_slug: str,
    start: Day = None,
    end: Day = None,
    forum: Text = None,
    language: Text = None,
) -> Response:
    brand, period = _scope(db, brand_slug, start, end, forum, language)
    return render(
        request,
        "crowdservice/insights.html",
        {
            "brand": brand,
            "period": period,
            "volume": volume(db, brand, period),
            "service": service_panel(db, brand, period, now=utcnow()),
            "forums": community_service.list_forums(db, brand),
        },
    )


@api.get("/analytics/{brand_slug}/volume")
def api_volume(
    db: SessionDep,
    user: Agent,
    brand_slug: str,
    start: Day = None,
    end: Day = None,
    forum: Text = None,
    language: Text = None,
) -> dict[str, Any]:
    brand, period = _scope(db, brand_slug, start, end, forum, language)
    return {"period": period.as_params(), **asdict(volume(db, brand, period))}


@api.get("/analytics/{brand_slug}/volume.csv", response_class=Response)
def api_volume_csv(
    db: SessionDep,
    user: Agent,
    brand_slug: str,
    start: Day = None,
    end: Day = None,
    forum: Text = None,
    language: Text = None,
) -> Response:
    brand, period = _scope(db, brand_slug, start, end, forum, language)
    rows = export.volume_rows(volume(db, brand, period))
    return _csv(export.to_csv(export.VOLUME_COLUMNS, rows), brand, "volume", period)


@api.get("/analytics/{brand_slug}/service")
def api_service(
    db: SessionDep,
    user: Agent,
    brand_slug: str,
    start: Day = None,
    end: Day = None,
    forum: Text = None,
    language: Text = None,
) -> dict[str, Any]:
    brand, period = _scope(db, brand_slug, start, end, forum, language)
    panel = service_panel(db, brand, period, now=utcnow())
    return {"period": period.as_params(), **asdict(panel)}


@api.get("/analytics/{brand_slug}/service.csv", response_class=Response)
def api_service_csv(
    db: SessionDep,
    user: Agent,
    brand_slug: str,
    start: Day = None,
    end: Day = None,
    forum: Text = None,
    language: Text = None,
) -> Response:
    brand, period = _scope(db, brand_slug, start, end, forum, language)
    rows = export.service_rows(service_panel(db, brand, period, now=utcnow()))
    return _csv(export.to_csv(export.SERVICE_COLUMNS, rows), brand, "service", period)


def _csv(body: str, brand: Brand, panel: str, period: InsightsFilter) -> Response:
    name = f"{brand.slug}-{panel}-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
