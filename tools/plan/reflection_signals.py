"""A plan's measured signals, the inputs of its reflection (`tools.plan.reflection`): how
uncertain its curves are, how much of its spend has history, its room above the floor, the
caps that bind, governance flags, the optimizer's status, the experiment, and the lines that
the risks name.

    signals = signals_from(plan, curve_cv=0.18, coverage=0.92, flags=0)
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Any

from pydantic import BaseModel, Field

from tools.pipeline.query import flight_days
from tools.plan import Plan
from tools.plan.guardrails import TARGET_POWER, binding_caps, losing_retailers, spends_all
from tools.plan.labels import is_number, line_words, out_of_stock

# The width of a 90% normal interval in standard deviations (2 x 1.645): turns an interval's
# relative width into a coefficient of variation.
Z90_WIDTH = 3.29
DEFAULT_TARGET_POWER = TARGET_POWER  # the guardrails' and the designs' default


class ReflectionSignals(BaseModel):
    """The measured inputs of a plan's confidence."""

    curve_uncertainty: float | None = Field(
        None, ge=0, description="curve CV, else the margin interval's relative width / 3.29"
    )
    uncertainty_source: str = Field("none", description="curve_cv | margin_interval | none")
    coverage: float | None = Field(
        None, ge=0, le=1, description="share of spend on lines with enough data"
    )
    objective: str | None = Field(None, description="the brief's goal")
    roas_floor: float | None = None
    iroas: float | None = Field(None, description="expected iROAS of the plan (mean)")
    iroas_low: float | None = Field(None, description="the low end of its likely range")
    roas_slack: float | None = Field(None, description="(iROAS - floor) / floor; None: no floor")
    binding_caps: dict[str, float] = Field(
        default_factory=dict,
        description="cap (retailer, or retailer/placement) -> shadow price of its binding cap",
    )
    governance_flags: int = Field(0, ge=0)
    flag_words: list[str] = Field(default_factory=list, description="what each flag says")
    solver_status: str | None = None
    solver_ok: bool = False
    solver_inaccurate: bool = False
    experiment_power: float | None = Field(None, ge=0, le=1)
    experiment_target_power: float = DEFAULT_TARGET_POWER
    experiment_adequate: bool | None = None
    experiment_budget_for_target: float | None = None
    experiment_held: float | None = Field(None, description="the reserve held for the test")
    experiment_test_spend: float | None = Field(None, description="what the test spends of it")
    experiment_fills_flight: bool = Field(False, description="the test runs the whole flight")
    reserve: float | None = Field(None, description="the brief's experiment reserve, a share")
    reserve_default: bool = Field(False, description="the reserve is the default, not the brief's")
    spend: float = 0.0
    spends_all: bool = Field(False, description="the plan places all of its spendable budget")
    margin: float | None = Field(None, description="expected extra margin, before ad spend")
    pays_back_budget: float | None = Field(
        None, description="a losing plan: the budget with the most margin after ad spend "
        "(`tools.plan.whatif.margin_pays_back`)",
    )
    pays_back_net: float | None = Field(None, description="margin after ad spend there")
    total_budget: float | None = Field(None, description="the brief's budget")
    lines: int = 0
    top_retailer: str | None = None
    top_retailer_share: float | None = None
    thin_lines: list[str] = Field(
        default_factory=list,
        description="the lines with little sales history of their own, most spend first",
    )
    thin_lines_spend: float = Field(0.0, description="the spend of those `thin_lines` named")
    thin_spend: float = Field(0.0, description="the spend of every line with little history")
    losing_retailers: list[tuple[str, float, float]] = Field(
        default_factory=list,
        description="(retailer, spend, extra revenue per ad dollar) where the spend brings "
        "back less revenue than it costs (`tools.plan.guardrails.losing_retailers`)",
    )
    out_of_stock_spend: float = Field(
        0.0, description="planned spend on products likely out of stock the brief keeps in"
    )
    out_of_stock_products: list[str] = Field(default_factory=list, description="their names")
    weakest_lines: list[str] = Field(
        default_factory=list, description="lines with the lowest marginal return, weakest first"
    )

    @property
    def budget(self) -> float | None:
        """The brief's budget, as the reserve held and its share give it."""
        held, share = self.experiment_held, self.reserve
        return held / share if held and share else None

    def share_of_budget(self, amount: float) -> str:
        """A reserve amount as a share of the budget, to a tenth of a percent where a whole
        percent reads as the reserve already held: "raise the reserve to $125,186 (10% of the
        budget)" of a 10% reserve read as no change (wa18 of unseen42)."""
        budget = self.budget or 0.0
        whole = f"{amount / budget:.0%}" if budget else ""
        if budget and self.reserve is not None and whole == f"{self.reserve:.0%}":
            return f"{amount / budget:.1%}"
        return whole

    @property
    def experiment_weak(self) -> bool:
        """Whether the plan's experiment cannot reach the chance it needs to be read."""
        p = self.experiment_power
        return self.experiment_adequate is False or (
            p is not None and p < self.experiment_target_power
        )

    @property
    def net_loss(self) -> bool:
        """Whether the expected extra margin is below the ad spend."""
        return self.margin is not None and self.spend > 0 and self.margin < self.spend


