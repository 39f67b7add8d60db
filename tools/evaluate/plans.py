"""Compare flight plans on simulated worlds, scored against the simulator's truth.

For each seeded world: simulate the history, harmonize the exports, build the brand's two
data views, fit curves on each, and plan one brief five ways:

- oracle: the optimizer on the true curves with full knowledge (margins, promotions, stock);
- full: the optimizer on curves fitted from the full view (clean room + first-party data),
  stock-out risk priced into each line's expected revenue and SKUs at or above
  `oos_threshold` risk held at zero; lines whose history the clean room suppressed plan on
  prior-only curves;
- cleanroom: the optimizer on curves fitted from clean-room aggregates alone;
- equal_split: the spendable budget split evenly over the brand's line items with a history;
- roas_proportional: split in proportion to each line's attributed ROAS over the last four
  weeks of history (its whole-history ROAS where those weeks were suppressed).

With `policy_limits`, the three optimizer plans also obey the retailers' spend rules
(`tools.optimize.policy_limits`: monthly placement caps, minimum daily budgets, category
restrictions); the naive splits do not.

Every plan is scored by `realized_outcome` (expected incremental revenue and margin under the
truth). The summary gives the mean and a 95% t-interval over worlds of each metric, the full
plan's share of the oracle's margin, and the federation gain (full minus clean-room-only).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from scipy import stats

from tools.curves import OOS_THRESHOLD, CurveFit, cleanroom_view, fit_curves, full_view
from tools.errors import RMNError
from tools.firstparty import FirstPartyStore
from tools.harmonize import harmonize_all
from tools.optimize import AllocationResult, Brief, CurveSet, allocate, policy_limits
from tools.world import World, generate_world, realized_outcome, write_exports

PLANS = ("oracle", "full", "cleanroom", "equal_split", "roas_proportional")
METRICS = (
    "incremental_margin",
    "incremental_revenue",
    "iroas",
    "spend",
    "spend_on_oos",
    "sku_coverage",
)
SHARE_TARGET = 0.97
# Other ways the full view could treat stock-out risk, planned alongside for comparison.
SENSITIVITY: dict[str, float | None] = {
    "full_oos_priced_in": None,
    "full_oos_cut_at_0.5": 0.5,
}
# A SKU counts as covered when its line items get at least this much flight spend.
COVERED_USD = 1.0


class EvalSettings(BaseModel):
    """One brief, planned on every world."""

    worlds: int = Field(20, ge=1)
    seed: int = Field(1, ge=0, description="worlds use seeds seed, seed + 1, ...")
    events: int = Field(300_000, ge=1_000, description="delivery records per world")
    days: int = Field(90, ge=14, description="history days")
    flight_days: int = Field(28, ge=1)
    brand: str = "acme"
    budget: float | None = Field(
        None, gt=0, description="flight budget, USD; default: the brand's budget scale"
    )
    reserve_fraction: float = Field(0.1, ge=0, lt=1)
    roas_floor: float | None = Field(2.0, gt=0)
    objective: str = "incremental_margin"
    oos_threshold: float | None = Field(
        OOS_THRESHOLD,
        ge=0,
        le=1,
        description="the full view zeroes lines at or above this stock-out risk and prices the "
        "risk in below it (None: prices it in everywhere)",
    )
    policy_limits: bool = Field(
        False, description="the optimizer plans obey the retailers' spend rules"
    )


class PlanOutcome(BaseModel):
    """One plan's realized outcome on one world."""

    incremental_margin: float
    incremental_revenue: float
    iroas: float
    spend: float
    spend_on_oos: float
    sku_coverage: float
    predicted_margin: float | None = None
    status: str = Field(
        "optimal", description="optimal, spends_less (to meet the ROAS floor) or infeasible"
    )


class WorldResult(BaseModel):
    seed: int
    plans: dict[str, PlanOutcome]
    sensitivity: dict[str, PlanOutcome]
    fit: dict[str, dict[str, Any]]
    seconds: float


