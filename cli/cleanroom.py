"""`rmn cleanroom` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="cleanroom", no_args_is_help=True)
