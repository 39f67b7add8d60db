"""Guardrails: what a manager must read before approving, in words, from the plan's own
numbers. Each one blocks auto-approval (`tools.plan.approval.blocking`) and caps the plan's
confidence below the auto-approval threshold (`tools.plan.reflection.reflect`):

    loses_money       the plan, or a retailer in it, is expected to return under $1 of extra
                      revenue per ad dollar (iROAS below 1), or the plan's extra margin is
                      below its ad spend
    unspent           budget left unspent (beyond rounding), and why: the caps that bind, the
                      ROAS floor, or nothing more worth buying
    weak_experiment   the experiment's power is below its target (0.8): too weak to read
    binding_caps      caps whose shadow price is positive: the next dollar there would pay
    far_from_history  the budget is far beyond what the brand's history can absorb

    for g in guardrails(plan):
        print(g.code, g.words)
"""

from __future__ import annotations

import math

from pydantic import BaseModel

from tools.plan.facts import money as _usd
from tools.plan.labels import cap_label, confidence_text, held_reason, retailer_name
from tools.plan.plan import Confidence, Plan

# Left unspent beyond this share of the spendable budget is worth a word (rounding and the
# solver's tolerance leave well under 0.1%).
UNSPENT_SHARE = 0.01
TARGET_POWER = 0.8
BINDING_EPS = 1e-9
# A cap binds when loosening it is worth at least half a cent per extra dollar: below that
# its shadow price shows as $0.00 wherever a manager reads it, and reports listed caps
# "binding at $0.00 per extra dollar" beside a limits table saying they cost nothing.
BINDING_PRICE = 0.005
# The planner's capacity warning (`tools.pipeline.capacity`) says the budget is this far
# beyond the brand's history.
HISTORY_MARK = "by its history"

__all__ = [
    "Guardrail",
    "binding_caps",
    "hold_confidence",
    "guardrail_flags",
    "guardrails",
    "left_unspent",
    "losing_retailers",
    "price_scale",
    "spends_all",
]


class Guardrail(BaseModel):
    code: str
    words: str


def price_scale(plan: Plan) -> float:
    """What turns the plan's shadow prices into its goal's dollars per extra dollar of a
    limit. A ROAS plan's are return per ad dollar (a ratio) per extra dollar, about 1e-6 on
    a $450,000 plan: times its spend they are the extra revenue, as the other goals' are (at
    the optimum of revenue - ROAS x spend, the ratio moves by the revenue term over spend).
    Read raw, a ROAS plan's binding caps were said to bind nowhere."""
    outcome = plan.expected_outcome
    if plan.brief.objective == "roas" and outcome is not None and outcome.spend > 0:
        return float(outcome.spend)
    return 1.0


def binding_caps(plan: Plan) -> dict[str, float]:
    """Every cap whose shadow price, in the goal's dollars (`price_scale`), is at least
    `BINDING_PRICE`: a retailer's (`alpha`) and a retailer's placement's
    (`beta/sponsored_search`, the monthly caps). Non-binding caps read 1e-13 to 1e-12 (solver
    noise); a few read under a tenth of a cent."""
    out: dict[str, float] = {}
    scale = price_scale(plan)
    for kind in ("retailer_caps", "group_caps"):
        caps = plan.shadow_prices.get(kind) or {}
        if isinstance(caps, dict):
            out.update({str(k): float(v) * scale for k, v in caps.items()
                        if isinstance(v, int | float) and v * scale >= BINDING_PRICE})  # fmt: skip
    return out


def _losing(plan: Plan) -> list[Guardrail]:
    out = []
    outcome = plan.expected_outcome
    if outcome is not None and outcome.iroas.mean < 1:
        out.append(Guardrail(code="loses_money", words=(
            f"The plan is expected to bring back ${outcome.iroas.mean:.2f} of extra revenue per "
            "ad dollar: it loses money.")))  # fmt: skip
    elif outcome is not None and outcome.incremental_margin.mean < outcome.spend:
        # Margin below the ad spend loses money as surely: the reflection rated it a high
        # risk while auto-approval's line said "this plan meets both" (va56 of unseen41:
        # $725,168 of margin on $800,000 of spend, $3.92 of revenue per ad dollar).
        out.append(Guardrail(code="loses_money", words=(
            f"The plan is expected to bring back {_usd(outcome.incremental_margin.mean)} of "
            f"extra margin on {_usd(outcome.spend)} of ad spend: it loses money after paying "
            "for its ads.")))  # fmt: skip
    for rid, spent, per_dollar in losing_retailers(plan):
        out.append(Guardrail(code="loses_money", words=(
            f"At {retailer_name(rid)} the plan expects ${per_dollar:.2f} of extra revenue per ad "
            f"dollar on {_usd(spent)}: that spend loses money.")))  # fmt: skip
    return out


