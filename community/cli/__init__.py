"""The `community` command: every command and group is registered here, in the order `--help`
lists them; each lives in the module of its kind (database, processes, search, importing).
Expected failures print one line (`error: ...`) and exit 1.

Importing this package is light: each command imports what it runs when it runs. That matters
beyond start-up time: `community serve --workers N` stays a small supervisor, and each web
process it starts, which re-imports this script before the site (multiprocessing's spawn), loads
only the site (docs/serving.md).
"""

from __future__ import annotations

import logging
import sys

import typer

from community.cli import brands, database, importing, members, processes, search, staff

app = typer.Typer(
    help="Run and manage the support community.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
meili_app = typer.Typer(help="The managed local Meilisearch (used when MEILI_URL is not set).")
app.add_typer(meili_app, name="meili")
import_app = typer.Typer(help="Bring an existing community in.", no_args_is_help=True)
app.add_typer(import_app, name="import")
search_app = typer.Typer(help="This site's Meilisearch access.", no_args_is_help=True)
app.add_typer(search_app, name="search")
vectors_app = typer.Typer(help="Semantic search's document vectors.", no_args_is_help=True)
app.add_typer(vectors_app, name="vectors")
badges_app = typer.Typer(help="Members' badges.", no_args_is_help=True)
app.add_typer(badges_app, name="badges")
brand_app = typer.Typer(help="Brands: create, edit, archive, list.", no_args_is_help=True)
app.add_typer(brand_app, name="brand")
forum_app = typer.Typer(help="A brand's forums: create, archive.", no_args_is_help=True)
app.add_typer(forum_app, name="forum")
staff_app = typer.Typer(help="Staff per brand: grant, revoke, list.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")

app.command(name="migrate")(database.migrate_database)
app.command(name="seed-demo")(database.seed_demo)
app.command(name="create-user")(database.create_user)
app.command(name="two-factor-reset")(members.two_factor_reset)
app.command(name="serve")(processes.serve)
app.command(name="worker")(processes.worker)
app.command(name="model-server")(processes.model_server)
app.command(name="reindex")(search.reindex)
app.command(name="rescore")(search.rescore)
import_app.command("stackexchange")(importing.import_stackexchange)
app.command(name="seed")(importing.seed)
app.command(name="search-model")(search.search_model_command)
search_app.command("keys")(search.keys)
vectors_app.command("status")(search.vectors_status)
meili_app.command("status")(processes.meili_status)
meili_app.command("start")(processes.meili_start)
badges_app.command("backfill")(members.badges_backfill)
brand_app.command("create")(brands.create_brand)
brand_app.command("edit")(brands.edit_brand)
brand_app.command("archive")(brands.archive_brand)
brand_app.command("unarchive")(brands.unarchive_brand)
brand_app.command("list")(brands.list_brands)
staff_app.command("grant")(staff.grant)
staff_app.command("revoke")(staff.revoke)
staff_app.command("list")(staff.list_staff)
forum_app.command("create")(brands.create_forum)
forum_app.command("archive")(brands.archive_forum)
forum_app.command("unarchive")(brands.unarchive_forum)


@app.callback()
def _subscribe(context: typer.Context) -> None:
    # Imports, the demo data and the worker publish posts: moderation and crowd-service listen.
    # `serve` subscribes in the app factory, in the process that serves (not in a supervisor);
    # the model server publishes nothing.
    if context.invoked_subcommand not in ("serve", "model-server"):
        from community.wiring import subscribe_all

        subscribe_all()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
