"""The saved replies' JSON: what admins send, what agents and admins get back. Field rules
(lengths, languages, placeholders, the article) are the service's, so the API and the form
answer with the same messages."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from crowdservice.saved_replies.models import SuggestedAction

_MAX_ID = 2**63 - 1


class SavedReplyIn(BaseModel):
    """A new saved reply. Placeholders: {author_name}, {thread_title}, {kb_link}, {agent_name}."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(max_length=1000, description="1 to 120 characters, unique per language")
    locale: str = Field(max_length=8, description='The language it is written in: "en" or "es"')
    body: str = Field(max_length=60_000, description="Markdown with placeholders, 30,000 at most")
    action: str = Field(default=SuggestedAction.ANSWER.value, max_length=20)
    kb_article_id: int | None = Field(default=None, ge=1, le=_MAX_ID)


class SavedReplyPatch(BaseModel):
    """The fields to change; `archived` archives (true) or brings back (false)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, max_length=1000)
    locale: str | None = Field(default=None, max_length=8)
    body: str | None = Field(default=None, max_length=60_000)
    action: str | None = Field(default=None, max_length=20)
    kb_article_id: int | None = Field(default=None, ge=1, le=_MAX_ID)
    archived: bool | None = None


class SavedReplyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    brand_id: int
    title: str
    locale: str
    body: str
    action: SuggestedAction
    kb_article_id: int | None
    usage_count: int
    last_used_at: datetime | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
