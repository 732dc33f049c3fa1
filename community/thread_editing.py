"""Editing, retagging and deleting posts. Every edit keeps a revision (the first also keeps the
original), edits of someone else's post and retags by others are audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from community import revisions, visibility
from community.core import indexing, language, notifications, uploads
from community.core.audit import record_audit
from community.core.clock import utcnow
from community.core.errors import FormErrors, PermissionDenied
from community.core.i18n import gettext as _
from community.core.markdown import HTML_VERSION
from community.core.models import Post, PostRevision, Thread, ThreadKind, User, Visibility
from community.core.policy import (
    ThreadPermissions,
    can_redact,
    can_retag,
    ensure_can_change,
    ensure_can_participate,
    ensure_post_visible,
    ensure_thread_open_for,
    ensure_thread_visible,
    is_staff,
)
from community.core.schemas import EditIn
from community.mentions import find_mentions, render_with_mentions
from community.threads import (
    ASKABLE_KINDS,
    body_fingerprint,
    clean_body,
    clean_tags,
    clean_title,
    tags_for,
)


def _snapshot(post: Post, number: int, editor_id: int | None, reason: str | None) -> PostRevision:
    thread = post.thread
    return PostRevision(
        post_id=post.id,
        number=number,
        editor_id=editor_id,
        title=thread.title if post.is_question else None,
        tags=" ".join(sorted(tag.name for tag in thread.tags)) if post.is_question else None,
        body_source=post.body_source,
        reason=reason,
    )


@dataclass(frozen=True, slots=True)
class QuestionChanges:
    """What an edit of a question may change besides the body (None: left as it is)."""

    title: str | None
    tags: list[str] | None
    kind: ThreadKind | None


def _edit_reason(editor: User, post: Post, data: EditIn) -> tuple[bool, str | None]:
    """Whether the post is the editor's own, and the reason given; raises when the editor may
    not make this edit."""
    ensure_can_participate(editor)
    ensure_post_visible(editor, post)
    ensure_can_change(editor, post)
    ensure_thread_open_for(editor, post.thread)
    own = post.author_id == editor.id
    if not own and not is_staff(editor, post.brand_id):
        raise PermissionDenied(_("You can only edit your own posts."))
    reason = (data.reason or "").strip() or None
    if not own and not reason:
        raise FormErrors({"reason": _("Say why you are editing someone else's post.")})
    if data.redact_earlier and not can_redact(editor, post.brand_id):
        raise PermissionDenied(_("Only staff can redact earlier versions."))
    return own, reason


def _question_changes(post: Post, data: EditIn) -> QuestionChanges:
    if not post.is_question:
        return QuestionChanges(title=None, tags=None, kind=None)
    title = clean_title(data.title) if data.title is not None else None
    tag_names = clean_tags(data.tags) if data.tags is not None else None
    if data.kind is not None and data.kind not in ASKABLE_KINDS:
        raise FormErrors({"kind": _("Choose one of the offered options.")})
    return QuestionChanges(title=title, tags=tag_names, kind=data.kind)


def _keep_original(db: Session, post: Post) -> int:
    """How many revisions the post has, the original saved as revision 1 on its first edit."""
    count = db.scalar(select(func.count()).where(PostRevision.post_id == post.id)) or 0
    if count == 0:
        original = _snapshot(post, 1, post.author_id, None)
        original.created_at = post.created_at
        db.add(original)
        count = 1
    return count


def _replace_tags(db: Session, thread: Thread, names: list[str]) -> None:
    """Only a published thread counts towards its tags' thread counts."""
    counted = thread.visibility == Visibility.VISIBLE
    if counted:
        visibility.count_tags(thread.tags, -1)
    thread.tags = tags_for(db, thread.forum.brand_id, names)
    if counted:
        visibility.count_tags(thread.tags, 1)


