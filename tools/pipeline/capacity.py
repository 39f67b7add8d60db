"""Whether a brief's budget is far beyond what the brand's history can absorb: the check the
planner makes before anything is planned, so that "$5 billion" for "$5 million" asks a person
instead of running the clean room, the fit and the optimizer on it.

    check = check_budget(brief, data_dir=Path("data"))
    check.far_beyond, check.warning     # True, "the budget $5,000,000,000 is 4,202x ..."

The capacity of each retailer the brief names is the brand's own historical ad spend there
per day (the median week's spend over 7, from the clean room's weekly spend: the same query
the curve fit makes first), times the flight's days. The limit is `FACTOR` times the sum.
Why 10: a response curve fitted on history says little about spend far outside it, and in the
simulated market the brand's historical spend per line sits at 0.5-0.7 of its curve's scale
b, so ten times history is about 6 b, where a line has already returned 99.7% of all it ever
can: beyond that a budget buys nothing the plan could show. An order of magnitude is also
what a slipped unit or an extra zero looks like.

The history is read only where reading it costs no privacy budget: at a retailer that
requires differential privacy, only when the same release was made before (answered again
free). A retailer whose history is not read that way (a DP retailer not yet released, no
harmonized data yet, no campaigns of the brand there) counts with the most its written rules
let a brand spend in the flight instead: its monthly placement caps, paced as the optimizer
paces them. Each retailer's figure says which source it came from.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from tools.brief import StructuredBrief
from tools.brief.rules.text import usd
from tools.cleanroom import CleanRoom, build_query
from tools.errors import RMNError
from tools.optimize.limits import max_days_in_a_month
from tools.pipeline.query import flight_days
from tools.policy import load_retailer_policy

FACTOR = 10.0
Source = Literal["history", "policy_caps"]


class RetailerCapacity(BaseModel):
    retailer: str
    per_day: float = Field(ge=0, description="USD a day the brand can be taken to spend there")
    over_flight: float = Field(ge=0, description="per_day over the flight (caps: as paced)")
    source: Source
    note: str = Field(description="where the figure came from, in words")


class BudgetCheck(BaseModel):
    budget: float
    flight_days: int
    capacity: float = Field(description="sum of the retailers' capacity over the flight")
    factor: float = FACTOR
    limit: float = Field(description="factor x capacity: a budget above it is far beyond")
    retailers: list[RetailerCapacity]
    far_beyond: bool
    warning: str | None = Field(None, description="what the planner tells the person, if asked")


def _history(room: CleanRoom, brand: str, retailer: str) -> tuple[float | None, str]:
    """(the brand's ad spend per day at the retailer, or None where it cannot be read for
    free; why)."""
    if retailer not in room.retailers():
        return None, "no harmonized data yet"
    rules = room.rules_for(retailer)
    query = build_query(
        tenant=brand,
        retailer=retailer,
        group_by=["week"],
        metrics=["spend"],
        dp_epsilon=rules.default_epsilon if rules.dp_required else None,
    )
    if room.cost(query) > 0:
        return None, "its history is released only under differential privacy, not spent on this"
    try:
        result = room.query(query)
    except RMNError as err:
        return None, f"history not readable: {err.message}"
    weeks = [max(0.0, float(row["spend"])) for row in result.rows]
    if not weeks:
        return None, "no week of history survives the clean room's rules"
    per_day = statistics.median(weeks) / 7
    return per_day, f"{usd(round(per_day))}/day, the median of {len(weeks)} weeks of spend"


def _caps(retailer: str, days: int, brief: StructuredBrief) -> tuple[float, float, str]:
    """(per day, over the flight, note) from the retailer's monthly placement caps."""
    try:
        placements = load_retailer_policy(retailer).bidding.placements
    except RMNError as err:
        return 0.0, 0.0, f"no written spend caps ({err.message})"
    monthly = sum(p.max_monthly_spend_usd for p in placements.values())
    over = monthly * days / max_days_in_a_month(days, brief.flight_start)
    return over / days, over, f"its monthly placement caps ({usd(monthly)} a month)"


def check_budget(
    brief: StructuredBrief, *, data_dir: Path, room: CleanRoom | None = None
) -> BudgetCheck:
    """Whether `brief.total_budget` is more than `FACTOR` times what its retailers took from
    the brand before over a flight as long (see the module docstring), and the warning to ask
    a person with, naming the budget and the history."""
    room = room or CleanRoom(Path(data_dir))
    days = flight_days(brief)
    found: list[RetailerCapacity] = []
    for retailer in brief.resolved_retailers():
        per_day, why = _history(room, brief.brand_id, retailer)
        if per_day is not None:
            found.append(
                RetailerCapacity(
                    retailer=retailer,
                    per_day=per_day,
                    over_flight=per_day * days,
                    source="history",
                    note=why,
                )
            )
            continue
        per_day, over, note = _caps(retailer, days, brief)
        found.append(
            RetailerCapacity(
                retailer=retailer,
                per_day=per_day,
                over_flight=over,
                source="policy_caps",
                note=f"{note}; {why}",
            )
        )
    capacity = sum(r.over_flight for r in found)
    limit = FACTOR * capacity
    # Nothing known of any retailer (no history, no written caps): nothing to judge by.
    far = capacity > 0 and brief.total_budget > limit
    warning = None
    if far:
        times = f"{brief.total_budget / capacity:,.0f}x"
        parts = "; ".join(f"{r.retailer}: {r.note}" for r in found)
        warning = (
            f"total_budget: the budget {usd(brief.total_budget)} is {times} what "
            f"{' and '.join(r.retailer for r in found)} can absorb for {brief.brand_id} in "
            f"{days} days by its history ({usd(round(capacity))}; {parts}); above {FACTOR:g}x "
            f"({usd(round(limit))}) spend buys almost nothing a plan could show: confirm the "
            "amount or correct it"
        )
    return BudgetCheck(
        budget=brief.total_budget,
        flight_days=days,
        capacity=capacity,
        limit=limit,
        retailers=found,
        far_beyond=far,
        warning=warning,
    )
