"""Brands and forums from the command line: the same services and checks as the admin pages
(community.brand_admin, community.forum_admin), run as the operator (trusted like a site admin,
audited as the command line). Each command imports what it runs (community.cli's docstring says
why); a mistake is one `error: field: message` line and exit 1, and changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from community.cli.terminal import CommandError, console, friendly_errors

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from community.core.models import Brand

SlugArgument = Annotated[str, typer.Argument(help="The brand's slug (its /b/<slug> address)")]
Language = Annotated[str | None, typer.Option("--language", help="Default language: en or es")]
Description = Annotated[str | None, typer.Option(help="A line about the brand or forum")]
ContactEmail = Annotated[str | None, typer.Option(help="Where people can write to the brand")]


@contextmanager
def _session() -> Iterator[Session]:
    from community.core.db import make_engine, make_session_factory
    from community.core.settings import Settings

    engine = make_engine(Settings().sqlalchemy_url)
    try:
        with make_session_factory(engine)() as db:
            yield db
    finally:
        engine.dispose()


def _parsed(model: Any, fields: dict[str, Any]) -> Any:
    """The input model from the options given (None: not given, left as it is)."""
    from community.core.forms import parse_form

    return parse_form(model, {name: value for name, value in fields.items() if value is not None})


def _brand(db: Session, slug: str) -> Brand:
    from community.brand_admin import COMMAND_LINE, access_managed_brand
    from community.core.errors import NotFound

    try:
        return access_managed_brand(db, COMMAND_LINE, slug)
    except NotFound:
        raise CommandError(f"no brand {slug!r}") from None


def _changed(done: bool, yes: str, no: str) -> None:
    console.print(yes if done else no, highlight=False)


@friendly_errors
def create_brand(
    slug: Annotated[str, typer.Option(help="Its address: /b/<slug> (a-z, 0-9, -)")],
    name: Annotated[str, typer.Option(help="The brand's name")],
    language: Language = None,
    description: Description = None,
    contact_email: ContactEmail = None,
) -> None:
    """Create a brand (it has no forum until you add one with `community forum create`)."""
    from community.brand_admin import COMMAND_LINE, do_create_brand
    from community.brand_schemas import BrandIn

    fields = {"slug": slug, "name": name, "default_locale": language}
    fields |= {"description": description, "contact_email": contact_email}
    data = _parsed(BrandIn, fields)
    with _session() as db:
        brand = do_create_brand(db, COMMAND_LINE, data)
        db.commit()
        console.print(f"created brand {brand.slug!r} (id {brand.id})", highlight=False)


@friendly_errors
def edit_brand(
    slug: SlugArgument,
    name: Annotated[str | None, typer.Option(help="The brand's name")] = None,
    language: Language = None,
    description: Description = None,
    contact_email: ContactEmail = None,
    solution_threshold: Annotated[
        float | None, typer.Option(help="Usefulness (0-100) that makes a community solution")
    ] = None,
    article_threshold: Annotated[
        float | None, typer.Option(help="Usefulness (0-100) that suggests an article")
    ] = None,
    review_period_days: Annotated[
        int | None, typer.Option(help="Days before an article comes up for review")
    ] = None,
) -> None:
    """Change a brand's settings (only the options given)."""
    from community.brand_admin import COMMAND_LINE, do_update_brand
    from community.brand_schemas import BrandPatch

    fields = {
        "name": name, "default_locale": language, "description": description,
        "contact_email": contact_email, "solution_threshold": solution_threshold,
        "article_threshold": article_threshold, "review_period_days": review_period_days,
    }  # fmt: skip
    data = _parsed(BrandPatch, fields)
    with _session() as db:
        brand = _brand(db, slug)
        done = do_update_brand(db, COMMAND_LINE, brand, data)
        db.commit()
        _changed(done, f"brand {slug!r} saved", f"brand {slug!r}: nothing to change")


def _set_archived(slug: str, archived: bool) -> None:
    from community.brand_admin import COMMAND_LINE, do_set_brand_archived

    with _session() as db:
        done = do_set_brand_archived(db, COMMAND_LINE, _brand(db, slug), archived)
        db.commit()
    state = "archived" if archived else "back (not archived)"
    _changed(done, f"brand {slug!r} is {state}", f"brand {slug!r} was already {state}")


@friendly_errors
def archive_brand(slug: SlugArgument) -> None:
    """Archive a brand: its pages are gone for everyone but site admins; nothing is deleted."""
    _set_archived(slug, True)


@friendly_errors
def unarchive_brand(slug: SlugArgument) -> None:
    """Bring an archived brand back, as it was."""
    _set_archived(slug, False)


@friendly_errors
def list_brands() -> None:
    """Every brand (archived ones marked), one a line: slug, name, language, forums."""
    from sqlalchemy import func, select

    from community.core.models import Brand, Forum

    with _session() as db:
        forums = dict(
            db.execute(
                select(Forum.brand_id, func.count())
                .where(Forum.archived_at.is_(None))
                .group_by(Forum.brand_id)
            ).all()
        )
        brands = db.scalars(select(Brand).order_by(Brand.slug)).all()
        for brand in brands:
            mark = "  [archived]" if brand.archived_at else ""
            count = forums.get(brand.id, 0)
            typer.echo(f"{brand.slug}\t{brand.name}\t{brand.default_locale}\t{count} forums{mark}")
        if not brands:
            console.print("no brand yet: community brand create --slug ... --name ...")


@friendly_errors
def create_forum(
    brand_slug: SlugArgument,
    slug: Annotated[str, typer.Option(help="Its address: /b/<brand>/<slug> (a-z, 0-9, -)")],
    name: Annotated[str, typer.Option(help="The forum's name")],
    description: Description = None,
    access: Annotated[
        str | None, typer.Option(help="Who can read it: public, verified or staff")
    ] = None,
) -> None:
    """Add a forum to a brand, last in its list."""
    from community.brand_admin import COMMAND_LINE
    from community.brand_schemas import ForumIn
    from community.forum_admin import do_create_forum

    fields = {"slug": slug, "name": name, "description": description, "access": access}
    data = _parsed(ForumIn, fields)
    with _session() as db:
        forum = do_create_forum(db, COMMAND_LINE, _brand(db, brand_slug), data)
        db.commit()
        console.print(f"created forum {brand_slug}/{forum.slug} (id {forum.id})", highlight=False)


def _forum_command(archived: bool) -> Callable[[str, str], None]:
    def command(
        brand_slug: SlugArgument,
        forum_slug: Annotated[str, typer.Argument(help="The forum's slug")],
    ) -> None:
        from community.brand_admin import COMMAND_LINE
        from community.core.errors import NotFound
        from community.forum_admin import access_managed_forum, do_set_forum_archived

        with _session() as db:
            try:
                forum = access_managed_forum(db, COMMAND_LINE, _brand(db, brand_slug), forum_slug)
            except NotFound:
                raise CommandError(f"brand {brand_slug!r} has no forum {forum_slug!r}") from None
            done = do_set_forum_archived(db, COMMAND_LINE, forum, archived)
            db.commit()
        name, state = f"forum {brand_slug}/{forum_slug}", "archived" if archived else "back"
        _changed(done, f"{name} is {state}", f"{name} was already {state}")

    command.__doc__ = (
        "Archive a forum: it leaves the list and takes no new threads; its threads stay."
        if archived
        else "Bring an archived forum back, last in the brand's list."
    )
    return friendly_errors(command)


archive_forum = _forum_command(True)
unarchive_forum = _forum_command(False)
