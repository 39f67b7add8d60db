"""`rmn bench optimizer`: optimizer speed and accuracy against exact, cvxpy and SLSQP solutions."""

from __future__ import annotations

from typing import Any

import typer

from cli.common import JsonOption, emit, user_errors
from tools.errors import RMNError


class BenchInputError(RMNError):
    kind = "bench_input_error"


def _parse_items(items: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in items.split(",") if part.strip()]
    except ValueError as err:
        raise BenchInputError(f"--items takes comma-separated line counts, got {items!r}") from err
    if not sizes or any(n < 2 for n in sizes):
        raise BenchInputError(f"--items needs line counts of at least 2, got {items!r}")
    return sizes


def _human(result: dict[str, Any]) -> str:
    lines = []
    for r in result["sizes"]:
        cvx = (
            f"cvxpy {r['cvxpy_seconds']:.3f}s gap {r['cvxpy_gap_to_reference']:.1e}"
            if r.get("cvxpy_seconds") is not None
            else "cvxpy skipped"
        )
        line = (
            f"{r['items']:>9,} lines  {r['path']:<5} {r['ours_seconds']:.4f}s  "
            f"gap {r['gap_to_reference']:.1e}  floor viol {r['roas_floor_violation']:.1e}  "
            f"kkt {r['kkt_seconds']:.4f}s  {cvx}"
        )
        if "slsqp" in r:
            sq = r["slsqp"]
            line += (
                f"  slsqp {sq['seconds']:.2f}s gap {sq['gap_to_reference']:.1e} "
                f"success={sq['success']} ({r['speedup_vs_slsqp']:.0f}x)"
            )
        lines.append(line)
    lines.append("targets: " + ", ".join(f"{k}={v}" for k, v in result["targets"].items()))
    return "\n".join(lines)


def optimizer(
    items: str = typer.Option(
        "300,10000,100000", "--items", help="Comma-separated line counts to benchmark."
    ),
    json: bool = JsonOption,
) -> None:
    """Time the budget optimizer and check it against the exact water-fill, cvxpy and SLSQP."""
    with user_errors(json):
        sizes = _parse_items(items)
        from tools.optimize.bench import run_optimizer_bench

        emit(run_optimizer_bench(sizes), json, _human)
