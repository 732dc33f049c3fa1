"""JSON API for forums' threads, posts, votes, accepted answers, helpful marks, watching,
notifications and personal API tokens. Same services and rules as the pages."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from community import revisions, thread_editing, thread_reading, threads, voting
from community.api import ERRORS
from community.core import api_tokens, notifications
from community.core.auth import CurrentUser, OptionalUser, client_ip
from community.core.db import SessionDep
from community.core.errors import NotFound, PermissionDenied, ThreadMerged
from community.core.i18n import active_locale
from community.core.i18n import gettext as _
from community.core.models import Forum, Notification, Post, Thread, ThreadKind, ThreadStatus, User
from community.core.policy import ensure_brand_shown, ensure_forum_readable, is_staff
from community.core.ratelimit import limited
from community.core.schemas import (
    AnswerIn,
    AskIn,
    AuthorOut,
    EditIn,
    ErrorOut,
    HelpfulOut,
    NewTokenOut,
    NotificationOut,
    Page,
    PostOut,
    RedactIn,
    RevisionOut,
    TagsIn,
    ThreadDetailOut,
    ThreadOut,
    TokenIn,
    TokenOut,
    UnreadOut,
    VoteIn,
    VoteOut,
)

router = APIRouter(prefix="/api/v1", responses=ERRORS)  # type: ignore[arg-type]


def thread_out(thread: Thread) -> ThreadOut:
    out = ThreadOut.model_validate(thread)
    out.locked = thread.locked_at is not None
    return out


def post_out(post: Post, thread: Thread) -> PostOut:
    out = PostOut.model_validate(post)
    out.accepted = thread.accepted_post_id == post.id
    return out


def _forum(db: SessionDep, forum_id: int, viewer: User | None) -> Forum:
    forum = db.get(Forum, forum_id)
    if forum is None:
        raise NotFound()
    ensure_brand_shown(forum.brand, viewer)  # an archived brand's forums are gone
    ensure_forum_readable(viewer, forum)  # and restricted ones, for who may not read them
    return forum


# --- threads ---------------------------------------------------------------------------------


@router.get("/forums/{forum_id}/threads", response_model=Page[ThreadOut], tags=["threads"])
def api_list_threads(
    db: SessionDep,
    forum_id: int,
    sort: Literal["activity", "newest", "unanswered", "top", "solved"] = "activity",
    tag: Annotated[str | None, Query(max_length=30)] = None,
    status_filter: Annotated[ThreadStatus | None, Query(alias="status")] = None,
    kind: ThreadKind | None = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
    viewer: OptionalUser = None,
) -> Page[ThreadOut]:
    forum = _forum(db, forum_id, viewer)
    query = thread_reading.ThreadQuery(
        sort=sort, tag=tag, status=status_filter, kind=kind, cursor=cursor, limit=limit,
        include_removed=is_staff(viewer, forum.brand_id),
    )  # fmt: skip
    listing = thread_reading.list_threads(db, forum, query)
    return Page[ThreadOut](
        items=[thread_out(item) for item in listing.items], next_cursor=listing.next_cursor
    )


@router.post(
    "/forums/{forum_id}/threads",
    response_model=ThreadOut,
    status_code=status.HTTP_201_CREATED,
    tags=["threads"],
    dependencies=[limited("post")],
)
def api_create_thread(db: SessionDep, user: CurrentUser, forum_id: int, body: AskIn) -> ThreadOut:
    thread = threads.ask(db, user, _forum(db, forum_id, user), body, locale=active_locale())
    db.commit()
    return thread_out(threads.access_thread(db, user, thread.id))


@router.get(
    "/threads/{thread_id}",
    response_model=ThreadDetailOut,
    tags=["threads"],
    responses={
        301: {
            "model": ErrorOut,
            "description": "The thread was merged into another one: `Location` is that thread "
            "and `error.details.merged_into` its id (code `thread_merged`). Other calls on a "
            "merged thread answer 404 with the same code and details.",
        }
    },
)
def api_thread_detail(
    db: SessionDep,
    user: OptionalUser,
    thread_id: int,
    answers: Literal["score", "date"] = "score",
) -> ThreadDetailOut | JSONResponse:
    try:
        thread = threads.access_thread(db, user, thread_id)
    except ThreadMerged as merged:
        error = {"code": merged.code, "message": merged.message, "details": merged.details}
        return JSONResponse(
            {"error": error},
            status_code=301,
            headers={"Location": f"/api/v1/threads/{merged.target_id}"},
        )
    page = thread_reading.thread_page(db, user, thread, answer_sort=answers)
    ordered = ([page.accepted] if page.accepted else []) + page.answers
    return ThreadDetailOut(
        **thread_out(thread).model_dump(),
        question=post_out(page.question, thread),
        answers=[post_out(post, thread) for post in ordered],
        my_votes=page.my_votes,
        helped=page.helped,
        watching=page.watching,
    )


@router.post(
    "/threads/{thread_id}/posts",
    response_model=PostOut,
    status_code=status.HTTP_201_CREATED,
    tags=["threads"],
    dependencies=[limited("post")],
)
def api_create_answer(db: SessionDep, user: CurrentUser, thread_id: int, body: AnswerIn) -> PostOut:
    thread = threads.access_thread(db, user, thread_id)
    post = threads.answer(db, user, thread, body)
    db.commit()
    return post_out(post, thread)


@router.patch("/posts/{post_id}", response_model=PostOut, tags=["threads"])
def api_edit_post(db: SessionDep, user: CurrentUser, post_id: int, body: EditIn) -> PostOut:
    post = threads.access_post(db, user, post_id)
    thread_editing.edit_post(db, user, post, body)
    db.commit()
    return post_out(post, post.thread)


@router.delete("/posts/{post_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["threads"])
def api_delete_post(db: SessionDep, user: CurrentUser, post_id: int) -> Response:
    thread_editing.delete_post(db, user, threads.access_post(db, user, post_id))
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/posts/{post_id}/revisions", response_model=list[RevisionOut], tags=["threads"])
def api_post_revisions(db: SessionDep, user: OptionalUser, post_id: int) -> list[RevisionOut]:
    """Oldest first. Versions staff redacted read "Redacted by staff" (staff see the text)."""
    post = threads.access_post(db, user, post_id)
    return [
        RevisionOut(
            number=shown.number,
            editor=AuthorOut.model_validate(shown.editor) if shown.editor else None,
            title=shown.title,
            tags=shown.tags,
            body_source=_("Redacted by staff") if shown.body_source is None else shown.body_source,
            reason=shown.reason,
            created_at=shown.created_at,
            redacted=shown.redacted,
        )
        for shown in revisions.history(db, user, post)
    ]


@router.post(
    "/posts/{post_id}/revisions/{number}/redact",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["threads"],
)
def api_redact_revision(
    request: Request, db: SessionDep, user: CurrentUser, post_id: int, number: int, body: RedactIn
) -> Response:
    """Staff hide an earlier version's text from everyone else (personal data); audited."""
    post = threads.access_post(db, user, post_id)
    revisions.redact(db, user, post, number, reason=body.reason, ip=client_ip(request))
    db.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- votes, accepting, helpful, watching -----------------------------------------------------


