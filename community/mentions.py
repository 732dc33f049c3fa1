"""@username mentions: found in plain text (never in code or inside another link), linked to
the profile, and returned so the caller can notify the people mentioned. Names that match no
account stay plain text."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from community.core.markdown import MAX_MENTIONS, mentioned_keys, parse, render_tokens
from community.core.models import User

__all__ = ["MAX_MENTIONS", "find_mentions", "render_with_mentions"]


def find_mentions(db: Session, source: str) -> list[User]:
    """The active accounts a text mentions, in order of first mention."""
    keys = mentioned_keys(parse(source))
    if not keys:
        return []
    users = {
        user.username_key: user
        for user in db.scalars(
            select(User).where(User.username_key.in_(keys), User.deactivated_at.is_(None))
        )
    }
    return [users[key] for key in keys if key in users]


def render_with_mentions(db: Session, source: str) -> tuple[str, list[User]]:
    """Safe HTML with known @names linked, and the users mentioned."""
    tokens = parse(source)
    keys = mentioned_keys(tokens)
    users: list[User] = []
    if keys:
        found = {
            user.username_key: user
            for user in db.scalars(
                select(User).where(User.username_key.in_(keys), User.deactivated_at.is_(None))
            )
        }
        users = [found[key] for key in keys if key in found]
    usernames = {user.username_key: user.username for user in users}
    return render_tokens(tokens, usernames), users
