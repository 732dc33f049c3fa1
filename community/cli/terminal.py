"""What every command shares: the error console, the one-line `error: ...` for expected failures
(exit 1), and the progress bar. Light to import (community.cli's docstring says why)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

console = Console(stderr=True)
P = ParamSpec("P")
R = TypeVar("R")


class CommandError(Exception):
    """An expected failure with a message for the person at the terminal."""


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def friendly_errors(command: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CommandError as exc:
            raise _fail(str(exc)) from None
        except Exception as exc:
            message = _expected_failure(exc)
            if message is None:
                raise
            raise _fail(message) from None

    return wrapper


def _expected_failure(exc: Exception) -> str | None:
    """The line to print for a failure the person at the terminal can act on, else None. The
    classes are imported once a command has failed, not with the CLI."""
    from sqlalchemy.exc import OperationalError, SQLAlchemyError

    from community.core import meili
    from community.core.errors import FormErrors
    from community.importing.service import ImportRefused
    from community.importing.stackexchange import DumpError

    if isinstance(exc, meili.MeiliUnavailable | DumpError | ImportRefused):
        return str(exc)
    if isinstance(exc, FormErrors):
        return "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
    if isinstance(exc, OperationalError):
        return f"cannot reach the database: {exc.orig}"
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {exc}"
    return None


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    )