@dataclass(frozen=True)
class _Universe:
    """The brand's plannable line items (those the clean room shows) and its SKUs."""

    keys: list[tuple[str, str, str]]
    skus: list[str]


def oracle_curves(world: World, brand: str) -> CurveSet:
    """The brand's true flight curves: stock-outs, promotions and margins as they will be."""
    t = world.line_items.to_pandas()
    t = t[t["brand_id"] == brand]
    if t.empty:
        raise RMNError(f"brand '{brand}' has no line items in the world", brand=brand)
    rev_days = t["flight_rev_days"].to_numpy()
    return CurveSet.from_arrays(
        retailer_id=t["retailer_id"].to_numpy(),
        placement=t["placement"].to_numpy(),
        gtin=t["gtin"].to_numpy(),
        a=t["a"].to_numpy() * (1.0 - t["oos_prob"].to_numpy()) * rev_days,
        b=t["b"].to_numpy() * world.flight_days,
        margin=np.clip(t["flight_margin_days"].to_numpy() / rev_days, 0.0, 1.0),
    )


def _plan(
    curves: CurveSet, brief: Brief
) -> tuple[dict[tuple[str, str, str], float], AllocationResult, str]:
    """Allocate; where the curves cannot meet the ROAS floor with the whole budget, plan again
    allowing the plan to spend less. Returns the plan, the result and its status: optimal,
    spends_less or infeasible (an empty plan)."""
    result = allocate(curves, brief)
    status = "optimal"
    if result.status != "optimal":
        result = allocate(curves, brief.model_copy(update={"min_spend_fraction": 0.0}))
        status = "spends_less"
    if result.status != "optimal" or result.allocation is None:
        return {}, result, "infeasible"
    a = result.allocation
    spend = dict(zip(zip(a.retailer_id, a.placement, a.gtin, strict=True), a.spend, strict=True))
    return spend, result, status


def _score(world: World, spend: dict[tuple[str, str, str], float], skus: list[str]) -> PlanOutcome:
    out = realized_outcome(world, spend)
    per_sku: dict[str, float] = {}
    for line in out.lines:
        per_sku[line.gtin] = per_sku.get(line.gtin, 0.0) + line.spend
    covered = {g for g, s in per_sku.items() if s >= COVERED_USD}
    return PlanOutcome(
        incremental_margin=out.incremental_margin,
        incremental_revenue=out.incremental_revenue,
        iroas=out.iroas,
        spend=out.spend,
        spend_on_oos=out.spend_on_oos,
        sku_coverage=len(covered & set(skus)) / len(skus) if skus else 0.0,
    )


def _fit_summary(fit: CurveFit) -> dict[str, Any]:
    lines = fit.lines
    return {
        "lines": len(lines),
        "too_little_data": int(lines["too_little_data"].sum()),
        "prior_only": int(lines["prior_only"].sum()),
        "periods": {k: int(v) for k, v in lines["period"].value_counts().items()},
        "promo_lift": fit.promo_lift,
        "spend_cv": fit.spend_cv,
        "noise_cv": fit.noise_cv,
        **{k: v for k, v in fit.hyper.items() if isinstance(v, float)},
    }


