"""Pydantic models for KB forms and the KB/search JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from community.core.schemas import Input, Output, Tag, Text
from kb.models import ArticleStatus, CandidateStatus


class ArticleIn(Input):
    title: Text = Field(max_length=300)
    summary: Text = Field(default="", max_length=500)
    body: Text = Field(max_length=60_000)
    tags: list[Tag] = Field(default_factory=list, max_length=10)
    # The editor always chooses; left out (the API), the text's language is detected.
    locale: Literal["en", "es"] | None = None
    forum_id: int | None = None
    note: Text | None = Field(default=None, max_length=300)


class ArticleCreateIn(ArticleIn):
    source_thread_id: int | None = None
    credited_post_ids: list[int] = Field(default_factory=list, max_length=20)


class StatusIn(Input):
    status: ArticleStatus


class CreditOut(Output):
    user_id: int | None
    post_id: int | None


class ArticleOut(Output):
    id: int
    title: str
    summary: str
    body_source: str
    body_html: str
    tags: str
    locale: str
    status: ArticleStatus
    obsolete: bool
    source_thread_id: int | None
    forum_id: int | None
    owner_id: int | None
    last_verified_at: datetime | None
    published_at: datetime | None
    updated_at: datetime
    view_count: int
    credits: list[CreditOut]


class ArticleStaffOut(ArticleOut):
    helpful_yes: int
    helpful_no: int


class CandidateOut(Output):
    id: int
    thread_id: int
    score: float
    reasons: dict[str, object]
    status: CandidateStatus


class SearchHitOut(BaseModel):
    kind: str
    entry_id: int
    title: str
    url: str
    snippet_html: str
    tags: list[str]
    locale: str


class FacetOut(BaseModel):
    name: str
    values: list[tuple[str, int, bool]]


class SearchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    query: str
    scope: str
    total: int
    page: int
    total_pages: int
    degraded: bool
    hits: list[SearchHitOut]
    facets: list[FacetOut]


class HttpEmbedderIn(Input):
    """A brand's own embedding service. `authorization` is the Authorization header's value:
    omitted or null keeps the one stored, "" removes it; it is never sent back."""

    url: Text = Field(max_length=2000)
    dimensions: int
    request_format: Literal["texts", "openai"] = "texts"
    response_path: Text | None = Field(default=None, max_length=300)
    model: Text | None = Field(default=None, max_length=300)
    timeout_seconds: float = 5.0
    batch_size: int = 64
    allow_private: bool = False
    authorization: Text | None = Field(default=None, max_length=4000)


class SearchModelIn(Input):
    """`model`: "auto", "use-multilingual", "minilm", "http" (with `http`), "off", or null for
    the site's default (SEARCH_MODEL)."""

    model: Text | None = Field(max_length=40)
    http: HttpEmbedderIn | None = None


class HttpEmbedderOut(BaseModel):
    url: str
    dimensions: int
    request_format: str = "texts"
    response_path: str | None = None
    model: str | None = None
    timeout_seconds: float = 5.0
    batch_size: int = 64
    allow_private: bool = False


class VectorCoverageOut(BaseModel):
    models: list[str]
    documents: int
    with_vectors: int
    complete: bool


class SearchModelOut(BaseModel):
    model: str | None = Field(description="The brand's choice; null: the site's default")
    site_default: str
    embedders: list[str] = Field(description="The embedders of the brand's indexes")
    http: HttpEmbedderOut | None
    authorization_set: bool = Field(description="Whether an Authorization header is stored")
    coverage: VectorCoverageOut
