"""Why a brief cannot be met, the best that can be reached, and what to relax.

An infeasible brief is a normal answer: the diagnosis names the binding constraint, gives the
best achievable value (e.g. the highest ROAS reachable at this budget) and concrete
relaxations. Every figure comes from the exact water-filling solver.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from tools.optimize.curves import Problem
from tools.optimize.kkt import max_roas, max_spend_at_floor

Binding = Literal[
    "line_minimums", "retailer_cap", "group_cap", "capacity", "roas_floor", "retailer_minimum"
]


class Diagnosis(BaseModel):
    binding: Binding = Field(description="the constraint that cannot be met")
    message: str
    highest_reachable_roas: float | None = Field(
        None, description="best total ROAS at the spend the brief requires"
    )
    max_spend_at_floor: float | None = Field(
        None, description="largest total spend at which the ROAS floor can hold, USD"
    )
    capacity: float | None = Field(
        None, description="most the lines can absorb under max_spend and spend caps, USD"
    )
    suggested_roas_floor: float | None = None
    suggested_spend: float | None = Field(None, description="a total spend that works, USD")
    suggestions: list[str] = Field(default_factory=list)


def _usd(v: float) -> str:
    return f"${v:,.0f}"


def _round_down(v: float, digits: int = 2) -> float:
    return math.floor(v * 10**digits) / 10**digits


def capacity(p: Problem) -> float:
    """Most the lines can absorb: line maxima, with each cap's lines cut down to it, children
    first (cutting a cap's lines never lifts a cap inside it)."""
    return float(_room(p).sum())


def _room(p: Problem) -> np.ndarray:
    """Per line, what `capacity` lets it absorb."""
    room = p.hi.copy()
    for g in p.groups:
        total = float(room[g.idx].sum())
        if total <= g.cap:
            continue
        sub = room[g.idx]
        unbounded = ~np.isfinite(sub)
        if unbounded.any():
            room[g.idx] = np.where(unbounded, g.cap / unbounded.sum(), 0.0)
        else:
            room[g.idx] = sub * (g.cap / total)
    return room


def precheck(p: Problem) -> Diagnosis | None:
    """Constraints on spend alone (no curves needed): minimums against the budget and caps,
    and the spend the brief requires against what the lines can absorb."""
    lo_total = float(p.lo.sum())
    if lo_total > p.s_hi * (1 + 1e-12):
        return Diagnosis(
            binding="line_minimums",
            message=f"line minimums add up to {_usd(lo_total)}, above the "
            f"{_usd(p.s_hi)} spendable budget",
            suggested_spend=lo_total,
            suggestions=[
                f"raise the spendable budget to at least {_usd(lo_total)}",
                "lower min_spend (or min_unit) on some lines",
            ],
        )
    for g in p.groups:
        lo_g = float(p.lo[g.idx].sum())
        if lo_g > g.cap * (1 + 1e-12):
            what = g.name if g.kind == "retailer" else f"cap group {g.name}"
            return Diagnosis(
                binding="retailer_cap" if g.kind == "retailer" else "group_cap",
                message=f"line minimums in {what} add up to {_usd(lo_g)}, above its "
                f"{_usd(g.cap)} cap",
                suggestions=[
                    f"raise the {what} cap to at least {_usd(lo_g)}",
                    f"lower min_spend (or min_unit) on {what} lines",
                ],
            )
    if (short := _minimums_out_of_reach(p)) is not None:
        return short
    cap = capacity(p)
    if cap < p.s_lo * (1 - 1e-12):
        return Diagnosis(
            binding="capacity",
            message=f"the lines can absorb at most {_usd(cap)} (max_spend, spend caps, "
            f"out-of-stock lines), below the {_usd(p.s_lo)} the brief requires spending",
            capacity=cap,
            suggested_spend=math.floor(cap),
            suggestions=[
                f"spend only {_usd(math.floor(cap))}: set min_spend_fraction to "
                f"{_round_down(cap / p.s_hi, 4)} or less",
                "raise max_spend on saturated lines or the spend caps",
            ],
        )
    return None


def _minimums_out_of_reach(p: Problem) -> Diagnosis | None:
    """Retailer minimums the plan cannot meet: together above the spendable budget, or one
    above what its retailer's lines can absorb under their maxima and caps."""
    if not p.mins:  # every precheck of every re-solve comes here
        return None
    total = sum(m.amount for m in p.mins)
    if total > p.s_hi * (1 + 1e-12):
        names = ", ".join(f"{m.name} {_usd(m.amount)}" for m in p.mins)
        return Diagnosis(
            binding="retailer_minimum",
            message=f"the retailer minimums ({names}) add up to {_usd(total)}, above the "
            f"{_usd(p.s_hi)} spendable budget",
            suggested_spend=total,
            suggestions=[f"raise the budget so that {_usd(total)} is left for ads after the "
                         "reserve", "lower or lift a retailer minimum"],
        )  # fmt: skip
    room = _room(p)
    for m in p.mins:
        most = float(room[m.idx].sum())
        if m.amount > most * (1 + 1e-12):
            return Diagnosis(
                binding="retailer_minimum",
                message=f"the {_usd(m.amount)} minimum at {m.name} is above the "
                f"{_usd(most)} its lines can take (max_spend, spend caps, out-of-stock lines)",
                capacity=most,
                suggestions=[f"lower the minimum at {m.name} to {_usd(math.floor(most))} or "
                             "less", f"raise or lift the caps at {m.name}"],
            )  # fmt: skip
    return None


def diagnose_floor(p: Problem, reserve_fraction: float = 0.0) -> Diagnosis:
    """The ROAS floor cannot hold at the spend the brief requires: report the highest ROAS
    reachable there and the largest spend at which the floor does hold."""
    assert p.k is not None
    k = p.k
    best, _, _ = max_roas(p, max(p.s_lo, 1e-9 * p.s_hi), p.s_hi)
    top = max_spend_at_floor(p, k)
    floor_to = _round_down(best)
    spend_to = math.floor(top)
    suggestions = [f"lower the ROAS floor to {floor_to:g}"]
    if top > 0:
        budget_to = spend_to / (1.0 - reserve_fraction)
        suggestions.append(
            f"spend only {_usd(spend_to)} (a {_usd(budget_to)} budget at this reserve; "
            f"min_spend_fraction {_round_down(spend_to / p.s_hi, 4)} or less)"
        )
        tail = f"; the floor holds up to a spend of {_usd(spend_to)}"
    else:
        first_dollar = float(np.max(np.where(p.hi > 0, p.a / p.b, 0.0)))
        tail = f"; no spend level reaches it (the best first-dollar ROAS is {first_dollar:.3g})"
    where = (
        "at the full spendable budget"
        if p.s_lo >= p.s_hi
        else (f"spending at least {_usd(p.s_lo)}")
    )
    return Diagnosis(
        binding="roas_floor",
        message=f"ROAS >= {k:g} is out of reach: the highest reachable ROAS {where} "
        f"({_usd(p.s_hi)} spendable) is {best:.4g}{tail}",
        highest_reachable_roas=best,
        max_spend_at_floor=top,
        suggested_roas_floor=floor_to,
        suggested_spend=float(spend_to) if top > 0 else None,
        suggestions=suggestions,
    )
