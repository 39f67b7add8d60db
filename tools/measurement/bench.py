"""Validation by simulation: plant a known lift, design and read out many times, and compare.

Each scenario draws `sims` geo panels from the world (each from its own stretch of a long
history, so promotions, stock-outs and seasonality differ between draws), designs the test on
the pre-period alone (a fresh seed per draw, so the assignment differs too), plants a lift in
the treated units, reads it out, and also reads out the same draw with nothing planted.

The planted lift is the median of the designs' own minimum detectable effects, so a
well-calibrated power analysis predicts about 80% power there. Test spend is set so that the
true iROAS is about `TRUE_IROAS`; the truth of each draw is what the planted lift added to its
treated units' sales, divided by that spend.

Reported per scenario: 95% CI coverage of the lift and of the iROAS (target 93-97%), bias and
RMSE of the lift, empirical against predicted power, and the false-positive rate at zero lift.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from tools.measurement.design import design_experiment
from tools.measurement.models import ExperimentDesign
from tools.measurement.panel import GeoPanel
from tools.measurement.readout import read_out
from tools.measurement.simulate import (
    GeoSimConfig,
    geo_shares,
    national_sales,
    plant_daily_lift,
    plant_geo_lift,
    simulate_geo_sales,
)
from tools.policy import ExperimentType
from tools.world import World, generate_world

TRUE_IROAS = 3.0
COVERAGE_TARGET = (0.93, 0.97)
PRE_DAYS = 91
TEST_DAYS = 28
# Extra history the draws' windows are spread over.
SPARE_DAYS = 245


@dataclass(frozen=True)
class Scenario:
    name: str
    retailer: str
    brand: str
    experiment_type: ExperimentType


SCENARIOS = (
    Scenario("geo_holdout_alpha", "alpha", "acme", ExperimentType.GEO_HOLDOUT),
    Scenario("switchback_delta", "delta", "initech", ExperimentType.SWITCHBACK),
)


def _treated_mask(design: ExperimentDesign, geos: tuple[str, ...]) -> np.ndarray:
    treated = set(design.treated_geos())
    return np.array([g in treated for g in geos])


@dataclass(frozen=True)
class _Draws:
    """`sims` geo panels of one world, each from its own stretch of history."""

    world: World
    geos: tuple[str, ...]
    offsets: np.ndarray  # days from the world's start to each draw's first day
    sales: np.ndarray  # (sims, geos, pre + test days)

    def start(self, i: int) -> date:
        return self.world.start + timedelta(days=int(self.offsets[i]))


def _draw_panels(
    scenario: Scenario,
    sims: int,
    seed: int,
    pre_days: int,
    test_days: int,
    config: GeoSimConfig | None,
) -> _Draws:
    world = generate_world(seed=seed, days=pre_days + test_days + SPARE_DAYS)
    national = national_sales(world, scenario.retailer, scenario.brand)
    rng = np.random.default_rng([seed, sims, 0xBE])
    # Whole weeks, so every draw's test starts on the same weekday as the world's start.
    offsets = 7 * rng.integers(0, SPARE_DAYS // 7 + 1, sims)
    sales = simulate_geo_sales(
        national.windows(offsets, pre_days + test_days),
        geo_shares(world, scenario.retailer),
        sims,
        seed,
        config,
    )
    return _Draws(world, tuple(world.dmas.column("code").to_pylist()), offsets, sales)


@dataclass(frozen=True)
class _Readout:
    """One draw read out with the lift planted and with nothing planted."""

    log_lift: float
    covered: bool
    iroas_covered: bool
    significant: bool
    false_positive: bool
    ci_width: float
    true_iroas: float
    predicted_power: float


def _read_draw(
    scenario: Scenario,
    draws: _Draws,
    i: int,
    design: ExperimentDesign,
    lift: float,
    pace: float,
    pre_days: int,
    test_days: int,
) -> _Readout:
    sales = draws.sales[i]
    if scenario.experiment_type == ExperimentType.GEO_HOLDOUT:
        treated = _treated_mask(design, draws.geos)
        planted = plant_geo_lift(sales, treated, pre_days, test_days, lift)
        base_treated = float(sales[treated, pre_days:].sum())
        spend = pace * test_days
    else:
        on = design.on_days()
        planted = plant_daily_lift(sales, on, pre_days, lift)
        base_treated = float(sales[:, pre_days:][:, on].sum())
        spend = pace * int(on.sum())
    truth = base_treated * lift / spend
    r = read_out(design, GeoPanel(draws.geos, draws.start(i), planted), test_spend=spend)
    r0 = read_out(design, GeoPanel(draws.geos, draws.start(i), sales), test_spend=spend)
    assert r.iroas_ci is not None
    return _Readout(
        log_lift=r.log_lift,
        covered=r.lift_ci[0] <= lift <= r.lift_ci[1],
        iroas_covered=r.iroas_ci[0] <= truth <= r.iroas_ci[1],
        significant=r.significant and r.lift > 0,
        false_positive=r0.significant,
        ci_width=r.lift_ci[1] - r.lift_ci[0],
        true_iroas=truth,
        predicted_power=design.power_at_lift(lift),
    )


def run_scenario(
    scenario: Scenario,
    sims: int,
    seed: int,
    pre_days: int = PRE_DAYS,
    test_days: int = TEST_DAYS,
    config: GeoSimConfig | None = None,
) -> dict[str, Any]:
    """Coverage, bias and power of one design type at one retailer over `sims` draws."""
    started = time.perf_counter()
    draws = _draw_panels(scenario, sims, seed, pre_days, test_days, config)
    designs = [
        design_experiment(
            scenario.retailer,
            GeoPanel(draws.geos, draws.start(i), draws.sales[i, :, :pre_days]),
            budget=float(test_days),
            daily_spend=1.0,
            experiment_type=scenario.experiment_type,
            duration_days=test_days,
            seed=seed * 100_003 + i,
        )
        for i in range(sims)
    ]
    lift = float(np.median([d.mde_lift for d in designs]))
    pace = lift * float(np.median([d.baseline_daily_sales for d in designs])) / TRUE_IROAS
    reads = [
        _read_draw(scenario, draws, i, d, lift, pace, pre_days, test_days)
        for i, d in enumerate(designs)
    ]

    n = float(sims)
    coverage = float(np.mean([r.covered for r in reads]))
    lift_hat = np.expm1(np.array([r.log_lift for r in reads]))
    ref = designs[0]
    return {
        "scenario": scenario.name,
        "retailer": scenario.retailer,
        "brand": scenario.brand,
        "experiment_type": scenario.experiment_type.value,
        "sims": sims,
        "duration_days": test_days,
        "pre_days": pre_days,
        "n_treatment": ref.n_treatment,
        "n_control": ref.n_control,
        "holdout_pct": round(ref.holdout_pct, 4),
        "period_hours": ref.period_hours,
        "planted_lift": round(lift, 5),
        "true_iroas_mean": round(float(np.mean([r.true_iroas for r in reads])), 4),
        "coverage": round(coverage, 4),
        "coverage_mc_se": round(math.sqrt(coverage * (1 - coverage) / n), 4),
        "iroas_coverage": round(float(np.mean([r.iroas_covered for r in reads])), 4),
        "bias_lift": round(float(lift_hat.mean() - lift), 6),
        "relative_bias": round(float((lift_hat.mean() - lift) / lift), 4),
        "rmse_lift": round(float(np.sqrt(np.mean((lift_hat - lift) ** 2))), 6),
        "mean_ci_width": round(float(np.mean([r.ci_width for r in reads])), 5),
        "empirical_power": round(float(np.mean([r.significant for r in reads])), 4),
        "predicted_power": round(float(np.mean([r.predicted_power for r in reads])), 4),
        "false_positive_rate": round(float(np.mean([r.false_positive for r in reads])), 4),
        "seconds": round(time.perf_counter() - started, 2),
    }


def run_measurement_bench(
    sims: int = 500, seed: int = 7, scenarios: tuple[Scenario, ...] = SCENARIOS
) -> dict[str, Any]:
    """Every scenario, with the coverage target checked."""
    started = time.perf_counter()
    results = [run_scenario(s, sims, seed) for s in scenarios]
    lo, hi = COVERAGE_TARGET
    return {
        "sims": sims,
        "seed": seed,
        "alpha": 0.05,
        "scenarios": results,
        "targets": {"coverage": f"{lo:.2f}-{hi:.2f}", "false_positive_rate": "about 0.05"},
        "coverage_in_target": all(lo <= r["coverage"] <= hi for r in results),
        "seconds": round(time.perf_counter() - started, 2),
    }
