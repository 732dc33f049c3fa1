"""The services behind the moderators' pages: the audit-log filter the page and the JSON API
share, a member's warnings and history, blocked patterns with what they caught, and the forum
a move names."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from community.core.audit import AuditLog, record_audit
from community.core.clock import utcnow
from community.core.errors import FormErrors, NotFound
from community.core.models import Brand, Forum, Role, User
from moderation import accounts, actions, audit_view, filters
from moderation.audit_view import AuditFilter
from moderation.models import BlockedPattern, FilterHit, FilterMode
from tests.conftest import QA

UserFactory = Callable[..., User]


def _row(
    db: Session,
    actor: User | None,
    action: str,
    target_type: str,
    target_id: object,
    *,
    on: datetime,
    after: dict[str, object] | None = None,
) -> AuditLog:
    entry = record_audit(
        db, actor=actor, action=action, target_type=target_type, target_id=target_id, after=after
    )
    entry.created_at = on
    db.commit()
    return entry


def _ids(rows: list[AuditLog]) -> list[int]:
    return [row.id for row in rows]


def test_the_audit_filter_narrows_by_each_field_newest_first(
    db: Session, make_user: UserFactory
) -> None:
    sam, kim = make_user("sam", role=Role.MODERATOR), make_user("kim", role=Role.ADMIN)
    old = _row(db, sam, "post.hidden", "post", 7, on=datetime(2026, 1, 5, tzinfo=UTC))
    locked = _row(db, sam, "thread.locked", "thread", 3, on=datetime(2026, 3, 1, tzinfo=UTC))
    moved = _row(db, kim, "thread.moved", "thread", 4, on=datetime(2026, 3, 2, tzinfo=UTC))
    automatic = _row(db, None, "post.held", "post", 8, on=datetime(2026, 3, 3, tzinfo=UTC))

    def found(**wanted: object) -> list[int]:
        return _ids(audit_view.audit_entries(db, AuditFilter(**wanted)))  # type: ignore[arg-type]

    everything = [automatic.id, moved.id, locked.id, old.id]
    assert found() == everything
    assert found(action="thread.") == [moved.id, locked.id]  # the start of the code
    assert found(action="locked") == []
    assert found(target_type="post") == [automatic.id, old.id]
    assert found(target_type="thread", target_id="4") == [moved.id]
    assert found(actor="sam") == [locked.id, old.id]
    assert found(actor="KIM") == [moved.id]  # usernames in any case
    assert found(actor="nobody-at-all") == []  # an unknown name matches nothing, not everything
    assert found(since=datetime(2026, 3, 2, tzinfo=UTC)) == [automatic.id, moved.id]
    assert found(before=moved.id) == [locked.id, old.id]
    assert found(before=0) == everything  # no page given
    assert found(limit=2) == [automatic.id, moved.id]
    assert found(actor="sam", action="post.", target_type="post", target_id="7") == [old.id]


def test_the_page_query_is_cut_to_the_columns_and_since_is_a_date() -> None:
    wanted = AuditFilter.from_query(
        action="a" * 80, target_type="t" * 50, target_id="9" * 60, actor="sam",
        since="2026-03-02", before=12, limit=51,
    )  # fmt: skip
    assert (len(wanted.action), len(wanted.target_type), len(wanted.target_id)) == (60, 30, 40)
    assert wanted.since == datetime(2026, 3, 2, tzinfo=UTC)  # no zone given: UTC
    assert (wanted.actor, wanted.before, wanted.limit) == ("sam", 12, 51)
    zoned = AuditFilter.from_query(
        action="", target_type="", target_id="", actor="", since="2026-03-02T10:00:00+02:00",
        before=None, limit=51,
    )  # fmt: skip
    assert zoned.since == datetime(2026, 3, 2, 8, tzinfo=UTC)
    empty = AuditFilter.from_query(
        action="", target_type="", target_id="", actor="", since="", before=None, limit=51
    )
    assert empty == AuditFilter(limit=51)
    with pytest.raises(FormErrors) as refused:
        AuditFilter.from_query(
            action="", target_type="", target_id="", actor="", since="yesterday-ish",
            before=None, limit=51,
        )  # fmt: skip
    assert set(refused.value.errors) == {"since"}


def test_the_people_a_page_of_audit_rows_names(db: Session, make_user: UserFactory) -> None:
    sam, ana = make_user("sam", role=Role.MODERATOR), make_user("ana", role=Role.AGENT)
    make_user("bystander")
    on = datetime(2026, 3, 1, tzinfo=UTC)
    rows = [
        _row(db, sam, "post.hidden", "post", 1, on=on),
        _row(db, None, "escalation.claimed", "escalation", 2, on=on,
             after={"assigned_agent_id": ana.id}),
    ]  # fmt: skip
    people = audit_view.people_named(db, rows)
    assert {person_id: person.username for person_id, person in people.items()} == {
        sam.id: "sam",
        ana.id: "ana",
    }
    assert audit_view.people_named(db, []) == {}


def test_a_members_warnings_and_history_newest_first(db: Session, make_user: UserFactory) -> None:
    sam = make_user("sam", role=Role.MODERATOR)
    member, other = make_user("member"), make_user("other")
    accounts.warn(db, sam, member, "Please keep it civil.")
    accounts.warn(db, sam, member, "Second time: be kind.")
    accounts.warn(db, sam, other, "Not for the member.")
    db.commit()

    assert [warning.message for warning in accounts.warnings_of(db, member)] == [
        "Second time: be kind.",
        "Please keep it civil.",
    ]
    history = audit_view.history_of(db, member)
    assert [row.action for row in history] == ["user.warned", "user.warned"]
    assert {row.target_id for row in history} == {str(member.id)}
    assert history[0].id > history[1].id
    assert len(audit_view.history_of(db, member, limit=1)) == 1


def test_blocked_patterns_with_their_hits(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    admin = make_user("ada", role=Role.ADMIN)
    brand = forum.brand
    enforced = filters.add_pattern(db, admin, brand, "spamword", is_regex=False, mode="enforce")
    logged = filters.add_pattern(db, admin, brand, "maybe", is_regex=False, mode="log_only")
    quiet = filters.add_pattern(db, admin, brand, "never", is_regex=False, mode="log_only")
    post = qa.answer(make_user("helper"), qa.ask(make_user("asker")))
    hits = [FilterHit(pattern_id=enforced.id, post_id=post.id, excerpt="x", enforced=True)]
    hits += [
        FilterHit(pattern_id=logged.id, post_id=post.id, excerpt=f"maybe {n}", enforced=False)
        for n in range(3)
    ]
    db.add_all(hits)
    db.commit()

    report = filters.pattern_report(db, brand)
    assert [pattern.id for pattern in report.patterns] == [enforced.id, logged.id, quiet.id]
    assert report.hits == {enforced.id: 1, logged.id: 3}  # a pattern that caught nothing: absent
    assert [hit.excerpt for hit in report.recent_logged] == ["maybe 2", "maybe 1", "maybe 0"]
    assert len(filters.pattern_report(db, brand, recent=2).recent_logged) == 2


def test_changing_a_pattern(db: Session, forum: Forum, make_user: UserFactory) -> None:
    admin = make_user("ada", role=Role.ADMIN)
    pattern = filters.add_pattern(
        db, admin, forum.brand, "spamword", is_regex=False, mode="enforce"
    )
    db.commit()

    assert filters.change_pattern(db, admin, pattern.id, "log_only") == forum.brand_id
    db.commit()
    assert db.get(BlockedPattern, pattern.id).mode == FilterMode.LOG_ONLY  # type: ignore[union-attr]
    for bad_change in ("explode", "added"):
        with pytest.raises(NotFound):
            filters.change_pattern(db, admin, pattern.id, bad_change)
    with pytest.raises(NotFound):
        filters.change_pattern(db, admin, pattern.id + 1000, "delete")
    filters.change_pattern(db, admin, pattern.id, "delete")
    db.commit()
    assert db.get(BlockedPattern, pattern.id) is None
    changes = audit_view.audit_entries(db, AuditFilter(action="filter.", target_type="brand"))
    assert [row.action for row in changes] == ["filter.delete", "filter.log_only", "filter.added"]


def test_a_move_names_a_forum_of_the_threads_own_brand(
    db: Session, qa: QA, forum: Forum, make_user: UserFactory
) -> None:
    thread = qa.ask(make_user("asker"))
    billing = Forum(brand_id=forum.brand_id, slug="billing", name="Billing", description="")
    other_brand = Brand(slug="other", name="Other")
    db.add_all([billing, other_brand])
    db.flush()
    db.add(Forum(brand_id=other_brand.id, slug="elsewhere", name="Elsewhere", description=""))
    db.add(Forum(brand_id=forum.brand_id, slug="old", name="Old", archived_at=utcnow()))
    db.commit()

    assert actions.forum_to_move_to(db, thread, "billing").id == billing.id
    for slug in ("elsewhere", "old", "", "no-such-forum"):
        with pytest.raises(FormErrors) as refused:
            actions.forum_to_move_to(db, thread, slug)
        assert set(refused.value.errors) == {"forum"}
