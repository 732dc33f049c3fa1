"""Pages and htmx fragments for forums, threads and posts. Each action answers an htmx request
with the fragment it changed and a plain form post with a redirect back to the thread."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from community import revisions, thread_editing, thread_reading, threads, voting
from community.core import policy, service
from community.core.auth import ANONYMOUS, CurrentUser, OptionalUser, client_ip
from community.core.clock import utcnow
from community.core.db import SessionDep
from community.core.errors import FormErrors, NotFound, PermissionDenied, ThreadMerged
from community.core.forms import parse_form
from community.core.fragment_cache import fragments_enabled, shared_fragment
from community.core.i18n import active_locale
from community.core.i18n import gettext as _
from community.core.markdown import render_markdown
from community.core.member_pages import rendered_for_class
from community.core.models import Forum, Post, Thread, ThreadKind, ThreadStatus, User, Visibility
from community.core.page_cache import replay_on_hit
from community.core.policy import ThreadPermissions, is_staff
from community.core.ratelimit import limited
from community.core.schemas import AnswerIn, AskIn, EditIn
from community.core.viewcount import viewer_key
from community.core.web import flash_redirect, is_htmx, page_viewer_key, render, render_fragment
from community.diffs import revision_diffs
from community.members import follows
from community.thread_view import render_thread
from kb import ask_sessions
from kb import service as kb_service

# A thread's pages and writes (/t/..., /posts/..., /preview): the app matches these first, as
# most requests are theirs. The forum pages (/b/{brand}/{forum}, asking) come after the KB's,
# moderation's and support's /b/{brand}/... pages, which must win over a forum slug.
router = APIRouter(include_in_schema=False)
forum_router = APIRouter(include_in_schema=False)

FormText = Annotated[str, Form()]


def _thread_url(thread_id: int, post_id: int | None = None) -> str:
    return f"/t/{thread_id}" + (f"#post-{post_id}" if post_id else "")


# --- forums ----------------------------------------------------------------------------------


def _list_key(forum: Forum, query: thread_reading.ThreadQuery) -> list[str | int | None]:
    return [
        forum.id,
        query.sort,
        query.tag,
        query.status.value if query.status else None,
        query.kind.value if query.kind else None,
        query.cursor,
    ]


@forum_router.get("/b/{brand_slug}/{forum_slug}", response_class=HTMLResponse, name="forum")
def forum_page(
    request: Request,
    db: SessionDep,
    brand_slug: str,
    forum_slug: str,
    sort: str = "activity",
    tag: str = "",
    status: str = "",
    kind: str = "",
    cursor: str = "",
    viewer: OptionalUser = None,
) -> Response:
    forum = thread_reading.forum_by_slugs(db, brand_slug, forum_slug, viewer)
    brand = forum.brand
    query = thread_reading.ThreadQuery(
        include_removed=is_staff(viewer, forum.brand_id),
        sort=sort if sort in thread_reading.SORTS else "activity",
        tag=tag[:30] or None,
        status=ThreadStatus(status) if status in ThreadStatus._value2member_map_ else None,
        kind=ThreadKind(kind) if kind in ThreadKind._value2member_map_ else None,
        cursor=cursor[:400] or None,
    )
    listing: thread_reading.ThreadListing | None = None
    thread_list_html = None
    if query.include_removed:  # staff see removed threads too: rendered for them alone
        listing = thread_reading.list_threads(db, forum, query)
    else:

        def render_list() -> Markup:
            shown = thread_reading.list_threads(db, forum, query)
            context = {"listing": shown, "query": query, "thread_list_html": None}
            return render_fragment(request, "community/forum.html", "thread_list", context)

        thread_list_html = shared_fragment(
            request, "thread_list", _list_key(forum, query), render_list
        )
    return render(
        request,
        "community/forum.html",
        {
            "brand": brand,
            "forum": forum,
            "listing": listing,
            "query": query,
            "thread_list_html": thread_list_html,
            "sorts": thread_reading.SORTS,
            "kinds": threads.ASKABLE_KINDS,
            "statuses": [ThreadStatus.OPEN, ThreadStatus.ANSWERED, ThreadStatus.SOLVED],
            "tags": thread_reading.popular_tags(db, brand.id),
            # The follow button (community.members): no query for visitors.
            "follow_target": "forum",
            "follow_id": forum.id,
            "following": follows.follows_forum(db, viewer.id if viewer else None, forum.id),
        },
        block="thread_list",
    )


@forum_router.get("/b/{brand_slug}/ask/new", response_class=HTMLResponse, name="ask")
def ask_form(
    request: Request, db: SessionDep, user: CurrentUser, brand_slug: str, forum: str = ""
) -> Response:
    brand = service.get_brand(db, brand_slug)
    forums = service.readable_forums(db, brand, user)
    if forum and not any(
        choice.slug == forum
        for choice in service.readable_forums(db, brand, user, include_archived=True)
    ):
        # Asking in a forum one may not read (or that is not there): no such page.
        raise NotFound()
    return render(
        request,
        "community/ask.html",
        {
            "brand": brand,
            "forums": forums,
            "kinds": threads.ASKABLE_KINDS,
            "form": {"forum": forum, "kind": "question"},
            "errors": {},
        },
    )


@forum_router.post(
    "/b/{brand_slug}/ask/new", response_class=HTMLResponse, dependencies=[limited("post")]
)
def ask_submit(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    brand_slug: str,
    forum: FormText = "",
    title: FormText = "",
    body: FormText = "",
    kind: FormText = "question",
    tags: FormText = "",
) -> Response:
    brand = service.get_brand(db, brand_slug)
    fields = {"forum": forum, "title": title, "body": body, "kind": kind, "tags": tags}
    try:
        data = parse_form(
            AskIn, {"title": title, "body": body, "kind": kind, "tags": threads.split_tags(tags)}
        )
        forums = service.readable_forums(db, brand, user)
        target = next((f for f in forums if f.slug == forum), None)
        if target is None:
            _clean, errors = threads.check_question(data)
            raise FormErrors({"forum": _("Choose a forum.")} | errors)
        thread = threads.ask(db, user, target, data, locale=active_locale())
        # The outcome of the asker's ask-form session, for the deflection experiment.
        visitor = viewer_key(user_id=user.id, session_token=None, ip=None)
        ask_sessions.record_question(db, brand, visitor, thread, now=utcnow())
    except FormErrors as exc:
        db.rollback()
        return render(
            request,
            "community/ask.html",
            {
                "brand": brand,
                "forums": service.readable_forums(db, brand, user),
                "kinds": threads.ASKABLE_KINDS,
                "form": fields,
                "errors": exc.errors,
            },
            status_code=422,
        )
    db.commit()
    if thread.visibility == Visibility.PENDING:
        message = _(
            "Your question is waiting for a moderator: others will see it once it is approved. "
            "We will let you know."
        )
    else:
        message = _("Your question is posted.")
    return flash_redirect(request, _thread_url(thread.id), message)


# --- the thread page -------------------------------------------------------------------------


def count_thread_view(request: Request, thread_id: int) -> None:
    """Also the page cache's replay: a view served from the cache counts too, for whoever
    it was served to."""
    user_id = getattr(request.state, "viewer", ANONYMOUS).user_id
    key = page_viewer_key(request, user_id)
    if key is not None:
        request.app.state.view_counter.record(thread_id, key, user_id=user_id)


@router.get("/t/{thread_id}", response_class=HTMLResponse, name="thread")
def thread_page(
    request: Request, db: SessionDep, user: OptionalUser, thread_id: int, answers: str = "score"
) -> Response:
    # A plain member's cards may be shared (community.thread_view): their marks on the thread
    # come with it.
    shares = user is not None and fragments_enabled(request) and not is_htmx(request)
    marks = thread_reading.viewer_mark_columns(user) if user is not None and shares else ()
    columns = (*kb_service.THREAD_KB_COLUMNS, *marks)
    try:
        thread, row = threads.access_thread_with(db, user, thread_id, *columns)
    except ThreadMerged as merged:
        # Permanent: a merge is not undone, so old links and search engines should move on.
        # Anchors (#post-N) survive the redirect, and the posts kept their ids.
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(_thread_url(merged.target_id) + query, status_code=301)
    count_thread_view(request, thread.id)
    replay_on_hit(request, "thread_view", thread.id)
    kb_end = 1 + len(kb_service.THREAD_KB_COLUMNS)
    kb_status = kb_service.kb_status_of(row[1:kb_end])
    frame = None
    if user is not None and shares:
        viewer_marks = thread_reading.ViewerMarks(*row[kb_end:])
        frame = thread_reading.shared_frame(user, thread, viewer_marks)
        if policy.sees_members_view(user, None):
            # The whole page is kept for this member's class (community.core.member_pages):
            # every plain member's, or this voter's or poster's own.
            page_class = thread_reading.page_class(user, viewer_marks)
            rendered_for_class(request.scope["state"], page_class)
    return render_thread(
        request, db, user, thread, answer_sort=answers, block="answers", kb_status=kb_status,
        frame=frame,
    )  # fmt: skip


@router.post(
    "/t/{thread_id}/answers",
    response_class=HTMLResponse,
    name="answer",
    dependencies=[limited("post")],
)
def answer_submit(
    request: Request, db: SessionDep, user: CurrentUser, thread_id: int, body: FormText = ""
) -> Response:
    thread = threads.thread_to_answer(db, user, thread_id)
    try:
        post = threads.answer(db, user, thread, parse_form(AnswerIn, {"body": body}))
    except FormErrors as exc:
        db.rollback()
        thread = threads.access_thread(db, user, thread_id)
        return render_thread(
            request, db, user, thread, answer_form={"body": body}, errors=exc.errors,
            status_code=422,
        )  # fmt: skip
    db.commit()
    if post.visibility == Visibility.PENDING:
        message = _(
            "Your answer is waiting for a moderator: others will see it once it is approved. "
            "We will let you know."
        )
    else:
        message = _("Your answer is posted.")
    return flash_redirect(request, _thread_url(thread.id, post.id), message)


@router.post(
    "/posts/{post_id}/vote",
    response_class=HTMLResponse,
    name="vote",
    dependencies=[limited("vote")],
)
def vote(
    request: Request, db: SessionDep, user: CurrentUser, post_id: int, value: FormText = ""
) -> Response:
    number = {"1": 1, "-1": -1, "0": 0}.get(value)
    if number is None:
        raise FormErrors({"value": _("Choose one of the offered options.")})
    result = voting.cast_vote(db, user, post_id, number)
    db.commit()
    if is_htmx(request):
        thread = result.post.thread
        permissions = ThreadPermissions(user, thread)
        return render(
            request,
            "community/_vote.html",
            {"post": result.post, "my_vote": result.my_vote, "permissions": permissions},
        )
    return RedirectResponse(_thread_url(result.post.thread_id, post_id), status_code=303)


def _after_accept_change(request: Request, db: SessionDep, user: User, thread: Thread) -> Response:
    db.commit()
    if is_htmx(request):
        fresh = threads.access_thread(db, user, thread.id)
        return render_thread(request, db, user, fresh, block="answers", oob=True)
    return RedirectResponse(_thread_url(thread.id), status_code=303)


@router.post("/posts/{post_id}/accept", response_class=HTMLResponse, name="accept")
def accept(request: Request, db: SessionDep, user: CurrentUser, post_id: int) -> Response:
    thread = voting.accept(db, user, post_id)
    return _after_accept_change(request, db, user, thread)


@router.post("/t/{thread_id}/unaccept", response_class=HTMLResponse, name="unaccept")
def unaccept(request: Request, db: SessionDep, user: CurrentUser, thread_id: int) -> Response:
    thread = voting.unaccept(db, user, thread_id)
    return _after_accept_change(request, db, user, thread)


@router.post(
    "/t/{thread_id}/helpful",
    response_class=HTMLResponse,
    name="helpful",
    dependencies=[limited("vote")],
)
def helpful(
    request: Request, db: SessionDep, user: CurrentUser, thread_id: int, helpful: FormText = "1"
) -> Response:
    thread = voting.set_helpful(db, user, thread_id, helpful=helpful != "0")
    db.commit()
    if is_htmx(request):
        page = thread_reading.thread_page(db, user, thread)
        return render(request, "community/_helpful.html", {"page": page, "thread": thread})
    return RedirectResponse(_thread_url(thread_id), status_code=303)


@router.post("/t/{thread_id}/watch", response_class=HTMLResponse, name="watch")
def watch(
    request: Request, db: SessionDep, user: CurrentUser, thread_id: int, watch: FormText = "1"
) -> Response:
    thread = threads.access_thread(db, user, thread_id)
    if watch == "0":
        threads.unwatch(db, user, thread)
    else:
        threads.watch(db, user, thread)
    db.commit()
    if is_htmx(request):
        page = thread_reading.thread_page(db, user, thread)
        return render(request, "community/_watch.html", {"page": page, "thread": thread})
    return RedirectResponse(_thread_url(thread_id), status_code=303)


@router.post("/t/{thread_id}/tags", name="retag")
def retag(
    request: Request, db: SessionDep, user: CurrentUser, thread_id: int, tags: FormText = ""
) -> Response:
    thread = threads.access_thread(db, user, thread_id)
    thread_editing.retag(db, user, thread, threads.split_tags(tags[:400]))
    db.commit()
    return flash_redirect(request, _thread_url(thread_id), _("Tags saved."))


# --- editing, history, deleting --------------------------------------------------------------


def _edit_context(
    post: Post, form: dict[str, str], errors: dict[str, str], user: User
) -> dict[str, object]:
    return {
        "post": post,
        "thread": post.thread,
        "brand": post.thread.forum.brand,
        "kinds": threads.ASKABLE_KINDS,
        "form": form,
        "errors": errors,
        "can_redact": policy.can_redact(user, post.brand_id),
    }


@router.get("/posts/{post_id}/edit", response_class=HTMLResponse, name="edit_post")
def edit_form(request: Request, db: SessionDep, user: CurrentUser, post_id: int) -> Response:
    post = threads.access_post(db, user, post_id)
    if not ThreadPermissions(user, post.thread).can_edit(post):
        raise PermissionDenied(_("You can only edit your own posts."))
    thread = post.thread
    form = {
        "body": post.body_source,
        "title": thread.title,
        "tags": " ".join(tag.name for tag in thread.tags),
        "kind": thread.kind.value,
        "reason": "",
    }
    return render(request, "community/edit_post.html", _edit_context(post, form, {}, user))


@router.post("/posts/{post_id}/edit", response_class=HTMLResponse)
def edit_submit(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    post_id: int,
    body: FormText = "",
    title: FormText = "",
    tags: FormText = "",
    kind: FormText = "",
    reason: FormText = "",
    redact_earlier: FormText = "",
) -> Response:
    post = threads.access_post(db, user, post_id)
    form = {
        "body": body, "title": title, "tags": tags, "kind": kind, "reason": reason,
        "redact_earlier": redact_earlier,
    }  # fmt: skip
    fields: dict[str, object] = {
        "body": body, "reason": reason or None, "redact_earlier": redact_earlier == "1"
    }  # fmt: skip
    if post.is_question:
        fields |= {"title": title, "tags": threads.split_tags(tags), "kind": kind or None}
    try:
        thread_editing.edit_post(db, user, post, parse_form(EditIn, fields))
    except FormErrors as exc:
        db.rollback()
        post = threads.access_post(db, user, post_id)
        return render(
            request, "community/edit_post.html", _edit_context(post, form, exc.errors, user),
            status_code=422,
        )  # fmt: skip
    db.commit()
    return flash_redirect(request, _thread_url(post.thread_id, post.id), _("Your edit is saved."))


@router.get("/posts/{post_id}/revisions", response_class=HTMLResponse, name="revisions")
def revisions_page(request: Request, db: SessionDep, user: OptionalUser, post_id: int) -> Response:
    post = threads.access_post(db, user, post_id)
    history = revisions.history(db, user, post)
    return render(
        request,
        "community/revisions.html",
        {
            "post": post,
            "thread": post.thread,
            "entries": revision_diffs(history),
            "can_redact": policy.can_redact(user, post.brand_id),
            "latest": history[-1].number if history else 0,
        },
    )


@router.post("/posts/{post_id}/revisions/{number}/redact", name="redact_revision")
def redact_revision(
    request: Request,
    db: SessionDep,
    user: CurrentUser,
    post_id: int,
    number: int,
    reason: FormText = "",
) -> Response:
    post = threads.access_post(db, user, post_id)
    revisions.redact(
        db, user, post, number, reason=reason.strip()[:300] or None, ip=client_ip(request)
    )
    db.commit()
    return flash_redirect(
        request,
        f"/posts/{post.id}/revisions",
        _("Version %(number)d is redacted.") % {"number": number},
    )


@router.post("/posts/{post_id}/delete", name="delete_post")
def delete_post(
    request: Request, db: SessionDep, user: CurrentUser, post_id: int, reason: FormText = ""
) -> Response:
    post = threads.access_post(db, user, post_id)
    thread_id, was_question = post.thread_id, post.is_question
    thread_editing.delete_post(db, user, post, reason=reason.strip()[:300] or None)
    db.commit()
    if was_question:
        brand = post.thread.forum.brand
        return flash_redirect(
            request, f"/b/{brand.slug}/{post.thread.forum.slug}", _("The thread is deleted.")
        )
    return flash_redirect(request, _thread_url(thread_id), _("The answer is deleted."))


@router.post("/preview", response_class=HTMLResponse, name="preview")
def preview(request: Request, user: CurrentUser, body: FormText = "") -> Response:
    """Live Markdown preview while writing (the same renderer and sanitizer as saving)."""
    html = render_markdown(body[: threads.BODY_MAX]) if body.strip() else ""
    return render(request, "community/_preview.html", {"html": html})
