"""`rmn bench` commands."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cli.bandit_bench import bandit
from cli.common import JsonOption, emit, user_errors
from cli.e2e_bench import e2e
from cli.governance import bench as governance_bench
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
        import os
        import statistics
        import tempfile
        import time
        from pathlib import Path

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
            },
            as_json,
            _human_harmonize,
        )


app.command("optimizer")(optimizer)
app.command("measurement")(measurement)
app.command("bandit")(bandit)
app.command("llm")(llm)
app.command("governance")(governance_bench)
app.command("server")(bench_server)
app.command("e2e")(e2e)
