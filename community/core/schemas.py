"""Pydantic models for forms and the JSON API. Inputs forbid unknown fields (no mass assignment);
outputs never carry e-mail addresses or password hashes except the viewer's own e-mail."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from community.core.models import (
    EmailPreference,
    NotificationKind,
    Role,
    ThreadKind,
    ThreadStatus,
    Visibility,
)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


# Text typed by people: PostgreSQL cannot store NUL, and no person types one.
Text = Annotated[str, AfterValidator(_no_nul)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RegistrationIn(Input):
    username: Text = Field(min_length=1, max_length=64)
    email: Text = Field(min_length=1, max_length=254)
    password: Text = Field(min_length=1, max_length=1024)
    display_name: Text = Field(default="", max_length=120)


class LoginIn(Input):
    login: Text = Field(min_length=1, max_length=254, description="Username or e-mail address")
    password: Text = Field(min_length=1, max_length=1024)


class PasswordChangeIn(Input):
    current_password: Text = Field(min_length=1, max_length=1024)
    new_password: Text = Field(min_length=1, max_length=1024)
    revoke_api_tokens: bool = False


class PreferencesIn(Input):
    display_name: Text = Field(default="", max_length=120)
    locale: Literal["", "en", "es"] = ""
    email_notifications: EmailPreference = EmailPreference.IMMEDIATE
    # Expert routing; None leaves the stored choice alone (a form without these fields).
    expert_invitations: bool | None = None
    away_until: date | None = None


class RoleChangeIn(Input):
    role: Role


Tag = Annotated[str, Field(max_length=40)]


class AskIn(Input):
    title: Text = Field(max_length=300)
    body: Text = Field(max_length=40_000)
    kind: ThreadKind = ThreadKind.QUESTION
    tags: list[Tag] = Field(default_factory=list, max_length=10)


class AnswerIn(Input):
    body: Text = Field(max_length=40_000)


class EditIn(Input):
    body: Text = Field(max_length=40_000)
    title: Text | None = Field(default=None, max_length=300)
    tags: list[Tag] | None = Field(default=None, max_length=10)
    kind: ThreadKind | None = None
    reason: Text | None = Field(default=None, max_length=300)
    # Staff only: the edit removed personal data, so the earlier versions' text is hidden from
    # everyone else (see community.revisions).
    redact_earlier: bool = False


class TagsIn(Input):
    tags: list[Tag] = Field(max_length=10)


class VoteIn(Input):
    value: Literal[-1, 0, 1]


class TokenIn(Input):
    name: Text = Field(min_length=1, max_length=60)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UserOut(Output):
    id: int
    username: str
    display_name: str
    role: Role
    reputation: int
    trust_level: int
    created_at: datetime


class MeOut(UserOut):
    email: str | None
    locale: str | None


class BrandOut(Output):
    id: int
    slug: str
    name: str
    description: str
    default_locale: str


class ForumOut(Output):
    id: int
    slug: str
    name: str
    description: str
    position: int
    thread_count: int
    post_count: int
    last_activity_at: datetime | None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: object | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)


class AuthorOut(Output):
    id: int
    username: str
    display_name: str
    reputation: int
    role: Role


class TagOut(Output):
    name: str


class ThreadOut(Output):
    id: int
    forum_id: int
    title: str
    kind: ThreadKind
    status: ThreadStatus
    locale: str
    author: AuthorOut | None
    tags: list[TagOut]
    score: int
    reply_count: int
    view_count: int
    helpful_count: int
    accepted_post_id: int | None
    created_at: datetime
    last_activity_at: datetime
    locked: bool = False
    # Only staff (and authors, for their own pending posts) ever receive anything but "visible".
    visibility: Visibility = Visibility.VISIBLE


class PostOut(Output):
    id: int
    thread_id: int
    author: AuthorOut | None
    is_question: bool
    is_official: bool
    body_source: str
    body_html: str
    score: int
    upvotes: int
    downvotes: int
    accepted: bool = False
    visibility: Visibility = Visibility.VISIBLE
    created_at: datetime
    edited_at: datetime | None


class ThreadDetailOut(ThreadOut):
    question: PostOut
    answers: list[PostOut]
    my_votes: dict[int, int] = Field(default_factory=dict)
    helped: bool = False
    watching: bool = False


class VoteOut(BaseModel):
    post_id: int
    score: int
    upvotes: int
    downvotes: int
    my_vote: int


class HelpfulOut(BaseModel):
    thread_id: int
    helpful_count: int
    helped: bool


class RevisionOut(Output):
    number: int
    editor: AuthorOut | None
    title: str | None
    tags: str | None
    # "Redacted by staff" (in the reader's language) when staff hid this version's text;
    # staff see the text, with `redacted` true.
    body_source: str
    reason: str | None
    created_at: datetime
    redacted: bool = False


class RedactIn(Input):
    reason: Text | None = Field(default=None, max_length=300)


class NotificationOut(Output):
    id: int
    kind: NotificationKind
    actor: AuthorOut | None
    thread_id: int | None
    post_id: int | None
    data: dict[str, object]
    text: str = Field(
        default="", description="The notification as a sentence, in the caller's language."
    )
    created_at: datetime
    read_at: datetime | None


class UnreadOut(BaseModel):
    unread: int


class TokenOut(Output):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None


class NewTokenOut(TokenOut):
    token: str = Field(description="Shown once; store it now.")
