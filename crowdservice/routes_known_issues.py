"""Known issues: the public pages (a brand's list, one issue with its timeline and the follow
button), the agents' pages (publish, edit, post an update, close, reopen, turn into an article),
the JSON API, and the banner every page of the brand shows while an issue is open.

Closed issues stay readable by everyone at their address (a public announcement is history); the
brand's list and the API's list show open ones only, unless an agent asks for all."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from community.api import ERRORS
from community.core import policy
from community.core import service as community_service
from community.core.auth import Agent, CurrentUser, OptionalUser
from community.core.db import SessionDep
from community.core.errors import Conflict, FormErrors, NotFound
from community.core.i18n import gettext as _
from community.core.models import Brand
from community.core.web import flash_redirect, is_htmx, render
from crowdservice.known_issues import article, banner, service, views
from crowdservice.known_issues.forms import IssueForm
from crowdservice.known_issues.models import KnownIssue, KnownIssueStatus
from crowdservice.known_issues.notices import issue_path
from crowdservice.known_issues.schemas import (
    KnownIssueIn,
    KnownIssueOut,
    KnownIssueStaffOut,
    KnownIssueUpdateIn,
)

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["support"], responses=ERRORS)  # type: ignore[arg-type]
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]

# --- the banner -------------------------------------------------------------------------------

_CACHE = "known_issue_banners"


def forget_banners(request: Request) -> None:
    """This process shows a change at once; other processes within banner.BANNER_SECONDS."""
    if hasattr(request.app.state, _CACHE):
        delattr(request.app.state, _CACHE)


def known_issue_banners(request: Request, context: dict[str, Any]) -> dict[str, Any]:
    """Page-context provider (community.app registers it): the open issues for this page."""
    cache: banner.BannerCache | None = getattr(request.app.state, _CACHE, None)
    if cache is None:
        cache = banner.BannerCache(request.app.state.session_factory)
        setattr(request.app.state, _CACHE, cache)
    return {"known_issue_banners": banner.banners_for_page(cache.get(), context)}


# --- public pages -----------------------------------------------------------------------------


def _brand_issue(db: Session, brand_slug: str, issue_id: int) -> tuple[Brand, KnownIssue]:
    brand = community_service.get_brand(db, brand_slug)
    issue = service.access_issue(db, issue_id)
    if issue.brand_id != brand.id:
        raise NotFound()
    return brand, issue


@router.get("/b/{brand_slug}/known-issues", response_class=HTMLResponse, name="known_issues")
def list_page(request: Request, db: SessionDep, user: OptionalUser, brand_slug: str) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    agent = policy.can_announce(user, brand.id)
    issues = views.brand_issues(db, brand, include_closed=agent)
    return render(
        request,
        "crowdservice/known_issues.html",
        {"brand": brand, "issues": issues, "is_agent": agent},
    )


@router.get(
    "/b/{brand_slug}/known-issues/{issue_id}", response_class=HTMLResponse, name="known_issue"
)
def issue_page(
    request: Request, db: SessionDep, user: OptionalUser, brand_slug: str, issue_id: int
) -> Response:
    brand, issue = _brand_issue(db, brand_slug, issue_id)
    return render(
        request,
        "crowdservice/known_issue.html",
        {
            "brand": brand,
            "issue": issue,
            "forums": views.scope_forums(db, issue, user),
            "following": service.is_following(db, user, issue),
            "can_follow": user is not None and _followable(issue),
            "is_agent": policy.can_announce(user, brand.id),
        },
    )


def _followable(issue: KnownIssue) -> bool:
    return issue.closed_at is None and issue.status != KnownIssueStatus.FIXED


# The id prefix of the "Notify me when it is fixed" buttons in the ask form's suggestions.
SUGGESTION_BUTTON = "follow-known-issue-"


def _follow_response(
    request: Request, db: Session, issue: KnownIssue, *, following: bool, message: str
) -> Response:
    brand = community_service.get_brand_by_id(db, issue.brand_id)
    if is_htmx(request) and request.headers.get("hx-target", "").startswith(SUGGESTION_BUTTON):
        # The button among the ask form's suggestions: a sentence takes its place (a form
        # there would nest inside the ask form).
        return render(
            request,
            "crowdservice/_known_issue_followed.html",
            {"issue": issue, "brand": brand, "message": message},
        )
    if is_htmx(request):
        return render(
            request,
            "crowdservice/_known_issue_follow.html",
            {"issue": issue, "brand": brand, "following": following, "can_follow": True},
        )
    return flash_redirect(request, issue_path(brand.slug, issue.id), message)


@router.post("/known-issues/{issue_id}/follow", name="known_issue_follow")
def follow(request: Request, db: SessionDep, user: CurrentUser, issue_id: int) -> Response:
    issue = service.access_issue(db, issue_id)
    service.follow(db, user, issue)
    db.commit()
    return _follow_response(
        request, db, issue, following=True, message=_("We will tell you when it is fixed.")
    )


@router.post("/known-issues/{issue_id}/unfollow", name="known_issue_unfollow")
def unfollow(request: Request, db: SessionDep, user: CurrentUser, issue_id: int) -> Response:
    issue = service.access_issue(db, issue_id)
    service.unfollow(db, user, issue)
    db.commit()
    return _follow_response(
        request, db, issue, following=False, message=_("You no longer follow this known issue.")
    )


# --- the agents' pages ------------------------------------------------------------------------


def _agent_list(
    request: Request,
    db: Session,
    brand: Brand,
    *,
    form: IssueForm | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "crowdservice/known_issues_agent.html",
        {
            "brand": brand,
            "rows": views.agent_rows(db, brand),
            "brand_forums": views.brand_forums(db, brand),
            "form": form or IssueForm(),
            "errors": errors or {},
            "statuses": list(KnownIssueStatus),
        },
        status_code=422 if errors else 200,
    )


def _issue_form(
    title: str, summary: str, status_value: str, match_terms: str, forum_ids: list[str], tags: str
) -> IssueForm:
    return IssueForm(
        title=title[:1000],
        summary=summary[:50_000],
        status=status_value[:40],
        match_terms=[match_terms[:5000]],
        forum_ids=forum_ids[:200],
        tags=[tags[:2000]],
    )


@router.get(
    "/b/{brand_slug}/agent/known-issues", response_class=HTMLResponse, name="known_issues_agent"
)
def agent_list(request: Request, db: SessionDep, user: Agent, brand_slug: str) -> Response:
    return _agent_list(request, db, community_service.get_brand(db, brand_slug))


@router.post("/b/{brand_slug}/agent/known-issues", name="known_issue_publish")
def publish(
    request: Request,
    db: SessionDep,
    user: Agent,
    brand_slug: str,
    title: FormText = "",
    summary: FormText = "",
    status_value: Annotated[str, Form(alias="status")] = "investigating",
    match_terms: FormText = "",
    forum_ids: FormList = [],  # noqa: B006 - FastAPI's form lists
    tags: FormText = "",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    form = _issue_form(title, summary, status_value, match_terms, forum_ids, tags)
    try:
        issue = service.publish(db, user, brand, form)
    except FormErrors as exc:
        db.rollback()
        return _agent_list(request, db, brand, form=form, errors=exc.errors)
    db.commit()
    forget_banners(request)
    return flash_redirect(
        request, f"/agent/known-issues/{issue.id}", _("The known issue is published.")
    )


def _agent_page(
    request: Request,
    db: Session,
    issue: KnownIssue,
    *,
    form: IssueForm | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    brand = community_service.get_brand_by_id(db, issue.brand_id)
    current = form or IssueForm(
        title=issue.title,
        summary=issue.summary,
        status=issue.status.value,
        match_terms=["\n".join(issue.match_terms)],
        forum_ids=[str(forum_id) for forum_id in issue.forum_ids],
        tags=[", ".join(issue.tags)],
    )
    return render(
        request,
        "crowdservice/known_issue_agent.html",
        {
            "brand": brand,
            "issue": issue,
            "threads": views.linked_threads(db, issue),
            "brand_forums": views.brand_forums(db, brand),
            "form": current,
            "errors": errors or {},
            "statuses": list(KnownIssueStatus),
        },
        status_code=422 if errors else 200,
    )


@router.get("/agent/known-issues/{issue_id}", response_class=HTMLResponse, name="known_issue_agent")
def agent_page(request: Request, db: SessionDep, user: Agent, issue_id: int) -> Response:
    return _agent_page(request, db, service.access_managed_issue(db, user, issue_id))


@router.post("/agent/known-issues/{issue_id}/edit", name="known_issue_edit")
def edit(
    request: Request,
    db: SessionDep,
    user: Agent,
    issue_id: int,
    title: FormText = "",
    summary: FormText = "",
    match_terms: FormText = "",
    forum_ids: FormList = [],  # noqa: B006 - FastAPI's form lists
    tags: FormText = "",
) -> Response:
    issue = service.access_issue(db, issue_id)
    form = _issue_form(title, summary, issue.status.value, match_terms, forum_ids, tags)
    try:
        service.edit(db, user, issue, form)
    except FormErrors as exc:
        db.rollback()
        return _agent_page(
            request, db, service.access_issue(db, issue_id), form=form, errors=exc.errors
        )
    db.commit()
    forget_banners(request)
    return flash_redirect(request, f"/agent/known-issues/{issue.id}", _("Saved."))


@router.post("/agent/known-issues/{issue_id}/update", name="known_issue_update")
def post_update(
    request: Request,
    db: SessionDep,
    user: Agent,
    issue_id: int,
    status_value: Annotated[str, Form(alias="status")] = "",
    body: FormText = "",
) -> Response:
    issue = service.access_issue(db, issue_id)
    here = f"/agent/known-issues/{issue.id}"
    try:
        service.post_update(db, user, issue, status_value[:40], body[:20_000])
    except FormErrors as exc:
        db.rollback()
        return _agent_page(request, db, service.access_issue(db, issue_id), errors=exc.errors)
    except Conflict as exc:
        db.rollback()
        return flash_redirect(request, here, str(exc), category="error")
    db.commit()
    forget_banners(request)
    return flash_redirect(request, here, _("The update is posted."))


@router.post("/agent/known-issues/{issue_id}/{action}", name="known_issue_action")
def issue_action(
    request: Request,
    db: SessionDep,
    user: Agent,
    issue_id: int,
    action: Literal["close", "reopen", "article"],
) -> Response:
    issue = service.access_issue(db, issue_id)
    here = f"/agent/known-issues/{issue.id}"
    try:
        if action == "article":
            made = article.to_article(db, user, issue)
            db.commit()
            return RedirectResponse(f"/kb/articles/{made.id}/edit", status_code=303)
        if action == "close":
            service.close(db, user, issue)
            message = _("The known issue is closed: its banner is gone.")
        else:
            service.reopen(db, user, issue)
            message = _("The known issue is open again.")
    except Conflict as exc:
        db.rollback()
        return flash_redirect(request, here, str(exc), category="error")
    db.commit()
    forget_banners(request)
    return flash_redirect(request, here, message)


# --- JSON API ---------------------------------------------------------------------------------


def _out(user: Any, issue: KnownIssue) -> KnownIssueOut:
    if policy.can_announce(user, issue.brand_id):
        return KnownIssueStaffOut.model_validate(issue)
    return KnownIssueOut.model_validate(issue)


@api.get("/brands/{brand_slug}/known-issues", response_model=list[KnownIssueOut])
def api_list(
    db: SessionDep, user: OptionalUser, brand_slug: str, state: Literal["open", "all"] = "open"
) -> list[KnownIssueOut]:
    brand = community_service.get_brand(db, brand_slug)
    include_closed = state == "all" and policy.can_announce(user, brand.id)
    issues = views.brand_issues(db, brand, include_closed=include_closed, with_updates=True)
    return [_out(user, issue) for issue in issues]


@api.get("/known-issues/{issue_id}", response_model=KnownIssueStaffOut | KnownIssueOut)
def api_get(db: SessionDep, user: OptionalUser, issue_id: int) -> KnownIssueOut:
    return _out(user, service.access_issue(db, issue_id))


@api.post(
    "/brands/{brand_slug}/known-issues",
    response_model=KnownIssueStaffOut,
    status_code=status.HTTP_201_CREATED,
)
def api_create(
    request: Request, db: SessionDep, user: Agent, brand_slug: str, body: KnownIssueIn
) -> KnownIssueOut:
    brand = community_service.get_brand(db, brand_slug)
    form = IssueForm(
        title=body.title,
        summary=body.summary,
        status=body.status,
        match_terms=body.match_terms,
        forum_ids=[str(forum_id) for forum_id in body.forum_ids],
        tags=body.tags,
    )
    issue = service.publish(db, user, brand, form)
    db.commit()
    forget_banners(request)
    return _out(user, service.access_issue(db, issue.id))


@api.post("/known-issues/{issue_id}/updates", response_model=KnownIssueStaffOut)
def api_update(
    request: Request, db: SessionDep, user: Agent, issue_id: int, body: KnownIssueUpdateIn
) -> KnownIssueOut:
    issue = service.access_issue(db, issue_id)
    service.post_update(db, user, issue, body.status, body.body)
    db.commit()
    forget_banners(request)
    return _out(user, service.access_issue(db, issue_id))


@api.post("/known-issues/{issue_id}/close", response_model=KnownIssueStaffOut)
def api_close(request: Request, db: SessionDep, user: Agent, issue_id: int) -> KnownIssueOut:
    issue = service.access_issue(db, issue_id)
    service.close(db, user, issue)
    db.commit()
    forget_banners(request)
    return _out(user, service.access_issue(db, issue_id))
