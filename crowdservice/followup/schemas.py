"""JSON shapes of the private follow-up API. Messages go only to the customer and staff (the
loaders decide); authors are shown as everywhere else, without e-mail addresses."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from community.core.schemas import AuthorOut, Input, Output, Text


class PrivateMessageIn(Input):
    body: Text = Field(max_length=40_000)


class PrivateCloseIn(Input):
    public_outcome: Text = Field(default="", max_length=40_000)


class PrivateMessageOut(Output):
    id: int
    author: AuthorOut | None
    body: str
    body_html: str
    created_at: datetime


class PrivateConversationOut(Output):
    id: int
    thread_id: int
    thread_title: str
    customer: AuthorOut | None
    opened_at: datetime
    last_message_at: datetime
    closed_at: datetime | None
    outcome_post_id: int | None
    messages: list[PrivateMessageOut]
