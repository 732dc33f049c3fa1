"""Preparing the database: migrations, the demo brand, accounts. Each command imports what it
runs (community.cli's docstring says why)."""

from __future__ import annotations

from typing import Annotated

import typer

from community.cli.terminal import console, friendly_errors
from community.core.models import Role
from community.core.settings import Settings


@friendly_errors
def migrate_database() -> None:
    """Apply the database migrations (alembic upgrade head): says whether the database was
    created, upgraded (from which version to which) or already up to date."""
    from community.core import migrate as migrations

    settings = Settings()
    console.print(migrations.upgrade(settings.sqlalchemy_url).describe())


@friendly_errors
def seed_demo(
    force: Annotated[
        bool, typer.Option(help="Load the demo even if the database already has a brand.")
    ] = False,
) -> None:
    """Load the demo brand (Acme) once; does nothing if the database already has a brand."""
    from community.core.auth import Passwords
    from community.core.db import make_engine, make_session_factory
    from community.demo import has_any_brand
    from community.demo import seed_demo as load_demo

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            if has_any_brand(db) and not force:
                console.print("demo data: already loaded (the database has a brand)")
                return
            brand = load_demo(db, Passwords(settings))
            db.commit()
            console.print(f"demo data: loaded brand {brand.name!r}")
    finally:
        engine.dispose()


@friendly_errors
def create_user(
    username: Annotated[str, typer.Option(help="Login name")],
    email: Annotated[str, typer.Option(help="E-mail address")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="COMMUNITY_USER_PASSWORD",
            help="Asked for when not given (or COMMUNITY_USER_PASSWORD)",
        ),
    ],
    role: Annotated[Role, typer.Option(help="member, moderator, agent or admin")] = Role.MEMBER,
    display_name: Annotated[str, typer.Option(help="Shown name")] = "",
) -> None:
    """Create an account (for example the first admin)."""
    from community.core import service
    from community.core.auth import Passwords
    from community.core.db import make_engine, make_session_factory
    from community.core.schemas import RegistrationIn

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            data = RegistrationIn(
                username=username, email=email, password=password, display_name=display_name
            )
            # The operator vouches for the address: the account is confirmed.
            user = service.register(db, Passwords(settings), data, role=role, confirmed=True)
            db.commit()
            console.print(f"created {user.role.value} {user.username!r} (id {user.id})")
    finally:
        engine.dispose()
