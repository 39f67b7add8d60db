"""What an edit changed: the re-planned plan against the plan it replaced, in the terms a
manager reads (spend moved per retailer and placement, the change in expected margin and
return per ad dollar) and what binds in the new plan (constraints with a positive shadow
price: the objective a dollar more of that limit would buy).

    diff = plan_diff(old_plan, new_plan)
    diff.moved      # [SpendMove(scope="retailer", name="alpha", before=..., after=...)]
    diff.binding    # [Binding(constraint="group cap beta/sponsored_search", value=0.078)]
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from tools.plan.plan import Plan

# Shadow prices below this (objective per dollar) are solver noise, not a binding limit
# (measured: non-binding caps report 1e-13 to 1e-12 with cvxpy's default tolerances).
BINDING_EPS = 1e-6

__all__ = ["BINDING_EPS", "Binding", "PlanDiff", "SpendMove", "binding_constraints", "plan_diff"]


class SpendMove(BaseModel):
    scope: str = Field(description="retailer or placement")
    name: str
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before


class Binding(BaseModel):
    constraint: str
    value: float = Field(description="objective gained per unit of the relaxed limit")


class PlanDiff(BaseModel):
    moved: list[SpendMove]
    margin_before: float | None
    margin_after: float | None
    iroas_before: float | None
    iroas_after: float | None
    binding: list[Binding]

    @property
    def margin_change(self) -> float | None:
        if self.margin_before is None or self.margin_after is None:
            return None
        return self.margin_after - self.margin_before


def _spend(plan: Plan, key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for row in plan.allocation:
        name = getattr(row, key)
        out[name] = out.get(name, 0.0) + row.spend
    return out


def _moves(before: Plan, after: Plan, key: str) -> list[SpendMove]:
    old, new = _spend(before, key), _spend(after, key)
    names = sorted(set(old) | set(new), key=lambda n: -abs(new.get(n, 0.0) - old.get(n, 0.0)))
    scope = "retailer" if key == "retailer_id" else "placement"
    return [
        SpendMove(scope=scope, name=n, before=old.get(n, 0.0), after=new.get(n, 0.0))
        for n in names
    ]


def _flat(data: Any, prefix: str = "") -> list[tuple[str, float]]:
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _flat(v, f"{prefix} {k}".strip())]
    if isinstance(data, int | float) and not isinstance(data, bool) and math.isfinite(data):
        return [(prefix, float(data))]
    return []


def binding_constraints(plan: Plan) -> list[Binding]:
    """The plan's constraints with a positive shadow price, largest first."""
    items = [
        Binding(constraint=name.replace("_", " "), value=value)
        for name, value in _flat(plan.shadow_prices)
        if value > BINDING_EPS
    ]
    return sorted(items, key=lambda b: -b.value)


def plan_diff(before: Plan, after: Plan) -> PlanDiff:
    """`after` (the re-planned plan) against `before` (the plan the edit replaced)."""

    def mean(plan: Plan, field: str) -> float | None:
        outcome = plan.expected_outcome
        return getattr(outcome, field).mean if outcome is not None else None

    return PlanDiff(
        moved=_moves(before, after, "retailer_id") + _moves(before, after, "placement"),
        margin_before=mean(before, "incremental_margin"),
        margin_after=mean(after, "incremental_margin"),
        iroas_before=mean(before, "iroas"),
        iroas_after=mean(after, "iroas"),
        binding=binding_constraints(after),
    )
