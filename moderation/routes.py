"""Moderators' pages: the dashboard and queues (keyboard-driven, htmx), thread and post
actions, people, the audit log. Members' side: flagging posts, reporting accounts, the
outcome of their flags, the code of conduct."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from community.core import policy
from community.core import service as community_service
from community.core.auth import CurrentUser, Moderator, client_ip, require_staff_second_factor
from community.core.db import SessionDep
from community.core.errors import FormErrors, NotFound, PermissionDenied
from community.core.forms import record_id, some_record_ids, whole_number
from community.core.i18n import gettext as _
from community.core.labels import queue_label
from community.core.markdown import render_markdown
from community.core.models import Brand, Thread, User, Visibility
from community.core.ratelimit import limited
from community.core.staff import home_brand
from community.core.web import flash_redirect, is_htmx, render, safe_next
from community.threads import access_post, access_thread
from kb import duplicate_review
from moderation import accounts, actions, audit_view, decisions, queue
from moderation.models import FlagReason, ItemStatus, Queue

router = APIRouter(include_in_schema=False)
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
AUDIT_PAGE = 50


def _back(request: Request, default: str) -> str:
    referer = request.headers.get("referer", "")
    path = referer.split(request.headers.get("host", ""), 1)[-1] if referer else ""
    return safe_next(path, default)


# --- queues ----------------------------------------------------------------------------------


@router.get("/mod", name="mod_default")
def mod_default(request: Request, db: SessionDep, user: Moderator) -> Response:
    brand = home_brand(
        db, user, community_service.default_brand(db, request.app.state.settings.default_brand)
    )
    if brand is None:
        raise NotFound()
    return RedirectResponse(f"/b/{brand.slug}/mod", status_code=303)


@router.get("/b/{brand_slug}/mod", response_class=HTMLResponse, name="mod_dashboard")
def dashboard(request: Request, db: SessionDep, user: Moderator, brand_slug: str) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    return render(
        request,
        "moderation/dashboard.html",
        {
            "brand": brand,
            "counts": queue.counts(db, brand.id),
            "queues": list(Queue),
            "duplicate_count": duplicate_review.count_open(db, brand.id),
        },
    )


@router.get("/b/{brand_slug}/mod/{queue_name}", response_class=HTMLResponse, name="mod_queue")
def queue_page(
    request: Request, db: SessionDep, user: Moderator, brand_slug: str, queue_name: str
) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    if queue_name not in Queue._value2member_map_:
        raise NotFound()
    chosen = Queue(queue_name)
    items = queue.open_items(db, brand.id, chosen)
    histories = queue.author_histories(db, [item.user for item in items if item.user is not None])
    return render(
        request,
        "moderation/queue.html",
        {
            "brand": brand,
            "queue": chosen,
            "items": items,
            "histories": histories,
            "counts": queue.counts(db, brand.id),
            "duplicate_count": duplicate_review.count_open(db, brand.id),
            "decisions": decisions.decisions_for(chosen),
            "choices": decisions.CHOICES[chosen],
        },
    )


@router.post("/mod/items/{item_id}/{decision}", response_class=HTMLResponse, name="mod_resolve")
def resolve_item(
    request: Request,
    db: SessionDep,
    user: Moderator,
    item_id: int,
    decision: str,
    reason: FormText = "",
    confirm: FormText = "",
) -> Response:
    if decision not in decisions.Decision._value2member_map_:
        raise NotFound()
    item = queue.access_item(db, user, item_id)
    brand = db.get(Brand, item.brand_id)
    chosen = decisions.Decision(decision)
    if (
        item.status == ItemStatus.OPEN
        and decisions.needs_confirmation(item.queue, chosen)
        and confirm != "1"
    ):
        # One click must not remove published content or suspend someone: say what will
        # happen and ask. htmx asks in the browser (hx-confirm) and sends confirm=1; a plain
        # form post, without JavaScript, lands here and gets the question as a page.
        return render(
            request,
            "moderation/confirm.html",
            {"item": item, "decision": chosen, "reason": reason, "back": _back(request, "/mod")},
            block="item",
        )
    decisions.resolve(
        db, user, item, chosen, reason=reason.strip()[:300] or None, ip=client_ip(request)
    )
    db.commit()
    if is_htmx(request) and brand is not None:
        # The note replaces the item; the heading's count and the tabs update out of band.
        return render(
            request,
            "moderation/_handled.html",
            {
                "item": item,
                "brand": brand,
                "queue": item.queue,
                "counts": queue.counts(db, brand.id),
                "duplicate_count": duplicate_review.count_open(db, brand.id),
            },
        )
    return flash_redirect(
        request,
        f"/b/{brand.slug if brand else ''}/mod/{item.queue.value}",
        _("Done: %(what)s.")
        % {"what": queue_label("resolution", item.queue.value, item.resolution or "")},
    )


@router.post("/mod/items/bulk", name="mod_bulk")
def resolve_bulk(
    request: Request,
    db: SessionDep,
    user: Moderator,
    decision: FormText = "",
    items: FormList = [],  # noqa: B006 - FastAPI reads form lists this way
    reason: FormText = "",
    back: FormText = "/mod",
    confirm: FormText = "",
) -> Response:
    if decision not in decisions.Decision._value2member_map_:
        raise FormErrors({"decision": _("Choose one of the offered options.")})
    ids = some_record_ids(items)
    chosen = decisions.Decision(decision)
    waiting = queue.open_items_by_id(db, user, ids)
    asks = [item for item in waiting if decisions.needs_confirmation(item.queue, chosen)]
    if asks and confirm != "1":
        return render(
            request,
            "moderation/confirm_bulk.html",
            {
                "items": waiting,
                "decision": chosen,
                "queue_name": asks[0].queue.value,
                "reason": reason,
                "back": back,
            },
        )
    done, skipped = decisions.resolve_many(
        db, user, ids, decisions.Decision(decision), reason=reason.strip()[:300] or None,
        ip=client_ip(request),
    )  # fmt: skip
    db.commit()
    message = _("%(done)d handled.") % {"done": done}
    if skipped:
        message += " " + " ".join(skipped[:3])
    return flash_redirect(request, safe_next(back, "/mod"), message)


# --- posts and threads -------------------------------------------------------------------------


POST_STATES = {
    "hide": Visibility.HIDDEN,
    "unhide": Visibility.VISIBLE,
    "delete": Visibility.DELETED,
    "restore": Visibility.VISIBLE,
}


@router.post("/mod/posts/{post_id}/{action}", name="mod_post")
def post_action(
    request: Request,
    db: SessionDep,
    user: Moderator,
    post_id: int,
    action: str,
    reason: FormText = "",
) -> Response:
    if action not in POST_STATES:
        raise NotFound()
    post = access_post(db, user, post_id)
    actions.set_post_visibility(
        db, user, post, POST_STATES[action], reason=reason.strip()[:300] or None,
        ip=client_ip(request),
    )  # fmt: skip
    db.commit()
    return flash_redirect(request, f"/t/{post.thread_id}#post-{post.id}", _("Done."))


@router.post("/mod/threads/{thread_id}/{action}", name="mod_thread")
def thread_action(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    thread_id: int,
    action: str,
    reason: FormText = "",
    close_reason: FormText = "",
    duplicate_of: FormText = "",
    forum: FormText = "",
    target: FormText = "",
) -> Response:
    thread = access_thread(db, user, thread_id)
    require_staff_second_factor(request, db, user, brand_id=thread.brand_id)
    ip = client_ip(request)
    why = reason.strip()[:300] or None
    destination = f"/t/{thread.id}"
    if action == "move":  # trust level 3 members may recategorise too
        found = actions.forum_to_move_to(db, thread, forum)
        actions.move(db, user, thread, found, reason=why, ip=ip)
    elif action in ("lock", "unlock"):
        actions.set_locked(db, user, thread, action == "lock", reason=why, ip=ip)
    elif action == "close":
        if close_reason not in actions.CloseReason._value2member_map_:
            raise FormErrors({"close_reason": _("Choose one of the offered options.")})
        original = _thread_from(db, user, duplicate_of, field="duplicate_of")
        actions.close(
            db, user, thread, actions.CloseReason(close_reason), duplicate_of=original,
            reason=why, ip=ip,
        )  # fmt: skip
    elif action == "reopen":
        actions.reopen(db, user, thread, ip=ip)
    elif action == "merge":
        into = _thread_from(db, user, target, field="target")
        if into is None:
            raise FormErrors({"target": _("Give the thread to merge into.")})
        actions.merge(db, user, thread, into, reason=why, ip=ip)
        destination = f"/t/{into.id}"
    else:
        raise NotFound()
    db.commit()
    return flash_redirect(request, destination, _("Done."))


def _thread_from(db: SessionDep, user: User, reference: str, *, field: str) -> Thread | None:
    """A thread from "123", "/t/123" or a full link to it (None when left empty); anything
    else is a 422 for `field`."""
    number = re.split(r"[#?/]", reference.strip().rsplit("/t/", 1)[-1], maxsplit=1)[0]
    if not number:
        return None
    return access_thread(db, user, record_id(number, field=field))


# --- people ----------------------------------------------------------------------------------


@router.get("/mod/users/{username}", response_class=HTMLResponse, name="mod_user")
def user_page(request: Request, db: SessionDep, user: Moderator, username: str) -> Response:
    member = community_service.get_user_by_username(db, username)
    return render(
        request,
        "moderation/user.html",
        {
            "member": member,
            "stats": queue.author_history(db, member),
            "warnings": accounts.warnings_of(db, member),
            "history": audit_view.history_of(db, member),
        },
    )


@router.post("/mod/users/{username}/{action}", name="mod_user_action")
def user_action(
    request: Request,
    db: SessionDep,
    user: Moderator,
    username: str,
    action: str,
    message: FormText = "",
    days: FormText = "",
    reason: FormText = "",
    trust_level: FormText = "",
    keep_posts: FormText = "",
) -> Response:
    member = community_service.get_user_by_username(db, username)
    ip = client_ip(request)
    if action == "warn":
        accounts.warn(db, user, member, message, ip=ip)
    elif action == "suspend":
        accounts.suspend(
            db, user, member, days=_days(days), reason=reason.strip(), hide_posts=not keep_posts,
            ip=ip,
        )  # fmt: skip
    elif action == "unsuspend":
        accounts.unsuspend(db, user, member, ip=ip)
    elif action == "silence":
        accounts.silence(db, user, member, days=_days(days), reason=reason.strip(), ip=ip)
    elif action == "unsilence":
        accounts.unsilence(db, user, member, ip=ip)
    elif action == "trust":
        level = whole_number(
            trust_level, field="trust_level", low=0, high=4,
            message=_("Trust levels go from 0 to 4."),
        )  # fmt: skip
        accounts.set_trust_level(db, user, member, level, reason=reason or None, ip=ip)
    else:
        raise NotFound()
    db.commit()
    return flash_redirect(request, f"/mod/users/{member.username}", _("Done."))


def _days(raw: str) -> int:
    return whole_number(raw, field="days", low=1, high=accounts.MAX_SUSPENSION_DAYS)


# --- the audit log -----------------------------------------------------------------------------


@router.get("/mod/audit", response_class=HTMLResponse, name="mod_audit")
def audit_log(
    request: Request,
    db: SessionDep,
    user: Moderator,
    action: str = "",
    actor: str = "",
    target_type: str = "",
    target_id: str = "",
    since: str = "",
    before: int | None = None,
) -> Response:
    wanted = audit_view.AuditFilter.from_query(
        action=action, target_type=target_type, target_id=target_id, actor=actor, since=since,
        before=before, limit=AUDIT_PAGE + 1,  # one more than shown: is there a next page?
    )  # fmt: skip
    if policy.staffed_brands(user) is not None:
        # The log spans every brand (and names what was hidden where): site-wide staff only.
        raise PermissionDenied(_("The audit log is for site-wide moderators and admins."))
    rows = audit_view.audit_entries(db, wanted)
    shown = rows[:AUDIT_PAGE]
    people = audit_view.people_named(db, shown)
    return render(
        request,
        "moderation/audit.html",
        {
            "entries": [audit_view.describe(row, people) for row in shown],
            "actors": people,
            "target_types": audit_view.TARGETS,
            "more": rows[AUDIT_PAGE].id + 1 if len(rows) > AUDIT_PAGE else None,
            "filters": {
                "action": action,
                "actor": actor,
                "target_type": target_type,
                "target_id": target_id,
                "since": since,
            },
        },
    )


# --- members: flags, reports, the code of conduct ------------------------------------------------


@router.get("/posts/{post_id}/flag", response_class=HTMLResponse, name="flag_form")
def flag_form(request: Request, db: SessionDep, user: CurrentUser, post_id: int) -> Response:
    """The flag form: into the post's flag menu (htmx), or a page of its own without JavaScript."""
    post = access_post(db, user, post_id)
    if post.author_id == user.id or post.visibility != Visibility.VISIBLE:
        raise PermissionDenied(_("You cannot flag this post."))
    if is_htmx(request):
        return render(request, "moderation/_flag_form.html", {"post": post})
    thread = access_thread(db, user, post.thread_id)
    return render(request, "moderation/flag_post.html", {"post": post, "thread": thread})