def signals_from(
    plan: Plan, curve_cv: float | None, coverage: float | None, flags: int,
    names: dict[str, str] | None = None, flag_words: list[str] | None = None,
    pays_back: dict[str, Any] | None = None,
) -> ReflectionSignals:
    """The plan's measured signals. `curve_cv`: the fitted curves' coefficient of variation
    (None: read the margin interval instead); `coverage`: share of spend on lines with enough
    data (None: not measured); `flags`: governance findings that block or warn; `names`:
    GTIN -> product name (`tools.pipeline.product_names`), so that the weakest lines read
    "Retailer, placement, product name"; `flag_words`: what the flags say (the risk table
    names them: "1 finding(s)" beside a governance section of passed copy read as a
    contradiction); `pays_back`: a losing plan's `PaysBack` as the optimizer recorded it."""
    outcome = plan.expected_outcome
    uncertainty, source = None, "none"
    if curve_cv is not None and math.isfinite(curve_cv):
        uncertainty, source = max(float(curve_cv), 0.0), "curve_cv"
    elif outcome is not None and outcome.incremental_margin.mean:
        m = outcome.incremental_margin
        width = abs(m.high - m.low) / abs(m.mean)
        uncertainty, source = width / Z90_WIDTH, "margin_interval"
    floor = plan.brief.roas_floor
    iroas = outcome.iroas.mean if outcome is not None else None
    slack = (iroas - floor) / floor if floor and iroas is not None else None
    binding = binding_caps(plan)
    status = (plan.solver_status or "").lower()
    failed = any(w in status for w in ("infeasible", "unbounded", "error", "fail"))
    solver_ok = bool(plan.allocation) and bool(status) and not failed
    spend = sum(r.spend for r in plan.allocation)
    by_retailer: dict[str, float] = {}
    for row in plan.allocation:
        by_retailer[row.retailer_id] = by_retailer.get(row.retailer_id, 0.0) + row.spend
    top = max(by_retailer, key=lambda r: by_retailer[r]) if by_retailer and spend > 0 else None
    funded = [r for r in plan.allocation if r.spend > 0 and r.marginal_return is not None]
    thin = sorted((r for r in plan.allocation if r.spend > 0 and r.little_history),
                  key=lambda r: -r.spend)  # fmt: skip
    # Least revenue per ad dollar first: at the optimum every line's next dollar returns about
    # the same, so sorting on it named lines by a near-tie (sa10 of unseen38).
    weakest = sorted(funded, key=lambda r: (r.expected_revenue / r.spend, r.retailer_id,
                                            r.placement))  # fmt: skip
    oos_products, oos_spend = out_of_stock(plan.allocation, names)
    experiment = plan.experiment or {}
    power = experiment.get("power")
    target = experiment.get("target_power") or DEFAULT_TARGET_POWER
    need = experiment.get("budget_for_target_power")
    return ReflectionSignals(
        curve_uncertainty=uncertainty,
        uncertainty_source=source,
        coverage=None if coverage is None else min(max(float(coverage), 0.0), 1.0),
        objective=plan.brief.objective,
        roas_floor=floor,
        iroas=iroas,
        iroas_low=outcome.iroas.low if outcome is not None else None,
        roas_slack=slack,
        binding_caps=binding,
        governance_flags=max(int(flags), 0),
        flag_words=list(flag_words or []),
        solver_status=plan.solver_status,
        solver_ok=solver_ok,
        solver_inaccurate=solver_ok and plan.solver_inaccurate,
        experiment_power=float(power) if is_number(power) else None,
        experiment_target_power=float(target),
        experiment_adequate=experiment.get("adequate") if experiment else None,
        experiment_budget_for_target=float(need) if is_number(need) else None,
        experiment_held=float(held) if is_number(held := experiment.get("budget")) else None,
        experiment_test_spend=float(spent)
        if is_number(spent := experiment.get("test_spend")) else None,
        experiment_fills_flight=_fills_flight(plan, experiment),
        reserve=plan.brief.experiment_reserve,
        reserve_default="experiment_reserve" in (plan.brief.defaults or []),
        spend=spend,
        spends_all=spends_all(plan),
        margin=outcome.incremental_margin.mean if outcome is not None else None,
        pays_back_budget=_finite((pays_back or {}).get("budget")),
        pays_back_net=_finite((pays_back or {}).get("net")),
        total_budget=_finite(plan.brief.total_budget),
        lines=sum(1 for r in plan.allocation if r.spend > 0),
        top_retailer=top,
        top_retailer_share=by_retailer[top] / spend if top else None,
        weakest_lines=[line_words(r.retailer_id, r.placement, r.gtin, names)
                       for r in weakest[:3]],  # fmt: skip
        out_of_stock_spend=oos_spend,
        out_of_stock_products=oos_products,
        thin_lines=[line_words(r.retailer_id, r.placement, r.gtin, names) for r in thin[:3]],
        thin_lines_spend=sum(r.spend for r in thin[:3]),
        thin_spend=sum(r.spend for r in thin),
        losing_retailers=losing_retailers(plan),
    )


