"""Saved replies: the admins' pages (list with usage, new, edit, archive and bring back), the
agent workspace's answer-box search and insert (htmx fragments, or the whole item page for a
browser without it), and the JSON API (agents search, admins create and change)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from community.api import ERRORS
from community.core import service as community_service
from community.core.auth import Admin, Agent, BrandAdmin, client_ip
from community.core.db import SessionDep
from community.core.errors import FormErrors
from community.core.i18n import SUPPORTED_LOCALES, language_name
from community.core.i18n import gettext as _
from community.core.models import Brand, User
from community.core.web import flash_redirect, is_htmx, render
from crowdservice import agent
from crowdservice.agent.actions import public_locale
from crowdservice.models import Escalation
from crowdservice.routes_agent import render_item
from crowdservice.saved_replies import service, use
from crowdservice.saved_replies.models import SavedReply, SuggestedAction
from crowdservice.saved_replies.placeholders import PLACEHOLDERS
from crowdservice.saved_replies.schemas import SavedReplyIn, SavedReplyOut, SavedReplyPatch

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["support"], responses=ERRORS)  # type: ignore[arg-type]
FormText = Annotated[str, Form()]


# --- admin pages -----------------------------------------------------------------------------


def _typed(reply: SavedReply | None = None) -> dict[str, str]:
    """The form's values: a reply's, or a new reply's defaults."""
    if reply is None:
        return {"title": "", "locale": "en", "body": "", "action": "answer", "kb_article": ""}
    return {
        "title": reply.title,
        "locale": reply.locale,
        "body": reply.body,
        "action": reply.action.value,
        "kb_article": str(reply.kb_article_id or ""),
    }


def _choices() -> dict[str, Any]:
    return {
        "locales": [(code, language_name(code)) for code in SUPPORTED_LOCALES],
        "actions": [action.value for action in SuggestedAction],
        "placeholders": PLACEHOLDERS,
    }


