"""What `allocate` returns: the plan per line, expected totals with intervals over the curve
draws, shadow prices, the constraint checks and, for a brief that cannot be met, the
diagnosis; and the functions that build the plan's table and totals from a spend vector."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from tools.optimize.curves import CurveSet, Objective
from tools.optimize.diagnose import Diagnosis

Path = Literal["cvxpy", "kkt"]


class AllocationTable(BaseModel):
    """The plan, one entry per line item in the curve set's order (columns, not rows, so large
    plans stay cheap)."""

    retailer_id: list[str]
    placement: list[str]
    gtin: list[str]
    spend: list[float] = Field(description="flight spend, USD")
    revenue: list[float] = Field(description="expected incremental revenue, USD")
    margin: list[float] = Field(description="expected incremental margin, USD")
    marginal_roas: list[float] = Field(description="revenue of the next dollar at this spend")

    def rows(self) -> list[dict[str, Any]]:
        cols = list(type(self).model_fields)
        return [
            dict(zip(cols, vals, strict=True))
            for vals in zip(*(getattr(self, c) for c in cols), strict=True)
        ]


class Interval(BaseModel):
    low: float = Field(description="5th percentile over the curve draws")
    high: float = Field(description="95th percentile over the curve draws")


class Outcome(BaseModel):
    """Expected totals at the point curves; intervals when the curves carry draws."""

    spend: float
    revenue: float
    margin: float
    roas: float | None
    draws: int | None = None
    revenue_interval: Interval | None = None
    margin_interval: Interval | None = None
    roas_interval: Interval | None = None


class ShadowPrices(BaseModel):
    """Objective units gained per unit of each relaxed constraint, at the optimum."""

    spendable: float = Field(description="per extra dollar of spendable budget (budget dual)")
    budget: float = Field(description="per extra dollar of total budget B, same reserve")
    roas_floor_per_unit: float = Field(
        description="first-order gain per unit lower ROAS floor (mu * spend)"
    )
    roas_floor_relax_0_1: float | None = Field(
        None, description="exact gain from re-solving with the floor 0.1 lower"
    )
    retailer_caps: dict[str, float] = Field(
        default_factory=dict, description="per extra dollar of each retailer cap in the brief"
    )
    group_caps: dict[str, float] = Field(
        default_factory=dict,
        description="per extra dollar of each group cap on the curves (e.g. a policy's monthly "
        "placement cap); 0 where the cap is slack",
    )
    retailer_mins: dict[str, float] = Field(
        default_factory=dict,
        description="lost per dollar of each retailer minimum in the brief (what one dollar "
        "less of it would give back); 0 where the plan spends more there anyway",
    )


class Checks(BaseModel):
    """Constraint violations of the returned plan, relative (0 when met)."""

    budget: float
    min_total_spend: float
    roas_floor: float
    retailer_caps: float
    line_bounds: float
    group_caps: float = 0.0
    retailer_mins: float = 0.0


class AllocationResult(BaseModel):
    status: Literal["optimal", "infeasible"]
    solver_status: str
    path: Path = Field(description="which solver produced the plan")
    objective: Objective
    objective_value: float | None
    seconds: float
    spendable: float
    allocation: AllocationTable | None = None
    outcome: Outcome | None = None
    shadow_prices: ShadowPrices | None = None
    checks: Checks | None = None
    diagnosis: Diagnosis | None = None
    dropped_below_minimum: list[int] = Field(
        default_factory=list, description="rows dropped by the policy minimum-unit rule"
    )
    notes: list[str] = Field(default_factory=list)


def _interval(values: np.ndarray) -> Interval:
    low, high = np.percentile(values, [5.0, 95.0])
    return Interval(low=float(low), high=float(high))


def outcome(curves: CurveSet, x: np.ndarray) -> Outcome:
    """Totals at the point curves, and 5-95% intervals over the curve draws when given."""
    rev = curves.revenue(x)
    spend = float(x.sum())
    revenue = float(rev.sum())
    out = Outcome(
        spend=spend,
        revenue=revenue,
        margin=float(np.dot(curves.margin, rev)),
        roas=revenue / spend if spend > 0 else None,
    )
    if curves.a_draws is None or curves.b_draws is None:
        return out
    d = curves.a_draws.shape[0]
    rev_d = np.empty(d)
    mar_d = np.empty(d)
    funded = np.flatnonzero(x > 0)
    xs, m = x[funded], curves.margin[funded]
    block = max(1, 2_000_000 // max(funded.size, 1))
    for start in range(0, d, block):
        a = curves.a_draws[start : start + block][:, funded]
        b = curves.b_draws[start : start + block][:, funded]
        r = a * -np.expm1(-xs / b)
        rev_d[start : start + block] = r.sum(axis=1)
        mar_d[start : start + block] = r @ m
    out.draws = d
    out.revenue_interval = _interval(rev_d)
    out.margin_interval = _interval(mar_d)
    if spend > 0:
        out.roas_interval = _interval(rev_d / spend)
    return out


def allocation_table(curves: CurveSet, x: np.ndarray) -> AllocationTable:
    """The plan `x` per line: spend, expected revenue and margin, marginal ROAS."""
    rev = curves.revenue(x)
    return AllocationTable.model_construct(
        retailer_id=curves.retailer_id.tolist(),
        placement=curves.placement.tolist(),
        gtin=curves.gtin.tolist(),
        spend=x.tolist(),
        revenue=rev.tolist(),
        margin=(curves.margin * rev).tolist(),
        marginal_roas=curves.marginal_roas(x).tolist(),
    )