def _fills_flight(plan: Plan, experiment: dict[str, Any]) -> bool:
    """Whether the test cannot run longer: as long as the flight or the retailer allows, or
    ending within a week of the flight's end (a test in whole weeks from a Monday, 4 October
    to 26 December of a flight to 31 December, was told to "extend the test": ya47 of
    unseen44)."""
    days = experiment.get("duration_days")
    if not is_number(days):
        return False
    if days >= flight_days(plan.brief) - 1 or days == longest_test(experiment):
        return True
    end, last = experiment.get("end"), plan.brief.flight_end
    try:
        return last is not None and (last - date.fromisoformat(str(end))).days < 7
    except ValueError:
        return False


def longest_test(experiment: dict[str, Any]) -> int | None:
    """The retailer's longest test in days, from the design's checks: a 90-day test at a
    retailer allowing 90 was told to "extend the test"."""
    return _test_limit(experiment, "max_test_days")


def shortest_test(experiment: dict[str, Any]) -> int | None:
    """The retailer's shortest test in days, from the design's checks: "14 days reach the 80%
    chance needed" beside a 94% chance did not say 14 is the shortest allowed (ua55 of
    unseen40)."""
    return _test_limit(experiment, "min_test_days")


def _test_limit(experiment: dict[str, Any], rule: str) -> int | None:
    for check in experiment.get("rules") or []:
        if check.get("rule") == rule:
            found = re.search(r"\d+", str(check.get("requirement", "")))
            return int(found.group()) if found else None
    return None


def _finite(value: Any) -> float | None:
    return float(value) if is_number(value) else None