def _list_page(
    request: Request,
    db: Session,
    user: User,
    brand: Brand,
    *,
    archived: bool = False,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    replies = service.brand_replies(db, user, brand, archived=archived)
    return render(
        request,
        "crowdservice/saved_replies.html",
        {
            "brand": brand,
            "replies": replies,
            "archived": archived,
            "errors": errors or {},
            "form": typed or _typed(),
        }
        | _choices(),
        status_code=status_code,
    )


def _edit_page(
    request: Request,
    reply: SavedReply,
    brand: Brand,
    *,
    errors: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "crowdservice/saved_reply_edit.html",
        {"brand": brand, "reply": reply, "errors": errors or {}, "form": typed or _typed(reply)}
        | _choices(),
        status_code=status_code,
    )


def _fields(
    title: str, locale: str, body: str, action: str, kb_article: str
) -> service.ReplyFields:
    return service.ReplyFields(
        title=title[:1000], locale=locale[:8], body=body[:60_000], action=action[:20],
        kb_article_id=service.parse_article_ref(kb_article),
    )  # fmt: skip


def _sent(title: str, locale: str, body: str, action: str, kb_article: str) -> dict[str, str]:
    return {
        "title": title[:1000], "locale": locale[:8], "body": body[:60_000], "action": action[:20],
        "kb_article": kb_article[:500],
    }  # fmt: skip


@router.get(
    "/admin/brands/{brand_slug}/saved-replies",
    response_class=HTMLResponse,
    name="admin_saved_replies",
)
def list_page(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str, archived: str = ""
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    return _list_page(request, db, user, brand, archived=archived == "1")


@router.post(
    "/admin/brands/{brand_slug}/saved-replies",
    response_class=HTMLResponse,
    name="admin_saved_reply_create",
)
def create_reply(
    request: Request,
    db: SessionDep,
    user: BrandAdmin,
    brand_slug: str,
    title: FormText = "",
    locale: FormText = "",
    body: FormText = "",
    action: FormText = "",
    kb_article: FormText = "",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    try:
        fields = _fields(title, locale, body, action, kb_article)
        service.create_reply(db, user, brand, fields, ip=client_ip(request))
    except FormErrors as exc:
        db.rollback()
        typed = _sent(title, locale, body, action, kb_article)
        return _list_page(request, db, user, brand, errors=exc.errors, typed=typed, status_code=422)
    db.commit()
    return flash_redirect(
        request, f"/admin/brands/{brand.slug}/saved-replies", _("Saved reply added.")
    )


@router.get(
    "/admin/brands/{brand_slug}/saved-replies/{reply_id}",
    response_class=HTMLResponse,
    name="admin_saved_reply",
)
def edit_page(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str, reply_id: int
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    reply = service.access_managed_reply(db, user, reply_id, brand)
    return _edit_page(request, reply, brand)


@router.post(
    "/admin/brands/{brand_slug}/saved-replies/{reply_id}",
    response_class=HTMLResponse,
    name="admin_saved_reply_update",
)
def update_reply(
    request: Request,
    db: SessionDep,
    user: BrandAdmin,
    brand_slug: str,
    reply_id: int,
    title: FormText = "",
    locale: FormText = "",
    body: FormText = "",
    action: FormText = "",
    kb_article: FormText = "",
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    reply = service.access_managed_reply(db, user, reply_id, brand)
    try:
        fields = _fields(title, locale, body, action, kb_article)
        service.update_reply(db, user, reply, fields, ip=client_ip(request))
    except FormErrors as exc:
        db.rollback()
        reply = service.access_managed_reply(db, user, reply_id, brand)
        typed = _sent(title, locale, body, action, kb_article)
        return _edit_page(request, reply, brand, errors=exc.errors, typed=typed, status_code=422)
    db.commit()
    return flash_redirect(
        request, f"/admin/brands/{brand.slug}/saved-replies", _("Saved reply changed.")
    )


def _set_archived(
    request: Request, db: Session, user: User, brand_slug: str, reply_id: int, archived: bool
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    reply = service.access_managed_reply(db, user, reply_id, brand)
    service.set_archived(db, user, reply, archived, ip=client_ip(request))
    db.commit()
    message = _("Saved reply archived.") if archived else _("Saved reply restored.")
    back = f"/admin/brands/{brand.slug}/saved-replies" + ("" if archived else "?archived=1")
    return flash_redirect(request, back, message)


@router.post(
    "/admin/brands/{brand_slug}/saved-replies/{reply_id}/archive",
    name="admin_saved_reply_archive",
)
def archive_reply(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str, reply_id: int
) -> Response:
    return _set_archived(request, db, user, brand_slug, reply_id, True)


@router.post(
    "/admin/brands/{brand_slug}/saved-replies/{reply_id}/unarchive",
    name="admin_saved_reply_unarchive",
)
def unarchive_reply(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str, reply_id: int
) -> Response:
    return _set_archived(request, db, user, brand_slug, reply_id, False)


# --- the agent workspace's answer box --------------------------------------------------------


@router.get(
    "/agent/escalations/{escalation_id}/saved-replies",
    response_class=HTMLResponse,
    name="agent_saved_replies",
)
def answer_box_search(
    request: Request, db: SessionDep, user: Agent, escalation_id: int, q: str = ""
) -> Response:
    escalation = agent.access_escalation(db, user, escalation_id)
    thread = escalation.thread
    matches = use.search(db, user, thread.forum.brand, q, public_locale(thread))
    extra = {"saved_matches": matches, "saved_query": q[: use.MAX_QUERY]}
    if not is_htmx(request):
        return render_item(request, db, user, escalation, **extra)
    return render(
        request,
        "crowdservice/_saved_reply_matches.html",
        {"escalation": escalation, **extra},
        block="saved_matches",
    )


def _similar_kb_path(
    request: Request, db: Session, escalation: Escalation, reply: SavedReply
) -> str | None:
    """The KB entry (article or community solution) most like the thread, asked of the search
    engine only when the reply has a {kb_link} that its own article does not fill."""
    if "{kb_link}" not in reply.body or use.pinned_article_path(db, reply) is not None:
        return None
    similar = agent.similar_entries(request.app.state.search, db, escalation)
    in_kb = [entry["url"] for entry in similar if entry["kind"] in ("article", "solution")]
    return str(in_kb[0]) if in_kb else None


@router.get(
    "/agent/escalations/{escalation_id}/saved-replies/{reply_id}",
    response_class=HTMLResponse,
    name="agent_saved_reply_insert",
)
def answer_box_insert(
    request: Request, db: SessionDep, user: Agent, escalation_id: int, reply_id: int
) -> Response:
    """The answer box filled with the reply (nothing is counted until the answer is sent)."""
    escalation = agent.access_escalation(db, user, escalation_id)
    reply = use.usable_reply(db, user, escalation.brand_id, reply_id)
    inserted = use.fill_reply(
        db,
        user,
        escalation.thread,
        reply,
        similar_path=_similar_kb_path(request, db, escalation, reply),
    )
    if not is_htmx(request):
        return render_item(request, db, user, escalation, inserted=inserted)
    return render(
        request,
        "crowdservice/_answer_box.html",
        {"escalation": escalation, "inserted": inserted},
        block="answer_box",
    )


# --- JSON API --------------------------------------------------------------------------------


@api.get("/brands/{brand_slug}/saved-replies", response_model=list[SavedReplyOut])
def api_search(
    db: SessionDep, user: Agent, brand_slug: str, q: str = "", locale: str = "en"
) -> list[SavedReply]:
    """The brand's current saved replies matching `q` (title or body, any case or accent):
    those in `locale` first, then the most used. Agents and admins only."""
    brand = community_service.get_brand(db, brand_slug)
    return use.search(db, user, brand, q, locale[:8])


@api.post(
    "/brands/{brand_slug}/saved-replies",
    response_model=SavedReplyOut,
    status_code=status.HTTP_201_CREATED,
)
def api_create(
    request: Request, db: SessionDep, user: BrandAdmin, brand_slug: str, body: SavedReplyIn
) -> SavedReply:
    """Add a saved reply (admins). 422 names the field that is wrong."""
    brand = community_service.get_brand(db, brand_slug)
    fields = service.ReplyFields(**body.model_dump())
    reply = service.create_reply(db, user, brand, fields, ip=client_ip(request))
    db.commit()
    return reply


def _patched(reply: SavedReply, sent: dict[str, Any]) -> service.ReplyFields:
    """The reply's fields with the sent ones over them (a null article unpins it; other nulls
    leave the field as it is)."""
    current = service.ReplyFields(
        title=reply.title, locale=reply.locale, body=reply.body, action=reply.action.value,
        kb_article_id=reply.kb_article_id,
    )  # fmt: skip
    changes = {key: value for key, value in sent.items() if value is not None}
    if "kb_article_id" in sent:
        changes["kb_article_id"] = sent["kb_article_id"]
    return replace(current, **changes)


@api.patch("/saved-replies/{reply_id}", response_model=SavedReplyOut)
def api_update(
    request: Request, db: SessionDep, user: Admin, reply_id: int, body: SavedReplyPatch
) -> SavedReply:
    """Change a saved reply's fields, or archive it (`archived`: true) or bring it back."""
    reply = service.access_managed_reply(db, user, reply_id)
    sent = body.model_dump(exclude_unset=True)
    archived = sent.pop("archived", None)
    if sent:
        fields = _patched(reply, sent)
        service.update_reply(db, user, reply, fields, ip=client_ip(request))
    if archived is not None:
        service.set_archived(db, user, reply, archived, ip=client_ip(request))
    db.commit()
    return reply
