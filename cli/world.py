"""`rmn world` commands: generate a simulated market, and score a flight plan against its truth."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOption, emit, progress_enabled, user_errors
from tools.errors import RMNError
from tools.paths import data_dir

app = typer.Typer(
    help="Simulated retail-media market with known ground truth.", no_args_is_help=True
)


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RMNError(f"--start must be a date like 2026-07-01, got {value!r}") from None


def _human_generate(r: dict[str, Any]) -> str:
    lines = [
        f"world seed {r['seed']}: {r['days']} history days from {r['start']}, "
        f"then a {r['flight_days']}-day flight",
        f"delivery records: {r['events']:,} ({r['rows_written']:,} rows written incl. "
        f"duplicates) in {r['seconds']:.1f} s",
    ]
    for rid, x in r["retailers"].items():
        lines.append(
            f"  {rid:<6} {x['events']:>12,} records {x['rows_written']:>12,} rows  "
            f"{x['files']['events']}"
        )
    lines.append("dirt planted (rows per kind, all retailers):")
    lines += [f"  {kind:<22} {n:>9,}" for kind, n in r["dirt"].items()]
    p = r["paths"]
    lines += [
        f"raw exports:  {p['raw']}",
        f"truth:        {p['world']} (world.json, history_truth.parquet, dirt/)",
        f"catalog:      {p['retailers']} (mapping, policies), {p['brands']} (brand.yaml, "
        "first-party files)",
    ]
    return "\n".join(lines)


@app.command()
def generate(
    seed: Annotated[int, typer.Option(help="Random seed: one seed, one market.")] = 7,
    days: Annotated[int, typer.Option(help="Days of history to simulate.")] = 90,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory (default: $RMN_DATA_DIR or ./data)."),
    ] = None,
    events: Annotated[int, typer.Option(help="Delivery records across all retailers.")] = 1_000_000,
    start: Annotated[str, typer.Option(help="First history day (YYYY-MM-DD).")] = "2026-07-01",
    flight_days: Annotated[
        int, typer.Option("--flight-days", help="Planning flight length in days.")
    ] = 28,
    dirt_rate: Annotated[
        float, typer.Option("--dirt-rate", help="Share of rows per kind of planted problem.")
    ] = 0.005,
    as_json: bool = JsonOption,
) -> None:
    """Generate a market: native retailer exports, brand first-party data and the truth."""
    with user_errors(as_json):
        from tools.world import generate_world, write_exports

        world = generate_world(
            seed=seed, days=days, start=_parse_date(start), flight_days=flight_days
        )
        summary = write_exports(
            world,
            out if out is not None else data_dir(),
            events=events,
            dirt_rate=dirt_rate,
            progress=progress_enabled(),
        )
        emit(summary.model_dump(mode="json"), as_json, _human_generate)


def _human_score(r: dict[str, Any]) -> str:
    lines = [
        f"spend                 ${r['spend']:>16,.2f}",
        f"incremental revenue   ${r['incremental_revenue']:>16,.2f}",
        f"incremental margin    ${r['incremental_margin']:>16,.2f}",
        f"iROAS                  {r['iroas']:>16.3f}",
        f"spend on out-of-stock ${r['spend_on_oos']:>16,.2f}",
    ]
    by: dict[str, list[float]] = {}
    for line in r["lines"]:
        acc = by.setdefault(line["retailer_id"], [0.0, 0.0, 0.0])
        acc[0] += line["spend"]
        acc[1] += line["incremental_revenue"]
        acc[2] += line["incremental_margin"]
    if by:
        lines.append(f"{'retailer':<9}{'spend':>16}{'incr. revenue':>16}{'incr. margin':>16}")
        for rid, (s, rev, m) in sorted(by.items()):
            lines.append(f"{rid:<9}{s:>16,.2f}{rev:>16,.2f}{m:>16,.2f}")
    return "\n".join(lines)


@app.command()
def score(
    world_dir: Annotated[
        Path, typer.Option("--world", help="Directory given to `generate --out`.")
    ],
    allocation: Annotated[
        Path,
        typer.Option("--allocation", help="JSON list of {retailer_id, placement, gtin, spend}."),
    ],
    as_json: bool = JsonOption,
) -> None:
    """Expected incremental revenue and margin of a flight plan under the world's truth."""
    with user_errors(as_json):
        from tools.world import load_world, parse_allocation, realized_outcome

        world = load_world(world_dir)
        try:
            plan = json.loads(allocation.read_text())
        except OSError as err:
            raise RMNError(f"cannot read allocation {allocation}: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise RMNError(f"allocation {allocation} is not valid JSON: {err}") from None
        outcome = realized_outcome(world, parse_allocation(plan))
        emit(outcome.model_dump(mode="json"), as_json, _human_score)
