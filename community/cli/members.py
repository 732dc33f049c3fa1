"""Members' commands: badges. Each command imports what it runs (community.cli's docstring
says why)."""

from __future__ import annotations

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