def _change_question(
    db: Session, thread: Thread, html: str, changes: QuestionChanges, edited_at: datetime
) -> None:
    thread.updated_at = edited_at
    if changes.title is not None:
        thread.title = changes.title
    # The language in which the question is indexed follows its text; unclear text keeps what
    # it had.
    thread.locale = language.detect_post_language(thread.title, html, fallback=thread.locale)
    if changes.kind is not None:
        thread.kind = changes.kind
    if changes.tags is not None and changes.tags != [tag.name for tag in thread.tags]:
        _replace_tags(db, thread, changes.tags)


def edit_post(db: Session, editor: User, post: Post, data: EditIn) -> Post:
    """Save a new version; the first edit also keeps the original as revision 1."""
    own, reason = _edit_reason(editor, post, data)
    thread = post.thread
    body = clean_body(data.body)
    changes = _question_changes(post, data)

    count = _keep_original(db, post)
    before_mentions = {user.id for user in find_mentions(db, post.body_source)}
    html, mentioned = render_with_mentions(db, body)
    post.body_source = body
    post.body_fingerprint = body_fingerprint(body)
    post.body_html = html
    post.html_version = HTML_VERSION
    post.edit_count = Post.edit_count + 1
    post.edited_at = post.updated_at = utcnow()
    if post.is_question:
        _change_question(db, thread, html, changes, post.edited_at)
    db.flush()
    # Pictures the edit adds, the author's or the editor's own, are seen as the post is.
    uploads.attach_to_post(db, post, [post.author_id, editor.id])
    db.add(_snapshot(post, count + 1, editor.id, reason))
    if data.redact_earlier:
        revisions.redact_earlier(db, editor, post, reason=reason)
    if not own:
        record_audit(
            db,
            actor=editor,
            action="post.edited",
            target_type="post",
            target_id=post.id,
            reason=reason,
        )
    new_mentions = [user for user in mentioned if user.id not in before_mentions]
    notifications.notify_mentions(db, new_mentions, actor=editor, thread=thread, post=post)
    indexing.thread_changed(db, thread.id)
    return post


def retag(db: Session, editor: User, thread: Thread, tags: list[str]) -> Thread:
    """Replace a thread's tags (tag counters follow); others' retags are audited."""
    ensure_can_participate(editor)
    ensure_thread_visible(editor, thread)
    ensure_thread_open_for(editor, thread)
    if thread.visibility != Visibility.VISIBLE and not is_staff(editor, thread.brand_id):
        raise PermissionDenied(
            _("This post is waiting for a moderator; you can change it once it is published.")
        )
    if not can_retag(editor, thread):
        raise PermissionDenied(_("Members from trust level 2 can edit tags."))
    names = clean_tags(tags)
    before = [tag.name for tag in thread.tags]
    if names == before:
        return thread
    _replace_tags(db, thread, names)
    if editor.id != thread.author_id:
        record_audit(
            db,
            actor=editor,
            action="thread.retagged",
            target_type="thread",
            target_id=thread.id,
            before={"tags": before},
            after={"tags": names},
        )
    indexing.thread_changed(db, thread.id)
    db.flush()
    return thread


def delete_post(db: Session, actor: User, post: Post, *, reason: str | None = None) -> None:
    """Soft delete. Deleting the question deletes the thread; an asker cannot delete a
    question others have answered (their answers would vanish with it)."""
    ensure_can_participate(actor)
    ensure_post_visible(actor, post)
    thread = post.thread
    permissions = ThreadPermissions(actor, thread)
    if post.visibility == Visibility.DELETED:
        return
    ensure_can_change(actor, post)
    if not permissions.can_edit(post):
        raise PermissionDenied(_("You can only delete your own posts."))
    if not permissions.can_delete(post):
        raise PermissionDenied(_("You cannot delete a question that has answers."))
    visibility.set_visibility(db, post, Visibility.DELETED)
    if post.author_id != actor.id:
        record_audit(
            db,
            actor=actor,
            action="thread.deleted" if post.is_question else "post.deleted",
            target_type="post",
            target_id=post.id,
            reason=reason,
        )
    db.flush()


# --- loading ---------------------------------------------------------------------------------
