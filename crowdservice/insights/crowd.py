"""Crowd-service: how much of the support the community gives itself.

Definitions. "The period's questions" are those the other panels count (crowdservice.insights
.scope): questions asked in the period, in the chosen forum and language, not deleted. Each is
followed to today, so a question asked on the period's last day counts as solved if it was
solved since: a cohort, the way a support lead asks "what became of the questions we got in
March?", and a figure that settles once the questions have aged. (The store keeps no time of
acceptance, so "solved within the period" could not be computed honestly anyway.) Shares are
None ("–") when there is nothing to divide; each comes with its count and what it is a share of.

- **Solved without an agent**: of the period's questions solved so far, the share solved by the
  community. Solved: the question has an accepted answer that is still published, or one of its
  escalations was resolved (by an agent, at the helpdesk or by the community). Without an agent:
  the accepted answer (if any) is neither an official answer nor written by an agent or admin,
  and no escalation of the question was resolved by an agent, resolved at the helpdesk or is
  with the helpdesk now. A question an agent answered but where the asker accepted a peer's
  answer counts as solved by the community: the answer that helped came from a peer.
- **Peer answer rate**: the share of the period's questions with at least one published answer
  (not deleted, not waiting for review) by a peer: a member account (not a moderator, agent or
  admin) other than the asker, not marked official. Answers by deleted accounts are left out,
  since nobody can say whether they were a peer.
- **Peer answer time**: for those questions, from the question being asked to its first peer
  answer; median and 90th percentile (nearest rank). Wall-clock time, not business hours:
  peers answer around the clock, and the brand's hours bind its agents only.
- **Escalations solved by the community**: of the escalations raised in the period (on the
  brand's threads in the chosen forum and language, not deleted) and resolved so far, the
  number and share resolved by the community (the asker accepted a peer's answer before an
  agent took the case). Returned escalations are no resolution and are not counted.
- **Expert invitations**: invitations sent in the period to answer the brand's threads (in the
  chosen forum and language, not deleted), how many were answered by the invited expert, and
  how many in time (before the thread's first-response due time, or at all when it had none),
  as recorded when the expert's answer was published (crowdservice.experts).
- **Top contributors**: the 10 members (no moderators, agents or admins) with the most answers
  posted in the period and still published, to other people's threads of any kind in the
  chosen forum and language (not deleted), with how many of those answers are their thread's
  accepted answer. Ties go to the name (then the account).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from community.core.models import Brand, Post, Role, Thread, User, Visibility
from community.core.staff import granted_user_ids, holds_role_in
from community.core.workspace_models import BrandRole
from crowdservice.insights.period import InsightsFilter
from crowdservice.insights.scope import counted_threads, forum_ids
from crowdservice.insights.service_levels import Times, times
from crowdservice.models import Escalation, EscalationStatus, ExpertInvitation, Resolution

Columns = TypeVarTuple("Columns")  # a query's columns, kept through the filters

TOP_CONTRIBUTORS = 10
# Outcomes that resolve a case (a returned one goes back to the community unresolved).
RESOLVED = (Resolution.AGENT, Resolution.COMMUNITY, Resolution.HELPDESK)
# Outcomes that involved the support team.
BY_SUPPORT = (Resolution.AGENT, Resolution.HELPDESK)


@dataclass(frozen=True, slots=True)
class Part:
    """`count` of `out_of`; `share` is count / out_of, None when there is nothing to divide
    (shown as "–", as the service panel does)."""

    count: int
    out_of: int
    share: float | None


@dataclass(frozen=True, slots=True)
class Contributor:
    user_id: int
    username: str
    name: str
    answers: int
    accepted: int


@dataclass(frozen=True, slots=True)
class CrowdPanel:
    questions: int  # the period's questions
    solved_without_agent: Part  # out of the period's solved questions
    peer_answered: Part  # out of the period's questions
    peer_answer_time: Times
    community_escalations: Part  # out of the period's resolved escalations
    invitations_answered: Part  # out of the invitations sent in the period
    invitations_in_time: Part  # out of the invitations sent in the period
    top_contributors: list[Contributor]


def part(count: int, out_of: int) -> Part:
    return Part(count, out_of, count / out_of if out_of else None)


def crowd_panel(db: Session, brand: Brand, period: InsightsFilter, *, now: datetime) -> CrowdPanel:
    """`now` is taken as every panel takes it, but unused: each figure follows the period's
    rows to what the database holds, so none depends on the clock."""
    ids = forum_ids(db, brand, period)
    questions, solved, without_agent = _solved(db, brand.id, ids, period)
    peer_times = _peer_answer_times(db, brand.id, ids, period)
    sent, answered, in_time = _invitations(db, ids, period)
    return CrowdPanel(
        questions=questions,
        solved_without_agent=part(without_agent, solved),
        peer_answered=part(len(peer_times), questions),
        peer_answer_time=times(peer_times),
        community_escalations=_community_escalations(db, ids, period),
        invitations_answered=part(answered, sent),
        invitations_in_time=part(in_time, sent),
        top_contributors=_top_contributors(db, brand.id, ids, period),
    )


def _in_language(query: Select[*Columns], period: InsightsFilter) -> Select[*Columns]:
    return query.where(Thread.locale == period.language) if period.language else query


def _in_scope(ids: list[int]) -> ColumnElement[bool]:
    """The brand's threads in the chosen forum, not deleted (any kind, any date)."""
    return and_(Thread.forum_id.in_(ids), Thread.visibility != Visibility.DELETED)


