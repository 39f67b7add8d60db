"""`rmn feedback`: the reviewers' ratings kept in `<data>/feedback.sqlite` (`tools.plan.feedback`;
in RMN_DATABASE_URL's database when set) as training data and as a dashboard.

    rmn feedback export --format dpo --out pairs.jsonl [--brand acme]   # TRL preference pairs
    rmn feedback export --format sft --out sft.jsonl                     # TRL conversations
    rmn feedback stats [--brand acme] [--json]    # counts, agreement, worst retailers and tasks
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from cli.common import JsonOption, emit, user_errors
from cli.plan import DataOption
from tools import paths
from tools.errors import RMNError

app = typer.Typer(help="Reviewers' ratings of copy and rationale: export them, see how they read.",
                  no_args_is_help=True)  # fmt: skip
TenantOption = typer.Option(
    None, "--brand", "--tenant", help="One tenant's ratings only (default: every tenant's)."
)


class Format(StrEnum):
    dpo = "dpo"
    sft = "sft"


FormatOption = typer.Option(
    ..., "--format", help="dpo: prompt/chosen/rejected pairs; sft: messages to learn from."
)
OutOption = typer.Option(..., "--out", help="The JSON Lines file to write.")


def _records(data_dir: Path | None, tenant: str | None) -> list[Any]:
    from tools.plan.feedback import FeedbackStore, feedback_path
    from tools.storage.stores import store_exists

    path = feedback_path(data_dir or paths.data_dir())
    # No ratings yet is an empty list, not an error (and no file is created to say so); with
    # RMN_DATABASE_URL the ratings are in that database whatever the data directory holds.
    return FeedbackStore(path).list(tenant) if store_exists(path) else []


@app.command("export")
def export(
    fmt: Format = FormatOption,
    out: Path = OutOption,
    tenant: str | None = TenantOption,
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """Write the ratings as TRL training rows (JSON Lines)."""
    from tools.plan.feedback import dpo_pairs, sft_rows

    with user_errors(json_out):
        records = _records(data_dir, tenant)
        rows = dpo_pairs(records) if fmt is Format.dpo else sft_rows(records)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("w", encoding="utf-8") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        except OSError as err:
            raise RMNError(f"cannot write {out}: {err}", path=str(out)) from None
        result = {"format": fmt.value, "rows": len(rows), "ratings": len(records),
                  "out": str(out)}  # fmt: skip
        emit(result, json_out, lambda r: f"{r['rows']} {r['format']} rows from "
             f"{r['ratings']} ratings written to {r['out']}")  # fmt: skip


def _render(stats: dict[str, Any]) -> str:
    agree = stats["agreement"]
    lines = [
        f"{stats['ratings']} ratings: " + ", ".join(f"{n} {t}" for t, n in
                                                    stats["by_task"].items()),  # fmt: skip
        f"thumbs up {stats['up']}, down {stats['down']}; {stats['corrected']} corrected texts; "
        f"{stats['plan_reasons']} reasons for an edit or a rejection",
        f"{stats['items_rated_by_several']} items rated by several reviewers; agreement "
        + ("-" if agree is None else f"{agree:.0%}"),
    ]
    for title, key in (("Worst-rated retailers", "worst_retailers"), ("Worst-rated tasks",
                                                                      "worst_tasks")):  # fmt: skip
        lines.append(f"{title}:")
        for b in stats[key] or []:
            score = "-" if b["mean_score"] is None else f"{b['mean_score']:.1f}"
            lines.append(f"  {b['name']:<12} {b['down_share']:>4.0%} down of {b['up'] + b['down']}"
                         f" thumbs, mean score {score} ({b['ratings']} ratings)")  # fmt: skip
        if not stats[key]:
            lines.append("  none rated")
    return "\n".join(lines)


@app.command("stats")
def stats(
    tenant: str | None = TenantOption,
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """Counts, reviewer agreement and the worst-rated retailers and tasks."""
    from tools.plan.feedback import feedback_stats

    with user_errors(json_out):
        result = feedback_stats(_records(data_dir, tenant)).model_dump(mode="json")
        emit(result, json_out, _render)
