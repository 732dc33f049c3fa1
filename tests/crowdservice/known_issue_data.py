"""Known issues as the publishing side stores them (its service is another branch's), and the
ask form's suggestions as a member's browser gets them: shared by the known-issue tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from crowdservice.known_issues.models import KnownIssue, KnownIssueStatus

SUGGEST = "/b/acme/kb/suggest"
ROUTER_ISSUE = "Router reboots every night at midnight"
ROUTER_SUMMARY = "Some routers restart at midnight after the last firmware update."


def known_issue(
    db: Session | None,
    brand_id: int,
    title: str,
    *,
    terms: list[str] | None = None,
    summary: str = "",
    forum_ids: list[int] | None = None,
    tags: list[str] | None = None,
    status: KnownIssueStatus = KnownIssueStatus.INVESTIGATING,
    closed: bool = False,
    issue_id: int | None = None,
) -> KnownIssue:
    """A known issue as the publishing side stores it (its service is another branch's)."""
    issue = KnownIssue(
        brand_id=brand_id,
        title=title,
        summary=summary,
        summary_html=f"<p>{summary}</p>" if summary else "",
        status=status,
        match_terms=terms or [],
        forum_ids=forum_ids or [],
        tags=tags or [],
        updated_at=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
        closed_at=datetime(2026, 12, 2, tzinfo=UTC) if closed else None,
    )
    if issue_id is not None:
        issue.id = issue_id
    if db is not None:
        db.add(issue)
        db.commit()
    return issue


def suggest(client: TestClient, title: str) -> str:
    page = client.get(SUGGEST, params={"title": title}, headers={"HX-Request": "true"})
    assert page.status_code == 200
    return page.text


def issue_links(html: str) -> list[str]:
    return re.findall(r'href="(/b/acme/known-issues/\d+)"', html)