def _solved(
    db: Session, brand_id: int, ids: list[int], period: InsightsFilter
) -> tuple[int, int, int]:
    """(questions, solved, solved without an agent), counted by the database in one query."""
    threads = counted_threads(ids, period).subquery()
    accepted = aliased(Post)
    writer = aliased(User)
    has_accepted = accepted.id.is_not(None)
    escalated = select(Escalation.id).where(Escalation.thread_id == threads.c.id)
    resolved = exists(escalated.where(Escalation.resolution.in_(RESOLVED)))
    # FALSE AND NULL is FALSE: a question with no accepted answer never reads as an agent's.
    agent_accepted = and_(
        has_accepted,
        or_(
            accepted.is_official.is_(True),
            and_(
                writer.id.is_not(None),
                or_(
                    writer.role.in_(Role.AGENTS),
                    writer.id.in_(granted_user_ids(brand_id, BrandRole.AGENTS)),
                ),
            ),
        ),
    )
    support = exists(
        escalated.where(
            or_(
                Escalation.resolution.in_(BY_SUPPORT),
                Escalation.status == EscalationStatus.HANDED_OFF,
            )
        )
    )
    is_solved = or_(has_accepted, resolved)
    by_crowd = and_(is_solved, not_(or_(agent_accepted, support)))
    row = db.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((is_solved, 1), else_=0)), 0),
            func.coalesce(func.sum(case((by_crowd, 1), else_=0)), 0),
        )
        .select_from(threads)
        .outerjoin(
            accepted,
            and_(
                accepted.id == threads.c.accepted_post_id,
                accepted.visibility == Visibility.VISIBLE,
            ),
        )
        .outerjoin(writer, writer.id == accepted.author_id)
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def _peer_answer_times(
    db: Session, brand_id: int, ids: list[int], period: InsightsFilter
) -> list[float]:
    """Seconds from each question to its first peer answer, for questions that have one."""
    threads = counted_threads(ids, period).subquery()
    first = func.min(Post.created_at)
    rows = db.execute(
        select(threads.c.created_at, first)
        .select_from(threads)
        .join(Post, Post.thread_id == threads.c.id)
        .join(User, User.id == Post.author_id)
        .where(
            Post.is_question.is_(False),
            Post.visibility == Visibility.VISIBLE,
            Post.is_official.is_(False),
            User.role.not_in(Role.STAFF),
            ~holds_role_in(brand_id, BrandRole.STAFF),  # nor the brand's own staff
            or_(threads.c.author_id.is_(None), Post.author_id != threads.c.author_id),
        )
        .group_by(threads.c.id, threads.c.created_at)
    ).all()
    # An imported answer may carry a time before its question's: never a negative wait.
    return [max((answered - asked).total_seconds(), 0.0) for asked, answered in rows]


