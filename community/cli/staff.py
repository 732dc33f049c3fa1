"""Staff per brand from the command line: `community staff grant|revoke|list`. The operator
acts without an account (no permission checks, audited without an actor), e.g. to name a new
brand's first admin. Each command imports what it runs (community.cli's docstring says why)."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy.orm import Session

from community.cli.terminal import CommandError, console, friendly_errors
from community.core.models import Brand
from community.core.settings import Settings
from community.core.workspace_models import BrandRole

BrandArg = Annotated[str, typer.Argument(help="The brand's slug")]
UserArg = Annotated[str, typer.Argument(help="The member's username")]
RoleArg = Annotated[BrandRole, typer.Argument(help="moderator, agent or brand_admin")]


def _brand(db: Session, slug: str) -> Brand:
    from community.core import service
    from community.core.errors import NotFound

    try:
        return service.get_brand(db, slug)
    except NotFound:
        raise CommandError(f"no brand {slug!r}") from None


def _change(brand_slug: str, username: str, role: BrandRole, *, granting: bool) -> None:
    from community import brand_staff
    from community.core.db import make_engine, make_session_factory

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            brand = _brand(db, brand_slug)
            person = brand_staff.find_member(db, username)
            change = brand_staff.grant if granting else brand_staff.revoke
            changed = change(db, None, brand, person, role)
            db.commit()
    finally:
        engine.dispose()
    verb = ("granted" if granting else "revoked") if changed else "unchanged"
    console.print(f"{verb}: {person.username} {role.value} of {brand.slug}")


@friendly_errors
def grant(brand: BrandArg, username: UserArg, role: RoleArg) -> None:
    """Give a member a role in one brand."""
    _change(brand, username, role, granting=True)


@friendly_errors
def revoke(brand: BrandArg, username: UserArg, role: RoleArg) -> None:
    """Take a member's role in one brand back."""
    _change(brand, username, role, granting=False)


@friendly_errors
def list_staff(brand: BrandArg) -> None:
    """The brand's staff and their roles."""
    from community import brand_staff
    from community.core.db import make_engine, make_session_factory

    settings = Settings()
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            found = _brand(db, brand)
            for member in brand_staff.brand_staff(db, found):
                roles = ", ".join(sorted(role.value for role in member.roles))
                console.print(f"{member.user.username}\t{roles}")
    finally:
        engine.dispose()