@router.post(
    "/posts/{post_id}/flag",
    response_class=HTMLResponse,
    name="flag",
    dependencies=[limited("flag")],
)
def flag_post(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    post_id: int,
    reason: FormText = "",
    note: FormText = "",
    duplicate_of: FormText = "",
) -> Response:
    post = access_post(db, user, post_id)
    if reason not in FlagReason._value2member_map_:
        raise FormErrors({"reason": _("Choose one of the offered options.")})
    original = None
    if reason == FlagReason.DUPLICATE.value:
        try:
            original = _thread_from(db, user, duplicate_of or note, field="note")
        except (NotFound, FormErrors):
            original = None
        if original is None:
            raise FormErrors({"note": _("Give the link of the original thread.")})
    queue.flag(db, user, post, FlagReason(reason), note=note, duplicate_of=original)
    db.commit()
    if is_htmx(request):
        return render(request, "moderation/_flagged.html", {"post": post})
    return flash_redirect(
        request, f"/t/{post.thread_id}#post-{post.id}", _("Thanks: a moderator will look at it.")
    )


@router.post("/u/{username}/report", name="report_user", dependencies=[limited("flag")])
def report_user(
    request: Request, db: SessionDep, user: CurrentUser, username: str, note: FormText = ""
) -> Response:
    member = community_service.get_user_by_username(db, username)
    accounts.report_user(db, user, member, note)
    db.commit()
    return flash_redirect(
        request, f"/u/{member.username}", _("Thanks: a moderator will look at this account.")
    )


@router.get("/account/flags", response_class=HTMLResponse, name="my_flags")
def my_flags(request: Request, db: SessionDep, user: CurrentUser) -> Response:
    return render(request, "moderation/my_flags.html", {"flags": queue.flags_by(db, user)})


@router.get("/b/{brand_slug}/conduct", response_class=HTMLResponse, name="conduct")
def code_of_conduct(request: Request, db: SessionDep, brand_slug: str) -> Response:
    brand = community_service.get_brand(db, brand_slug)
    return render(
        request,
        "moderation/conduct.html",
        {"brand": brand, "html": render_markdown(brand.code_of_conduct or "")},
    )
