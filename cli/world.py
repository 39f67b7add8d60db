"""`rmn world` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="world", no_args_is_help=True)
