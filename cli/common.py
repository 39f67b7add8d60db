"""Shared plumbing for `rmn` subcommands: JSON or human output, user errors without tracebacks."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer

from tools.errors import RMNError

JsonOption = typer.Option(False, "--json", help="Print the result as JSON on stdout.")


def emit(result: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    """Print a command's result: JSON when asked, else the human rendering (or indented JSON)."""
    if as_json or human is None:
        typer.echo(json.dumps(result, indent=None if as_json else 2, default=str))
    else:
        typer.echo(human(result))


def fail(err: RMNError, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": err.to_dict()}, default=str))
    else:
        typer.echo(f"error: {err.message}", err=True)
    raise typer.Exit(code=2)


@contextmanager
def user_errors(as_json: bool) -> Iterator[None]:
    """Turn `RMNError` into a clear message and exit status 2; anything else is a bug and raises."""
    try:
        yield
    except RMNError as err:
        fail(err, as_json)


def progress_enabled() -> bool:
    """Progress bars go to stderr, and only when a person is watching."""
    return sys.stderr.isatty()