@router.put(
    "/posts/{post_id}/vote", response_model=VoteOut, tags=["votes"], dependencies=[limited("vote")]
)
def api_vote(db: SessionDep, user: CurrentUser, post_id: int, body: VoteIn) -> VoteOut:
    result = voting.cast_vote(db, user, post_id, body.value)
    db.commit()
    post = result.post
    return VoteOut(
        post_id=post.id,
        score=post.score,
        upvotes=post.upvotes,
        downvotes=post.downvotes,
        my_vote=result.my_vote,
    )


@router.put("/posts/{post_id}/accept", response_model=ThreadOut, tags=["votes"])
def api_accept(db: SessionDep, user: CurrentUser, post_id: int) -> ThreadOut:
    thread = voting.accept(db, user, post_id)
    db.commit()
    return thread_out(thread)


@router.delete("/threads/{thread_id}/accept", response_model=ThreadOut, tags=["votes"])
def api_unaccept(db: SessionDep, user: CurrentUser, thread_id: int) -> ThreadOut:
    thread = voting.unaccept(db, user, thread_id)
    db.commit()
    return thread_out(thread)


def _helpful(db: SessionDep, user: User, thread_id: int, helpful: bool) -> HelpfulOut:
    thread = voting.set_helpful(db, user, thread_id, helpful=helpful)
    db.commit()
    return HelpfulOut(thread_id=thread.id, helpful_count=thread.helpful_count, helped=helpful)


