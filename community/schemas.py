"""Pydantic models for forms and the JSON API. Inputs forbid unknown fields (no mass assignment);
outputs never carry e-mail addresses or password hashes except the viewer's own e-mail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from community.models import Role


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


class PreferencesIn(Input):
    display_name: Text = Field(default="", max_length=120)
    locale: Literal["", "en", "es"] = ""


class RoleChangeIn(Input):
    role: Role


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