def losing_retailers(plan: Plan) -> list[tuple[str, float, float]]:
    """(retailer id, its spend, its extra revenue per ad dollar) of each retailer whose spend
    brings back less extra revenue than it costs, most spend first."""
    spend: dict[str, float] = {}
    revenue: dict[str, float] = {}
    for row in plan.allocation:
        spend[row.retailer_id] = spend.get(row.retailer_id, 0.0) + row.spend
        revenue[row.retailer_id] = revenue.get(row.retailer_id, 0.0) + row.expected_revenue
    out = [(rid, spend[rid], revenue[rid] / spend[rid]) for rid in spend
           if spend[rid] > 0 and revenue[rid] < spend[rid]]  # fmt: skip
    return sorted(out, key=lambda r: (-r[1], r[0]))


def left_unspent(plan: Plan) -> tuple[float, float] | None:
    """(what is left of the spendable budget, the spendable budget: the budget less the
    reserve), or None without an outcome or anything to spend."""
    outcome = plan.expected_outcome
    if outcome is None:
        return None
    spendable = plan.brief.total_budget - outcome.reserve
    return (spendable - outcome.spend, spendable) if spendable > 0 else None


def spends_all(plan: Plan) -> bool:
    """Whether the plan places its spendable budget, up to rounding (`UNSPENT_SHARE`)."""
    left = left_unspent(plan)
    return left is not None and left[0] <= UNSPENT_SHARE * left[1]


def _unspent(plan: Plan, binding: dict[str, float]) -> list[Guardrail]:
    found = left_unspent(plan)
    if found is None or spends_all(plan):
        return []
    left, spendable = found
    floor = plan.shadow_prices.get("roas_floor_per_unit")
    if binding:
        why = "the caps that bind (" + "; ".join(cap_label(c) for c in sorted(binding)) + (
            ") allow no more"
        )
    elif isinstance(floor, int | float) and floor > BINDING_EPS:
        why = f"the minimum return of ${plan.brief.roas_floor:.2f} per ad dollar allows no more"
    else:
        why = "no line returns enough for more spend to pay"
    return [Guardrail(code="unspent", words=(
        f"{_usd(left)} of the {_usd(spendable)} to spend is left unspent: {why}."))]  # fmt: skip


def guardrails(plan: Plan) -> list[Guardrail]:
    """Every guardrail the plan trips, in words."""
    binding = binding_caps(plan)
    out = _losing(plan) + _unspent(plan, binding)
    exp = plan.experiment or {}
    power = exp.get("power")
    target = exp.get("target_power") or TARGET_POWER
    if isinstance(power, int | float) and power < target:
        out.append(Guardrail(code="weak_experiment", words=(
            f"The experiment has a {power:.0%} chance of detecting the expected lift, below "
            f"the {target:.0%} needed to read it.")))  # fmt: skip
    if binding:
        caps = ", ".join(f"{k} (${v:,.2f} more per extra dollar)"
                         for k, v in sorted(binding.items(), key=lambda kv: -kv[1]))  # fmt: skip
        out.append(Guardrail(code="binding_caps", words=f"Caps bind: {caps}."))
    for warning in plan.brief.warnings:
        if HISTORY_MARK in warning:
            out.append(Guardrail(code="far_from_history", words=(
                "The budget is far beyond what the brand's history can absorb: "
                + warning.split(": ", 1)[-1])))  # fmt: skip
    return out


def guardrail_flags(plan: Plan) -> list[str]:
    return [g.words for g in guardrails(plan)]


# Why a guardrail holds a plan for a person, in words ("as long as these stand: weak
# experiment, binding caps" was not understood in 15 of 26 reports of unseen38).
HELD_FOR = {
    "loses_money": "the plan loses money after ad spend",
    "unspent": "part of the budget stays unspent",
    "weak_experiment": "the experiment is too weak to read reliably",
    "binding_caps": "caps hold spend back",
    "far_from_history": "spend goes far beyond what was spent before",
}


def hold_confidence(c: Confidence, tripped: list[Guardrail], threshold: float) -> Confidence:
    """Confidence held below the auto-approval `threshold` while any guardrail stands, with
    the value it was computed at and why it is held."""
    if not tripped or c.value < threshold:
        return c
    held = max(0.0, math.floor((threshold - 0.01) * 100) / 100)
    why = list(dict.fromkeys(HELD_FOR.get(g.code, g.code.replace("_", " ")) for g in tripped))
    return c.model_copy(update={
        "value": held,
        "computed": c.value,
        "held_below": threshold,
        "held_for": why,
        "rationale": f"{c.rationale} Held at {held:.2f} (computed {confidence_text(c.value)}) "
                     f"{held_reason(why)}.",
    })  # fmt: skip