def evaluate_world(seed: int, settings: EvalSettings, workdir: Path) -> WorldResult:
    """Simulate one world under `workdir`, plan the brief five ways and score each plan."""
    started = time.perf_counter()
    s = settings
    world = generate_world(seed=seed, days=s.days, flight_days=s.flight_days)
    if s.brand not in world.brands:
        raise RMNError(f"unknown brand '{s.brand}'; brands: {', '.join(world.brands)}")
    write_exports(world, workdir, events=s.events)
    harmonize_all(workdir / "raw", workdir / "rmis")

    cr = cleanroom_view(workdir, s.brand, flight_days=s.flight_days)
    full = full_view(cr, FirstPartyStore(workdir, tenant=s.brand, brand=s.brand))
    fit_full = fit_curves(full, seed=seed)
    fit_cr = fit_curves(cr, seed=seed)

    budget = s.budget or world.brands[s.brand].budget_scale
    brief = Brief(
        budget=budget,
        reserve_fraction=s.reserve_fraction,
        objective=s.objective,  # type: ignore[arg-type]
        roas_floor=s.roas_floor,
    )
    lines = cr.lines[~cr.lines["suppressed"].to_numpy(dtype=bool)].reset_index(drop=True)
    universe = _Universe(
        keys=list(zip(lines["retailer_id"], lines["placement"], lines["gtin"], strict=True)),
        skus=sorted(g for g, b in _sku_column(world, "brand_id").items() if b == s.brand),
    )
    categories = _sku_column(world, "category")

    def ours(curves: CurveSet) -> PlanOutcome:
        return _optimizer_plan(world, curves, brief, s, categories, universe.skus)

    plans: dict[str, PlanOutcome] = {
        "oracle": ours(oracle_curves(world, s.brand)),
        "full": ours(fit_full.curve_set(oos_threshold=s.oos_threshold)),
        "cleanroom": ours(fit_cr.curve_set()),
    }
    spendable = brief.spendable
    n = len(universe.keys)
    plans["equal_split"] = _score(
        world, dict(zip(universe.keys, [spendable / n] * n, strict=True)), universe.skus
    )
    plans["roas_proportional"] = _score(
        world, roas_proportional(lines, spendable, universe.keys), universe.skus
    )
    sensitivity = {
        name: ours(fit_full.curve_set(oos_threshold=threshold))
        for name, threshold in SENSITIVITY.items()
        if threshold != s.oos_threshold
    }
    return WorldResult(
        seed=seed,
        plans=plans,
        sensitivity=sensitivity,
        fit={"full": _fit_summary(fit_full), "cleanroom": _fit_summary(fit_cr)},
        seconds=time.perf_counter() - started,
    )


def _sku_column(world: World, column: str) -> dict[str, Any]:
    """GTIN -> one column of the world's SKU table."""
    return dict(
        zip(
            world.skus.column("gtin").to_pylist(),
            world.skus.column(column).to_pylist(),
            strict=True,
        )
    )


def _optimizer_plan(
    world: World,
    curves: CurveSet,
    brief: Brief,
    settings: EvalSettings,
    categories: dict[str, Any],
    skus: list[str],
) -> PlanOutcome:
    """Plan on `curves` (within the retailers' spend rules when the settings ask for them)
    and score the plan against the truth, with the margin the plan predicted."""
    if settings.policy_limits:
        curves, _ = policy_limits(
            curves, settings.flight_days, categories=categories, flight_start=world.flight_start
        )
    spend, result, status = _plan(curves, brief)
    outcome = _score(world, spend, skus)
    if result.outcome is not None:
        outcome.predicted_margin = result.outcome.margin
    outcome.status = status
    return outcome


def roas_proportional(
    lines: pd.DataFrame, spendable: float, keys: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], float]:
    """Spend in proportion to each line's attributed ROAS over the last four weeks, or over
    the whole history where the recent cell was suppressed."""
    recent = (lines["recent_sales"] / lines["recent_spend"]).to_numpy(dtype=float)
    total = (lines["sales"] / lines["spend"]).to_numpy(dtype=float)
    roas = np.where(
        np.isfinite(recent) & (lines["recent_spend"].fillna(0.0).to_numpy() > 0), recent, total
    )
    roas = np.clip(np.nan_to_num(roas, nan=0.0), 0.0, None)
    if roas.sum() <= 0:
        roas = np.ones_like(roas)
    return dict(zip(keys, (spendable * roas / roas.sum()).tolist(), strict=True))


