"""`rmn rag` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="rag", no_args_is_help=True)
