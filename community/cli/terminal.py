"""What every command shares: the error console, the one-line `error: ...` for expected failures
(exit 1), and the progress bar."""

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
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from community.core import meili
from community.core.errors import FormErrors
from community.importing.service import ImportRefused
from community.importing.stackexchange import DumpError

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
        except meili.MeiliUnavailable as exc:
            raise _fail(str(exc)) from None
        except (DumpError, ImportRefused) as exc:
            raise _fail(str(exc)) from None
        except FormErrors as exc:
            raise _fail("; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
        except OperationalError as exc:
            raise _fail(f"cannot reach the database: {exc.orig}") from None
        except SQLAlchemyError as exc:
            raise _fail(f"database error: {exc}") from None

    return wrapper


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
    )