def interval(values: list[float] | np.ndarray) -> dict[str, Any]:
    """Mean and 95% t-interval over worlds (no interval from a single world)."""
    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if v.size < 2 or float(v.std(ddof=1)) == 0.0:
        return {"mean": mean, "ci95": None if v.size < 2 else [mean, mean]}
    lo, hi = stats.t.interval(0.95, v.size - 1, loc=mean, scale=stats.sem(v))
    return {"mean": mean, "ci95": [float(lo), float(hi)]}


def summarize(results: list[WorldResult], settings: EvalSettings) -> dict[str, Any]:
    def col(plan: str, metric: str, where: str = "plans") -> np.ndarray:
        return np.array([getattr(getattr(r, where)[plan], metric) for r in results])

    plans = {p: {m: interval(col(p, m)) for m in METRICS} for p in PLANS}
    oracle = col("oracle", "incremental_margin")
    share = col("full", "incremental_margin") / oracle
    gain_margin = col("full", "incremental_margin") - col("cleanroom", "incremental_margin")
    federation = {
        "incremental_margin": interval(gain_margin),
        "incremental_margin_pct": interval(
            100 * gain_margin / col("cleanroom", "incremental_margin")
        ),
        "iroas": interval(col("full", "iroas") - col("cleanroom", "iroas")),
        "sku_coverage": interval(col("full", "sku_coverage") - col("cleanroom", "sku_coverage")),
        "spend_on_oos": interval(col("full", "spend_on_oos") - col("cleanroom", "spend_on_oos")),
    }
    out: dict[str, Any] = {
        "settings": settings.model_dump(),
        "plans": plans,
        "share_of_oracle_margin": {
            "full": interval(share)
            | {
                "min": float(share.min()),
                "target": SHARE_TARGET,
                "met": bool(share.mean() >= SHARE_TARGET),
            },
            **{
                p: interval(col(p, "incremental_margin") / oracle)
                for p in ("cleanroom", "equal_split", "roas_proportional")
            },
        },
        "federation_gain": federation,
        "plans_not_optimal": {
            p: {
                status: sum(r.plans[p].status == status for r in results)
                for status in ("spends_less", "infeasible")
            }
            for p in ("oracle", "full", "cleanroom")
        },
        # The clean-room-only plan predicts revenue (it knows no margin), so only the full
        # plan's margin forecast can be checked against the truth.
        "full_predicted_over_realized_margin": interval(
            col("full", "predicted_margin") / col("full", "incremental_margin")
        ),
    }
    if results and results[0].sensitivity:
        out["sensitivity"] = {
            name: {
                "share_of_oracle_margin": interval(
                    col(name, "incremental_margin", "sensitivity") / oracle
                ),
                **{m: interval(col(name, m, "sensitivity")) for m in METRICS},
            }
            for name in results[0].sensitivity
        }
    fits: dict[str, Any] = {}
    for view in ("full", "cleanroom"):
        keys = [k for k, v in results[0].fit[view].items() if isinstance(v, int | float)]
        fits[view] = {k: float(np.mean([r.fit[view][k] for r in results])) for k in keys}
    out["fit"] = fits
    out["worlds"] = [
        {
            "seed": r.seed,
            "seconds": round(r.seconds, 2),
            **{f"{p}_margin": round(r.plans[p].incremental_margin, 2) for p in PLANS},
        }
        for r in results
    ]
    return out


def evaluate_plans(
    settings: EvalSettings,
    workdir: Path | None = None,
    progress: Callable[[int, WorldResult], None] | None = None,
) -> dict[str, Any]:
    """Run `settings.worlds` worlds and summarize; worlds are written under `workdir` (a
    temporary folder, removed afterwards, when None)."""
    started = time.perf_counter()
    results: list[WorldResult] = []
    with tempfile.TemporaryDirectory(prefix="rmn-evaluate-") as tmp:
        root = Path(workdir) if workdir is not None else Path(tmp)
        for i in range(settings.worlds):
            seed = settings.seed + i
            result = evaluate_world(seed, settings, root / f"world-{seed}")
            results.append(result)
            if progress is not None:
                progress(i, result)
    summary = summarize(results, settings)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary
