"""Known issues on the ask form: the brand's open issues that the typed title reports are shown
first among the suggestions, and every signed-in visitor's session records which issues it
matched and whether they were shown (KnownIssueImpression): held-out sessions match too but
are shown nothing, which is what the announcement's deflection is measured against
(crowdservice.insights.announcements)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.db import insert_missing
from community.core.models import Brand
from crowdservice.known_issues.matching import match_issues
from crowdservice.known_issues.models import KnownIssue, KnownIssueImpression
from crowdservice.known_issues.service import open_issues
from kb.models import AskArm, AskSession


def ask_form_issues(
    db: Session,
    brand: Brand,
    title: str,
    *,
    arm: AskArm,
    session: AskSession | None,
    default_model: str,
    now: datetime,
) -> list[KnownIssue]:
    """The issues to show above the suggestions (none in the holdout), recording the session's
    impressions once per issue. Matching needs no Meilisearch: the issue still shows when
    search is down."""
    if arm == AskArm.HOLDOUT and session is None:
        return []  # a visitor not signed in: nothing shown, nothing to record
    issues = open_issues(db, brand.id)
    matched = [
        match.issue
        for match in match_issues(issues, title, brand=brand, default_model=default_model)
    ]
    if session is not None and matched:
        _record_impressions(db, session, matched, shown=arm == AskArm.SUGGESTIONS, now=now)
    return matched if arm == AskArm.SUGGESTIONS else []


def _record_impressions(
    db: Session, session: AskSession, issues: list[KnownIssue], *, shown: bool, now: datetime
) -> None:
    # The title is typed a key at a time: only issues new to the session are written, so the
    # requests that follow read and write nothing more.
    recorded = set(
        db.scalars(
            select(KnownIssueImpression.known_issue_id).where(
                KnownIssueImpression.ask_session_id == session.id,
                KnownIssueImpression.known_issue_id.in_([issue.id for issue in issues]),
            )
        )
    )
    # Race-safe: two requests of one session may match the same issue at once; the primary
    # key (issue, session) keeps one row and the second insert skips it.
    insert_missing(
        db,
        KnownIssueImpression,
        [
            {
                "known_issue_id": issue.id,
                "ask_session_id": session.id,
                "shown": shown,
                "created_at": now,
            }
            for issue in issues
            if issue.id not in recorded
        ],
    )
