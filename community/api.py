"""JSON API (/api/v1) for accounts, brands and forums, plus the /healthz and /readyz probes.

The same services and permission rules as the pages; cookie sessions send the CSRF token in the
X-CSRF-Token header for anything that changes state.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from community.core import meili, model_client, service
from community.core.auth import Admin, CurrentUser, OptionalUser, client_ip
from community.core.db import DatabaseError, SessionDep, ping
from community.core.models import User
from community.core.schemas import (
    BrandOut,
    ErrorOut,
    ForumOut,
    HealthOut,
    MeOut,
    RoleChangeIn,
    UserOut,
)
from kb import search_model

ERRORS = {
    401: {"model": ErrorOut},
    403: {"model": ErrorOut},
    404: {"model": ErrorOut},
    409: {"model": ErrorOut},
    422: {"model": ErrorOut},
    429: {"model": ErrorOut, "description": "Too many requests; see the Retry-After header."},
}

router = APIRouter(prefix="/api/v1", responses=ERRORS)  # type: ignore[arg-type]
probes = APIRouter(tags=["probes"])


@router.get("/me", response_model=MeOut, tags=["accounts"])
def api_me(user: CurrentUser) -> User:
    return user


@router.get("/users/{user_id}", response_model=UserOut, tags=["accounts"])
def api_user_detail(db: SessionDep, user_id: int) -> User:
    return service.get_user(db, user_id)


@router.put("/users/{user_id}/role", response_model=UserOut, tags=["accounts"])
def api_user_role(
    request: Request,
    db: SessionDep,
    admin: Admin,
    user_id: int,
    body: RoleChangeIn,
) -> User:
    target = service.get_user(db, user_id)
    service.set_role(db, admin, target, body.role, ip=client_ip(request))
    db.commit()
    return target


@router.get("/brands", response_model=list[BrandOut], tags=["forums"])
def api_brands(db: SessionDep) -> list[object]:
    return list(service.list_brands(db))


@router.get("/brands/{brand_slug}/forums", response_model=list[ForumOut], tags=["forums"])
def api_forums(db: SessionDep, viewer: OptionalUser, brand_slug: str) -> list[object]:
    brand = service.get_brand(db, brand_slug, viewer=viewer)
    return list(service.readable_forums(db, brand, viewer))


@probes.get("/healthz", response_model=HealthOut)
def healthz() -> HealthOut:
    """The process is alive (no dependencies checked)."""
    return HealthOut(status="ok")


@probes.get("/readyz", response_model=HealthOut, responses={503: {"model": HealthOut}})
def readyz(request: Request) -> JSONResponse:
    """Ready to serve: the database answers and Meilisearch is healthy; 503 says which is not.
    A rate-limit store that does not answer, or a semantic search model that fails, is
    reported as degraded, still ready."""
    checks: dict[str, str] = {}
    settings = request.app.state.settings
    try:
        with request.app.state.session_factory() as db:
            ping(db)
            checks["database"] = "ok"
            # Like the rate limits: without its model, search is lexical but still works.
            checks["embedder"] = search_model.embedder_check(db, settings.search_model)
    except DatabaseError as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
        checks.setdefault("embedder", search_model.embedder_check(None, settings.search_model))
    models = model_client.current()
    if models is not None:
        # Without it, search is lexical and languages are detected in this process: degraded.
        try:
            models.health()
            checks["models"] = "ok"
        except model_client.ModelServerUnavailable:
            checks["models"] = "degraded: the model server does not answer"
    meili_url = settings.meili_url
    if not meili_url:
        checks["search"] = "unavailable: MEILI_URL is not configured"
    elif meili.is_healthy(meili_url):
        checks["search"] = "ok"
    else:
        checks["search"] = "unavailable: Meilisearch does not answer"
    # Rate limits fail open by design: without their counters the site still serves, so this
    # is said here but does not make the process unready.
    store = request.app.state.limit_store
    checks["rate_limits"] = (
        "ok"
        if store.probe()
        else "degraded: Redis does not answer, requests are let through without rate limits"
    )
    healthy = checks["database"] == "ok" and checks["search"] == "ok"
    body = HealthOut(status="ok" if healthy else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
