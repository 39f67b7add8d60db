"""`rmn export THREAD --format xlsx|csv [--out DIR]`: an approved plan out to the networks.

Writes, per retailer, the lines to enter in its portal (product, the network's item id,
placement, daily budget, flight, total, holdout), and the network's bulk-upload sheet where it
documents one (`tools.export`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.catalog import data_dir_catalog
from cli.common import JsonOption, emit, user_errors
from cli.plan import BrandOption, DataOption

FormatOption = typer.Option("xlsx", "--format", help="xlsx (one workbook) or csv (a folder).")
OutOption = typer.Option(None, "--out", help="Folder to write in (default: the current one).")


def _human(r: dict[str, Any]) -> str:
    lines = [f"plan of thread {r['thread_id']} ({r['brand']}) exported:"]
    lines += [f"  {p}" for p in r["files"]]
    lines += [f"  {s['retailer']}: {s['lines']} line(s), ${s['total']:,.2f}" for s in r["sheets"]]
    return "\n".join(lines)


def export(
    thread: str = typer.Argument(..., help="The thread whose approved plan to export."),
    fmt: str = FormatOption,
    out: Path | None = OutOption,
    brand: str = BrandOption,
    data_dir: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Export an approved plan: per retailer its lines, ready for the network's portal."""
    with user_errors(as_json):
        from cli.plan import Session
        from tools.export import ExportError, build_export, write_export
        from tools.plan import Plan

        with data_dir_catalog(data_dir) as folder:
            state = Session(brand, "none", folder).state(thread)
            values = state["values"]
            if not values.get("plan"):
                raise ExportError(f"thread {thread} holds no plan yet", thread_id=thread)
            plan = Plan.model_validate(values["plan"])
            built = build_export(plan, folder)
        files = write_export(built, fmt, out if out is not None else Path("."))
        result = {
            "thread_id": thread,
            "brand": built.brand,
            "format": fmt,
            "files": [str(f) for f in files],
            "sheets": [
                {"retailer": s.retailer_id, "lines": len(s.lines), "total": round(s.total, 2)}
                for s in built.sheets
            ],
        }
        emit(result, as_json, _human)