@router.put("/threads/{thread_id}/helpful", response_model=HelpfulOut, tags=["votes"])
def api_mark_helpful(db: SessionDep, user: CurrentUser, thread_id: int) -> HelpfulOut:
    return _helpful(db, user, thread_id, True)


@router.delete("/threads/{thread_id}/helpful", response_model=HelpfulOut, tags=["votes"])
def api_unmark_helpful(db: SessionDep, user: CurrentUser, thread_id: int) -> HelpfulOut:
    return _helpful(db, user, thread_id, False)


@router.put("/threads/{thread_id}/tags", response_model=ThreadOut, tags=["threads"])
def api_retag(db: SessionDep, user: CurrentUser, thread_id: int, body: TagsIn) -> ThreadOut:
    thread = thread_editing.retag(db, user, threads.access_thread(db, user, thread_id), body.tags)
    db.commit()
    return thread_out(threads.access_thread(db, user, thread.id))


@router.put("/threads/{thread_id}/watch", status_code=204, tags=["notifications"])
def api_watch(db: SessionDep, user: CurrentUser, thread_id: int) -> Response:
    threads.watch(db, user, threads.access_thread(db, user, thread_id))
    db.commit()
    return Response(status_code=204)


@router.delete("/threads/{thread_id}/watch", status_code=204, tags=["notifications"])
def api_unwatch(db: SessionDep, user: CurrentUser, thread_id: int) -> Response:
    threads.unwatch(db, user, threads.access_thread(db, user, thread_id))
    db.commit()
    return Response(status_code=204)


# --- notifications ---------------------------------------------------------------------------


def _notification_out(notification: Notification) -> NotificationOut:
    out = NotificationOut.model_validate(notification)
    out.text = notifications.describe(notification)
    return out


@router.get("/notifications", response_model=Page[NotificationOut], tags=["notifications"])
def api_notification_list(
    db: SessionDep,
    user: CurrentUser,
    cursor: Annotated[int | None, Query(ge=1)] = None,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 30,
) -> Page[NotificationOut]:
    page = notifications.list_for(db, user.id, before=cursor, limit=limit, unread=unread)
    return Page[NotificationOut](
        items=[_notification_out(item) for item in page.items],
        next_cursor=str(page.next_before) if page.next_before else None,
    )


@router.get("/notifications/unread-count", response_model=UnreadOut, tags=["notifications"])
def api_notification_unread(db: SessionDep, user: CurrentUser) -> UnreadOut:
    return UnreadOut(unread=notifications.unread_count(db, user.id))


@router.post(
    "/notifications/{notification_id}/read", response_model=NotificationOut, tags=["notifications"]
)
def api_notification_read(
    db: SessionDep, user: CurrentUser, notification_id: int
) -> NotificationOut:
    notification = notifications.mark_read(db, user, notification_id)
    db.commit()
    return _notification_out(notification)


@router.post("/notifications/read-all", response_model=UnreadOut, tags=["notifications"])
def api_notification_read_all(db: SessionDep, user: CurrentUser) -> UnreadOut:
    notifications.mark_all_read(db, user.id)
    db.commit()
    return UnreadOut(unread=0)


# --- API tokens ------------------------------------------------------------------------------


def _session_only(request: Request) -> None:
    """A token cannot mint or revoke tokens: that takes a signed-in browser session."""
    if getattr(request.state, "auth", None) == "token":
        raise PermissionDenied()


@router.get("/tokens", response_model=list[TokenOut], tags=["accounts"])
def api_token_list(db: SessionDep, user: CurrentUser) -> list[object]:
    return list(api_tokens.list_tokens(db, user))


@router.post(
    "/tokens", response_model=NewTokenOut, status_code=status.HTTP_201_CREATED, tags=["accounts"]
)
def api_token_create(
    request: Request, db: SessionDep, user: CurrentUser, body: TokenIn
) -> NewTokenOut:
    _session_only(request)
    token, raw = api_tokens.create_token(db, user, body.name)
    db.commit()
    return NewTokenOut(**TokenOut.model_validate(token).model_dump(), token=raw)


@router.delete("/tokens/{token_id}", status_code=204, tags=["accounts"])
def api_token_revoke(
    request: Request, db: SessionDep, user: CurrentUser, token_id: int
) -> Response:
    _session_only(request)
    api_tokens.revoke_token(db, user, token_id)
    db.commit()
    return Response(status_code=204)
