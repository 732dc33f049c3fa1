"""Running Alembic from code: the CLI, `make run` and the tests all go through here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from community.core.db import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on a '%' in a password.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


@dataclass(frozen=True, slots=True)
class Upgrade:
    """The schema version before and after an upgrade; None before means an empty database."""

    before: str | None
    after: str | None

    def describe(self) -> str:
        """What happened, in a line for the person who ran it."""
        if self.before is None and self.after is not None:
            return f"database created (schema version {self.after})"
        if self.before != self.after:
            return f"database upgraded from {self.before} to {self.after}"
        return f"database is up to date (schema version {self.after})"


def current_version(database_url: str) -> str | None:
    """The schema version a database is at, None when no migration has run on it yet."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            heads = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    return ", ".join(sorted(heads)) or None


def upgrade(database_url: str, revision: str = "head") -> Upgrade:
    before = current_version(database_url)
    command.upgrade(alembic_config(database_url), revision)
    return Upgrade(before=before, after=current_version(database_url))


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise if the models and the migrations disagree (a migration is missing)."""
    command.check(alembic_config(database_url))
