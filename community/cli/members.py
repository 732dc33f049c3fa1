"""Members' commands: badges, a lost second factor. Each command imports what it runs
(community.cli's docstring says why)."""

from __future__ import annotations

from typing import Annotated

import typer

from community.cli.terminal import console, friendly_errors
from community.core.settings import Settings


@friendly_errors
def badges_backfill() -> None:
    """Award every badge to the members who have earned it already (existing and imported
    members), without notifications. Safe to run again: only what is new is added."""
    from community.core.db import make_engine, make_session_factory
    from community.members.badges import backfill

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            gained = backfill(db)
            db.commit()
    finally:
        engine.dispose()
    for badge, count in gained.items():
        console.print(f"{badge}: {count} awarded")


@friendly_errors
def two_factor_reset(
    username: Annotated[str, typer.Argument(help="The member's username")],
) -> None:
    """Turn off a member's two-factor sign-in (they lost their authenticator and recovery
    codes, or SECRET_KEY changed): they sign in with their password and set it up again."""
    from community import brand_staff
    from community.accounts import two_factor
    from community.core.db import make_engine, make_session_factory

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            member = brand_staff.find_member(db, username)  # a FormErrors line when unknown
            removed = two_factor.reset_by_operator(db, member)
            db.commit()
    finally:
        engine.dispose()
    if removed:
        console.print(f"two-factor sign-in turned off for {member.username}")
    else:
        console.print(f"{member.username} had no two-factor sign-in: unchanged")
