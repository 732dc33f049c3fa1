"""The Crowd-service panel (crowdservice.insights.crowd) on a small data set whose every figure
is worked out by hand in the fixture's docstring and beside each assertion, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.orm import Session

from community.core.models import Forum, Post, Role, Thread, ThreadKind, User, Visibility
from community.core.workspace_models import BrandRole, StaffGrant
from crowdservice.insights.crowd import CROWD_COLUMNS, Part, crowd_panel, crowd_rows
from crowdservice.insights.period import InsightsFilter, insights_filter
from crowdservice.insights.service_levels import Times
from crowdservice.models import (
    Escalation,
    EscalationReason,
    EscalationStatus,
    ExpertInvitation,
    Priority,
    Resolution,
)
from tests.crowdservice.insights_data import answer, at, other_brand_forum, question

UserFactory = Callable[..., User]
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TODAY = NOW.date()


def accept(on: Thread, post: Post) -> None:
    on.accepted_post_id = post.id


def escalation(db: Session, on: Thread, created: datetime, **fields: object) -> None:
    db.add(Escalation(
        thread_id=on.id, brand_id=on.forum.brand_id, reason=EscalationReason.NO_RESPONSE,
        priority=Priority.P3, first_response_due_at=created, resolution_due_at=created,
        created_at=created, **fields,
    ))  # fmt: skip
    db.flush()


def resolved(by: Resolution, when: datetime) -> dict[str, object]:
    status = EscalationStatus.RETURNED if by == Resolution.RETURNED else EscalationStatus.RESOLVED
    return {"status": status, "resolution": by, "resolved_at": when}


def invite(db: Session, on: Thread, user: User, sent: datetime, **fields: object) -> None:
    db.add(ExpertInvitation(thread_id=on.id, user_id=user.id, invited_at=sent, **fields))


@pytest.fixture
def crowd_data(db: Session, forum: Forum, make_user: UserFactory) -> None:
    """Period Nov 1-3. Peers bea and Carl, the asker, a moderator (mona) and an agent (agnes);
    dora asked an older question.

    The period's questions (7):
    - Q1 Mobile Nov 1 09:00: agnes official 09:10; bea 09:30 (accepted); Carl 10:00.
      Solved by the crowd; first peer answer 1,800 s.
    - Q2 Mobile Nov 1 10:00: agnes official 10:20 (accepted); Carl 12:00. Solved by an agent;
      peer 7,200 s. (An escalation on Nov 4, at the helpdesk: outside the period's escalations.)
    - Q3 Mobile Nov 1 11:00: mona 11:05, the asker himself 11:10 (neither is a peer); escalated
      11:30, resolved by an agent. Solved by an agent; no peer answer.
    - Q4 Mobile Nov 2 09:00: bea 09:10 (accepted); escalated 09:05, resolved by the community.
      Solved by the crowd; peer 600 s.
    - Q5 Billing Nov 2 10:00: Carl Nov 3 10:00 (accepted); escalated 10:30, now with the
      helpdesk. Solved, but with the support team; peer 86,400 s.
    - Q6 Mobile Nov 3 08:00, in Spanish: no answer; escalated 08:30, returned. Not solved.
    - Q7 Mobile Nov 3 09:00: bea's answer waits for review; Carl's was deleted (and is still
      the accepted post id). Not solved, no peer answer.
    Left out: a deleted question (Nov 2) with an accepted peer answer, a community-resolved
    escalation and an invitation; a question on Oct 31 at 23:59; a discussion (not a question)
    whose accepted answer is dora's.

    Solved 5 (Q1-Q5), without an agent 2 (Q1, Q4): 0.4. Peer answered 4 of 7 (Q1, Q2, Q4,
    Q5): 600, 1,800, 7,200, 86,400 s, median (1,800 + 7,200) / 2 = 4,500, p90 rank
    ceil(3.6) = 4: 86,400.
    Escalations raised in the period and resolved: Q3 (agent), Q4 (community) and dora's old
    question Qold (community, escalated Nov 2): 2 of 3.
    Invitations sent in the period: bea to Q1 (answered in time), Carl to Q2 (answered late),
    bea to Q6 (unanswered): 3 sent, 2 answered, 1 in time. Carl to Qold on Oct 31: outside.
    Top contributors (answers in the period to others' threads, published, not deleted
    threads of any kind): bea Q1, Q4, Qold = 3 (2 accepted); Carl Q1, Q2, Q5 = 3 (1 accepted);
    the asker Qold = 1 (0); dora the discussion = 1 (1). Ties by name, lower-cased: bea before
    Carl (a byte order would put "C" first), asker before dora. Not counted: bea Nov 4, the
    asker's own Q3, mona and agnes (staff), answers in the deleted question.
    """
    asker, bea, carl = make_user("asker"), make_user("bea"), make_user("Carl")
    dora = make_user("dora")
    mona = make_user("mona", role=Role.MODERATOR)
    agnes = make_user("agnes", role=Role.AGENT)
    billing = Forum(brand_id=forum.brand_id, slug="billing", name="Billing", description="")
    db.add(billing)
    db.flush()

    q1 = question(db, forum, asker, at(1, 9))
    answer(db, q1, agnes, at(1, 9, 10), is_official=True)
    accept(q1, answer(db, q1, bea, at(1, 9, 30)))
    answer(db, q1, carl, at(1, 10))
    invite(db, q1, bea, at(1, 9, 5), answered_at=at(1, 9, 30), answered_in_time=True)

    q2 = question(db, forum, asker, at(1, 10))
    accept(q2, answer(db, q2, agnes, at(1, 10, 20), is_official=True))
    answer(db, q2, carl, at(1, 12))
    escalation(db, q2, at(4, 9), **resolved(Resolution.HELPDESK, at(4, 10)))
    invite(db, q2, carl, at(1, 10, 5), answered_at=at(1, 12), answered_in_time=False)

    q3 = question(db, forum, asker, at(1, 11))
    answer(db, q3, mona, at(1, 11, 5))
    answer(db, q3, asker, at(1, 11, 10))
    escalation(db, q3, at(1, 11, 30), **resolved(Resolution.AGENT, at(1, 13)))

    q4 = question(db, forum, asker, at(2, 9))
    accept(q4, answer(db, q4, bea, at(2, 9, 10)))
    escalation(db, q4, at(2, 9, 5), **resolved(Resolution.COMMUNITY, at(2, 9, 20)))

    q5 = question(db, billing, asker, at(2, 10))
    accept(q5, answer(db, q5, carl, at(3, 10)))
    escalation(db, q5, at(2, 10, 30), status=EscalationStatus.HANDED_OFF)

    q6 = question(db, forum, asker, at(3, 8), locale="es")
    escalation(db, q6, at(3, 8, 30), **resolved(Resolution.RETURNED, at(3, 9)))
    invite(db, q6, bea, at(3, 8, 10))

    q7 = question(db, forum, asker, at(3, 9))
    answer(db, q7, bea, at(3, 9, 30), visibility=Visibility.PENDING)
    accept(q7, answer(db, q7, carl, at(3, 9, 40), visibility=Visibility.DELETED))

    old = question(db, forum, dora, at(20, 9, month=10))
    answer(db, old, bea, at(2, 15))
    answer(db, old, asker, at(2, 16))
    answer(db, old, bea, at(4, 9))
    escalation(db, old, at(2, 14), **resolved(Resolution.COMMUNITY, at(2, 16)))
    invite(db, old, carl, at(31, 9, month=10), answered_at=at(31, 10, month=10),
           answered_in_time=True)  # fmt: skip

    gone = question(db, forum, asker, at(2, 11), visibility=Visibility.DELETED)
    accept(gone, answer(db, gone, bea, at(2, 11, 5)))
    escalation(db, gone, at(2, 11, 1), **resolved(Resolution.COMMUNITY, at(2, 11, 6)))
    invite(db, gone, bea, at(2, 11, 2))
    early = question(db, forum, asker, at(31, 23, 59, month=10))
    accept(early, answer(db, early, bea, at(31, 23, 59, month=10)))
    chat = question(db, forum, asker, at(2, 12), kind=ThreadKind.DISCUSSION)
    accept(chat, answer(db, chat, dora, at(2, 12, 30)))
    db.commit()


def period(**filters: str) -> InsightsFilter:
    return insights_filter(TODAY, start=date(2026, 11, 1), end=date(2026, 11, 3), **filters)


@pytest.mark.usefixtures("crowd_data")
def test_crowd_panel_figures(db: Session, forum: Forum) -> None:
    panel = crowd_panel(db, forum.brand, period(), now=NOW)
    assert panel.questions == 7
    assert panel.solved_without_agent == Part(2, 5, 0.4)
    assert panel.peer_answered == Part(4, 7, 4 / 7)
    assert panel.peer_answer_time == Times(4, 4500.0, 86400.0)
    assert panel.community_escalations == Part(2, 3, 2 / 3)
    assert panel.invitations_answered == Part(2, 3, 2 / 3)
    assert panel.invitations_in_time == Part(1, 3, 1 / 3)
    assert [(c.name, c.answers, c.accepted) for c in panel.top_contributors] == [
        ("bea", 3, 2), ("Carl", 3, 1), ("asker", 1, 0), ("dora", 1, 1)
    ]  # fmt: skip


@pytest.mark.usefixtures("crowd_data")
def test_crowd_panel_respects_the_forum_and_language_filters(db: Session, forum: Forum) -> None:
    # Billing holds Q5 only: solved with the helpdesk, Carl's answer a day later; its
    # escalation is not resolved; no invitation there.
    billing = crowd_panel(db, forum.brand, period(forum="billing"), now=NOW)
    assert billing.questions == 1
    assert billing.solved_without_agent == Part(0, 1, 0.0)
    assert billing.peer_answered == Part(1, 1, 1.0)
    assert billing.peer_answer_time == Times(1, 86400.0, 86400.0)
    assert billing.community_escalations == Part(0, 0, None)
    assert billing.invitations_answered == Part(0, 0, None)
    assert [(c.name, c.answers, c.accepted) for c in billing.top_contributors] == [("Carl", 1, 1)]

    # Spanish holds Q6 only: unanswered, its escalation returned, bea's invitation unanswered.
    spanish = crowd_panel(db, forum.brand, period(language="es"), now=NOW)
    assert spanish.questions == 1
    assert spanish.solved_without_agent == Part(0, 0, None)
    assert spanish.peer_answered == Part(0, 1, 0.0)
    assert spanish.peer_answer_time == Times(0, None, None)
    assert spanish.community_escalations == Part(0, 0, None)
    assert spanish.invitations_answered == Part(0, 1, 0.0)
    assert spanish.invitations_in_time == Part(0, 1, 0.0)
    assert spanish.top_contributors == []


def test_crowd_panel_with_no_data(db: Session, forum: Forum) -> None:
    panel = crowd_panel(db, forum.brand, period(), now=NOW)
    assert panel.questions == 0
    for value in (panel.solved_without_agent, panel.peer_answered, panel.community_escalations,
                  panel.invitations_answered, panel.invitations_in_time):  # fmt: skip
        assert value == Part(0, 0, None)
    assert panel.peer_answer_time == Times(0, None, None)
    assert panel.top_contributors == []


@pytest.mark.usefixtures("crowd_data")
def test_crowd_rows_carry_the_panels_numbers(db: Session, forum: Forum) -> None:
    rows = crowd_rows(crowd_panel(db, forum.brand, period(), now=NOW))
    assert all(set(row) <= set(CROWD_COLUMNS) for row in rows)
    by_section = {row["section"]: row for row in rows if row["section"] != "contributor"}
    assert by_section["questions"]["count"] == 7
    assert by_section["solved_without_agent"] == {
        "section": "solved_without_agent", "count": 2, "out_of": 5, "share": 0.4
    }  # fmt: skip
    assert by_section["peer_answer_time"]["median_seconds"] == 4500.0
    assert by_section["peer_answer_time"]["p90_seconds"] == 86400.0
    assert by_section["invitations_in_time"]["out_of"] == 3
    contributors = [r for r in rows if r["section"] == "contributor"]
    assert [(r["label"], r["answers"], r["accepted"]) for r in contributors] == [
        ("bea", 3, 2), ("Carl", 3, 1), ("asker", 1, 0), ("dora", 1, 1)
    ]  # fmt: skip


def test_the_brands_own_staff_are_not_peers(
    db: Session, forum: Forum, make_user: UserFactory
) -> None:
    """A moderator or agent of the brand answering is the brand's staff, not the crowd; staff
    of another brand answering here are members like any other."""
    other = other_brand_forum(db)
    asker = make_user("asker")
    own_moderator, outsider = make_user("own_mod"), make_user("their_mod")
    db.add_all([
        StaffGrant(user_id=own_moderator.id, brand_id=forum.brand_id, role=BrandRole.MODERATOR),
        StaffGrant(user_id=outsider.id, brand_id=other.brand_id, role=BrandRole.MODERATOR),
    ])  # fmt: skip
    by_staff = question(db, forum, asker, at(1, 9))
    answer(db, by_staff, own_moderator, at(1, 10))
    by_outsider = question(db, forum, asker, at(1, 11))
    answer(db, by_outsider, outsider, at(1, 12))
    db.commit()
    panel = crowd_panel(db, forum.brand, period(), now=NOW)
    assert panel.peer_answered == Part(1, 2, 0.5)
    assert [person.username for person in panel.top_contributors] == ["their_mod"]
