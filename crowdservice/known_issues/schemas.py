"""The JSON API's shapes for known issues (crowdservice.routes_known_issues serves them)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from community.core.schemas import Input, Output, Text
from crowdservice.known_issues.models import KnownIssueStatus


class KnownIssueUpdateOut(Output):
    status: KnownIssueStatus
    body: str
    body_html: str
    created_at: datetime


class KnownIssueOut(Output):
    id: int
    title: str
    summary: str
    summary_html: str
    status: KnownIssueStatus
    forum_ids: list[int]
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    fixed_at: datetime | None
    closed_at: datetime | None
    updates: list[KnownIssueUpdateOut]


class KnownIssueStaffOut(KnownIssueOut):
    match_terms: list[str]
    article_id: int | None


class KnownIssueIn(Input):
    title: Text = Field(max_length=1000)
    summary: Text = Field(default="", max_length=50_000)
    status: Text = Field(default="investigating", max_length=40)
    match_terms: list[Text] = Field(default_factory=list, max_length=100)
    forum_ids: list[int] = Field(default_factory=list, max_length=100)
    tags: list[Text] = Field(default_factory=list, max_length=100)


class KnownIssueUpdateIn(Input):
    status: Text = Field(max_length=40)
    body: Text = Field(default="", max_length=20_000)
