"""`rmn bench` commands."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.bandit_bench import bandit
from cli.common import JsonOption, emit, machine, user_errors
from cli.e2e_bench import e2e
from cli.governance import bench as governance_bench
from cli.language_bench import language
from cli.llm_bench import llm
from cli.measurement_bench import measurement
from cli.optimize_bench import optimizer
from cli.serve import bench_server

app = typer.Typer(
    help="Benchmarks: each prints JSON with --json. Speed targets are checked here, not in tests.",
    no_args_is_help=True,
)


def _human_harmonize(r: dict[str, Any]) -> str:
    lines = [
        f"harmonized {r['rows_in']:,} rows ({r['events']:,} events simulated) in "
        f"{r['seconds']:.3f} s = {r['events_per_s']:,.0f} events/s "
        f"(median of {r['runs']} runs, {r['threads']} threads)"
    ]
    lines += [
        f"  {rid:<6} {x['events']:>10,} rows {x['seconds']:>7.3f} s"
        for rid, x in r["per_retailer"].items()
    ]
    return "\n".join(lines)


@app.command("harmonize")
def harmonize(
    events: Annotated[int, typer.Option(help="Delivery records to simulate.")] = 1_000_000,
    runs: Annotated[int, typer.Option(min=1, help="Timed runs; the median is reported.")] = 3,
    seed: Annotated[int, typer.Option(help="World seed.")] = 7,
    days: Annotated[int, typer.Option(help="Days of history.")] = 90,
    threads: Annotated[int, typer.Option(help="DuckDB threads (0: all cores).")] = 0,
    as_json: bool = JsonOption,
) -> None:
    """Time `harmonize` on a generated world (generation is not timed)."""
    with user_errors(as_json):
        from tools.harmonize import harmonize_all
        from tools.world import generate_world, write_exports

        with tempfile.TemporaryDirectory(prefix="rmn-bench-") as tmp:
            root = Path(tmp)
            write_exports(generate_world(seed=seed, days=days), root, events=events)
            totals: list[float] = []
            per: dict[str, list[float]] = {}
            rows: dict[str, int] = {}
            for _ in range(runs):
                start = time.perf_counter()
                reports = harmonize_all(root / "raw", root / "rmis", threads=threads or None)
                totals.append(time.perf_counter() - start)
                for rep in reports:
                    per.setdefault(rep.retailer, []).append(rep.seconds)
                    rows[rep.retailer] = rep.rows_in
        seconds = statistics.median(totals)
        emit(
            {
                "events": events,
                "rows_in": sum(rows.values()),
                "seconds": round(seconds, 3),
                "events_per_s": round(events / seconds),
                "runs": runs,
                "threads": threads or os.cpu_count(),
                "all_seconds": [round(t, 3) for t in totals],
                "per_retailer": {
                    r: {"events": rows[r], "seconds": round(statistics.median(s), 3)}
                    for r, s in per.items()
                },
                "machine": machine(),
            },
            as_json,
            _human_harmonize,
        )


def _human_world(r: dict[str, Any]) -> str:
    sc = r["score"]
    exports = (
        f", {r['events']:,} delivery records written in {r['exports_s']:.2f} s"
        if r["exports_s"] is not None
        else ""
    )
    verdict = "met" if sc["met"] else "MISSED"
    return (
        f"world of {r['line_items']:,} line items generated in {r['generate_s']:.2f} s{exports}\n"
        f"scored {sc['lines']:,} allocation lines in {sc['seconds']:.3f} s "
        f"({sc['lines_per_s']:,} lines/s, median of {sc['runs']}; target < {sc['target_s']:g} s "
        f"{verdict}) on {r['machine']['cpus']} cores"
    )


@app.command("world")
def world(
    events: Annotated[
        int, typer.Option(min=0, help="Delivery records to write (0: skip the exports).")
    ] = 1_000_000,
    lines: Annotated[int, typer.Option(min=1, help="Allocation lines to score.")] = 100_000,
    runs: Annotated[
        int, typer.Option(min=1, help="Timed scoring runs; the median is reported.")
    ] = 3,
    seed: Annotated[int, typer.Option(help="World seed.")] = 7,
    days: Annotated[int, typer.Option(help="Days of history.")] = 90,
    as_json: bool = JsonOption,
) -> None:
    """Time generating a world, writing its exports and scoring an allocation against it."""
    with user_errors(as_json):
        from tools.world.bench import run_world_bench

        result = run_world_bench(events=events, lines=lines, seed=seed, days=days, runs=runs)
        emit(result | {"machine": machine()}, as_json, _human_world)


app.command("optimizer")(optimizer)
app.command("measurement")(measurement)
app.command("bandit")(bandit)
app.command("llm")(llm)
app.command("governance")(governance_bench)
app.command("server")(bench_server)
app.command("e2e")(e2e)
app.command("language")(language)
