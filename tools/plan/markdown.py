"""Markdown primitives of the report: a table cell, a table, a sentence's first letter."""

from __future__ import annotations

from typing import Any


def cell(value: Any) -> str:
    """A value safe inside a Markdown table cell: one line, pipes and HTML escaped."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def upper_first(text: str) -> str:
    """`text` with its first letter upper-case, the rest as it is ("iROAS" stays)."""
    return text[:1].upper() + text[1:]


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]
