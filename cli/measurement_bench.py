"""`rmn bench measurement`: CI coverage, bias and power of experiment designs and readouts,
validated by planting a known lift in simulated geo sales."""

from __future__ import annotations

from typing import Any

import typer

from cli.common import JsonOption, emit, user_errors
from tools.errors import RMNError


class MeasurementBenchInputError(RMNError):
    kind = "bench_input_error"


def _human(result: dict[str, Any]) -> str:
    lines = [f"{result['sims']} simulations per scenario, seed {result['seed']}"]
    for r in result["scenarios"]:
        lines.append(
            f"  {r['scenario']:<18} lift {100 * r['planted_lift']:.2f}%  "
            f"coverage {100 * r['coverage']:.1f}% (iROAS {100 * r['iroas_coverage']:.1f}%)  "
            f"bias {100 * r['relative_bias']:+.1f}%  "
            f"power {100 * r['empirical_power']:.1f}% vs predicted "
            f"{100 * r['predicted_power']:.1f}%  "
            f"false positives {100 * r['false_positive_rate']:.1f}%  {r['seconds']:.1f}s"
        )
    verdict = "in" if result["coverage_in_target"] else "OUT OF"
    lines.append(
        f"coverage {verdict} target {result['targets']['coverage']}; {result['seconds']:.1f}s"
    )
    return "\n".join(lines)


def measurement(
    sims: int = typer.Option(500, "--sims", help="Simulations per scenario."),
    json: bool = JsonOption,
    seed: int = typer.Option(7, "--seed", help="World and simulation seed."),
) -> None:
    """Plant a known lift in simulated geo sales, design and read out each draw, and report CI
    coverage (target 93-97%), bias, and empirical against predicted power."""
    with user_errors(json):
        if sims < 10:
            raise MeasurementBenchInputError(f"--sims needs at least 10 simulations, got {sims}")
        if seed < 0:
            raise MeasurementBenchInputError(f"--seed must be non-negative, got {seed}")
        from tools.measurement.bench import run_measurement_bench

        emit(run_measurement_bench(sims=sims, seed=seed), json, _human)
