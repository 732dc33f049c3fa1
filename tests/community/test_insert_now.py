"""community.core.db.insert_now: a new object stored with one plain INSERT, persistent as if
loaded (a new answer is stored this way), or left to the unit of work when it needs it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, event, inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from community.core.db import insert_now
from community.core.models import Post, User, Visibility
from tests.conftest import QA, fresh

UserFactory = Callable[..., User]


def _statements(engine: Engine) -> tuple[list[str], Callable[[], None]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: event.remove(engine, "before_cursor_execute", record)


def test_a_new_post_is_one_insert_and_then_as_loaded(
    db: Session, engine: Engine, qa: QA, make_user: UserFactory
) -> None:
    author = make_user("author")
    thread = qa.ask(make_user("asker"))
    post = Post(thread_id=thread.id, author_id=author.id, body_source="Hi", body_html="<p>Hi</p>")
    set_committed_value(post, "thread", thread)
    db.add(post)
    seen, stop = _statements(engine)
    try:
        assert insert_now(db, post)
        # Nothing left for the unit of work: no second write of the post at the flush.
        db.flush()
    finally:
        stop()
    writes = [s for s in seen if not s.startswith(("BEGIN", "SAVEPOINT", "RELEASE"))]
    assert len(writes) == 1 and writes[0].startswith("INSERT INTO posts"), writes
    state = inspect(post)
    assert state.persistent and not state.modified and post not in db.new
    # The columns' defaults were applied and read back; the thread set as loaded stays.
    assert (post.score, post.visibility, post.is_question) == (0, Visibility.VISIBLE, False)
    assert post.created_at is not None and post.thread is thread
    db.commit()
    fresh(db)
    stored = db.scalars(select(Post).where(Post.id == post.id)).one()
    assert (stored.body_source, stored.author_id, stored.thread_id) == ("Hi", author.id, thread.id)


def test_an_object_that_needs_the_unit_of_work_is_left_to_it(
    db: Session, qa: QA, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"))
    # A relationship set the ordinary way: its id is the flush's to work out.
    post = Post(body_source="Hi", body_html="<p>Hi</p>", thread=thread)
    db.add(post)
    assert not insert_now(db, post)
    assert post in db.new and post.id is None
    db.flush()
    assert post.id is not None and post.thread_id == thread.id
    # Stored already: nothing to insert.
    assert not insert_now(db, post)