def _community_escalations(db: Session, ids: list[int], period: InsightsFilter) -> Part:
    by_community = case((Escalation.resolution == Resolution.COMMUNITY, 1), else_=0)
    query = (
        select(func.count(), func.coalesce(func.sum(by_community), 0))
        .select_from(Escalation)
        .join(Thread, Thread.id == Escalation.thread_id)
        .where(
            _in_scope(ids),
            Escalation.created_at >= period.since,
            Escalation.created_at < period.until,
            Escalation.resolved_at.is_not(None),
            Escalation.resolution.in_(RESOLVED),
        )
    )
    resolved, community = db.execute(_in_language(query, period)).one()
    return part(int(community), int(resolved))


def _invitations(db: Session, ids: list[int], period: InsightsFilter) -> tuple[int, int, int]:
    """(sent, answered, answered in time) in one query."""
    in_time = case((ExpertInvitation.answered_in_time.is_(True), 1), else_=0)
    query = (
        select(
            func.count(ExpertInvitation.id),
            func.count(ExpertInvitation.answered_at),
            func.coalesce(func.sum(in_time), 0),
        )
        .join(Thread, Thread.id == ExpertInvitation.thread_id)
        .where(
            _in_scope(ids),
            ExpertInvitation.invited_at >= period.since,
            ExpertInvitation.invited_at < period.until,
        )
    )
    sent, answered, timely = db.execute(_in_language(query, period)).one()
    return int(sent), int(answered), int(timely)


def _top_contributors(
    db: Session, brand_id: int, ids: list[int], period: InsightsFilter
) -> list[Contributor]:
    answers = func.count(Post.id)
    accepted = func.coalesce(func.sum(case((Thread.accepted_post_id == Post.id, 1), else_=0)), 0)
    query = (
        select(User.id, User.username, User.display_name, answers, accepted)
        .select_from(Post)
        .join(Thread, Thread.id == Post.thread_id)
        .join(User, User.id == Post.author_id)
        .where(
            _in_scope(ids),
            Post.is_question.is_(False),
            Post.visibility == Visibility.VISIBLE,
            Post.is_official.is_(False),
            Post.created_at >= period.since,
            Post.created_at < period.until,
            User.role.not_in(Role.STAFF),
            ~holds_role_in(brand_id, BrandRole.STAFF),  # nor the brand's own staff
            # Answers to their own questions help nobody else.
            or_(Thread.author_id.is_(None), Thread.author_id != Post.author_id),
        )
        .group_by(User.id, User.username, User.display_name)
        # Lower-cased so both databases order names alike whatever their collation.
        .order_by(answers.desc(), func.lower(User.display_name), User.id)
        .limit(TOP_CONTRIBUTORS)
    )
    return [
        Contributor(int(user_id), str(username), str(name), int(count), int(taken))
        for user_id, username, name, count, taken in db.execute(_in_language(query, period))
    ]


# --- CSV -------------------------------------------------------------------------------------

CROWD_COLUMNS = (
    "section", "label", "count", "out_of", "share", "median_seconds", "p90_seconds",
    "answers", "accepted",
)  # fmt: skip


def crowd_rows(panel: CrowdPanel) -> list[dict[str, object]]:
    """One row per figure, then one per top contributor (label: the display name)."""
    rows: list[dict[str, object]] = [{"section": "questions", "count": panel.questions}]
    for section, value in (
        ("solved_without_agent", panel.solved_without_agent),
        ("peer_answered", panel.peer_answered),
        ("community_escalations", panel.community_escalations),
        ("invitations_answered", panel.invitations_answered),
        ("invitations_in_time", panel.invitations_in_time),
    ):
        rows.append(
            {"section": section, "count": value.count, "out_of": value.out_of,
             "share": value.share}
        )  # fmt: skip
    time = panel.peer_answer_time
    rows.append(
        {"section": "peer_answer_time", "count": time.count, "median_seconds": time.median,
         "p90_seconds": time.p90}
    )  # fmt: skip
    rows += [
        {"section": "contributor", "label": person.name, "answers": person.answers,
         "accepted": person.accepted}
        for person in panel.top_contributors
    ]  # fmt: skip
    return rows
