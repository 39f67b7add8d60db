"""Privacy budgets when planning: what fitting the brand's curves will spend at each retailer
that requires differential privacy, said before anything is spent, and the retailers whose
remaining budget cannot cover it, which are planned on prior-only curves instead.

The estimate runs the curve fetch against a metered clean room that answers only from
earlier releases (free: `tools.cleanroom` stores every noisy answer it released) and stops
at the first query that would spend. The queries the fetch makes at a retailer do not
depend on the flight or on the other retailers planned with it, so planning the same or
another flight again finds them released: it spends nothing.

A retailer whose budget is spent (this period) is not asked at all. Its line items, the
SKUs the brand lists there on the placements the retailer sells, get prior-only curves
pooled from the brand's other line items; the plan says so in its notes and carries a
review flag, so it cannot be approved automatically. When every planned retailer is spent,
the prior comes from the brand's history at retailers that need no privacy budget.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from tools.cleanroom import CleanRoom, CleanRoomQuery, CleanRoomResult, build_query
from tools.curves import DataView, cleanroom_view
from tools.curves.cleanroom_view import DP_QUERIES_PER_RETAILER
from tools.curves.views import with_prior_only_lines
from tools.errors import PrivacyBudgetExceededError, RMNError, UnknownBrandError
from tools.firstparty import FirstPartyStore
from tools.pipeline.common import PipelineError
from tools.policy import load_retailer_policy
from tools.rmis import Placement

_TOLERANCE = 1e-9


class RetailerBudget(BaseModel):
    """One differential-privacy retailer's budget against what fitting the curves needs."""

    retailer: str
    epsilon_per_query: float
    needed: float = Field(description="at most this much epsilon the fetch charges now")
    spent: float = Field(description="spent this budget period before the fetch")
    remaining: float
    budget: float
    period: str
    refreshes_at: datetime | None
    prior_only: bool = Field(description="the budget cannot cover it: prior-only curves")


class _WouldSpend(Exception):
    """A metered query that is not answered by an earlier release."""


class _Meter(CleanRoom):
    """A clean room that answers only from earlier releases and counts them."""

    answered = 0

    def query(self, q: CleanRoomQuery) -> CleanRoomResult:
        if self.cost(q) > 0:
            raise _WouldSpend
        result = super().query(q)
        self.answered += int(result.dp is not None)
        return result


def privacy_budgets(room: CleanRoom, brand: str, retailers: list[str]) -> list[RetailerBudget]:
    """What fetching the brand's curves at `retailers` will spend at those that require
    differential privacy (nothing is spent finding out)."""
    out: list[RetailerBudget] = []
    for retailer in retailers:
        rules = room.rules_for(retailer)
        if not rules.dp_required:
            continue
        meter = _Meter(room.data_dir, room.rules_for, clock=room.ledger.clock)
        try:
            cleanroom_view(room.data_dir, brand, retailers=[retailer], room=meter)
            answered = DP_QUERIES_PER_RETAILER
        except _WouldSpend:
            answered = meter.answered
        needed = rules.default_epsilon * max(DP_QUERIES_PER_RETAILER - answered, 0)
        status = room.budget(brand, retailer)
        out.append(
            RetailerBudget(
                retailer=retailer,
                epsilon_per_query=rules.default_epsilon,
                needed=needed,
                spent=status.spent,
                remaining=status.remaining,
                budget=status.budget,
                period=status.period,
                refreshes_at=status.refreshes_at,
                prior_only=needed > status.remaining + _TOLERANCE,
            )
        )
    return out


def spend_message(budgets: list[RetailerBudget]) -> str:
    """What the fetch will spend, for the progress stream and the plan's notes."""
    if not budgets:
        return "no retailer planned requires differential privacy: no privacy budget is spent"
    parts = []
    for b in budgets:
        if b.prior_only:
            parts.append(
                f"{b.retailer}: needs epsilon {b.needed:g}, {b.remaining:g} of {b.budget:g} "
                f"left{_refresh(b)}: not queried, prior-only curves"
            )
        elif b.needed == 0:
            parts.append(f"{b.retailer}: epsilon 0 (every query was released before)")
        else:
            parts.append(
                f"{b.retailer}: up to epsilon {b.needed:g} of {b.remaining:g} left "
                f"(budget {b.budget:g}{_refresh(b)})"
            )
    total = sum(b.needed for b in budgets if not b.prior_only)
    return f"the clean-room queries will use up to epsilon {total:g}: " + "; ".join(parts)


def _refresh(b: RetailerBudget) -> str:
    if b.refreshes_at is None:
        return ", never refreshed"
    return f" this {_PERIOD_NOUN.get(b.period, b.period)}, refreshed {b.refreshes_at:%Y-%m-%d}"


_PERIOD_NOUN = {"daily": "day", "weekly": "week", "monthly": "month", "quarterly": "quarter"}


def review_flags(budgets: list[RetailerBudget]) -> list[str]:
    """Why a reviewer must look at the plan: retailers planned without their own history."""
    return [
        f"{b.retailer}: privacy budget spent ({b.remaining:g} of {b.budget:g} epsilon left, "
        f"{b.needed:g} needed{_refresh(b)}); planned on prior-only curves, not its own history"
        for b in budgets
        if b.prior_only
    ]


def fetch_view(
    room: CleanRoom,
    brand: str,
    tenant: str,
    retailers: list[str],
    prior_only: list[str],
    flight_days: int,
) -> tuple[DataView, list[str], list[str]]:
    """The clean-room view of `retailers` but those in `prior_only`, plus prior-only lines
    for those. Returns (view, the retailers planned prior-only, the retailers asked only to
    pool a prior from). A retailer that runs out of budget during the fetch (another plan
    spent it meanwhile) joins the prior-only ones; what it released is reused on retry."""
    spent_out = list(prior_only)
    for _ in range(len(retailers) + 1):
        fetch = [r for r in retailers if r not in spent_out]
        donors = [] if fetch else _prior_donors(room, brand, retailers)
        try:
            view = cleanroom_view(
                room.data_dir, brand, retailers=fetch + donors, flight_days=flight_days, room=room
            )
        except PrivacyBudgetExceededError as err:
            retailer = err.detail.get("retailer")
            if retailer not in fetch or retailer in spent_out:
                raise
            spent_out.append(retailer)
            continue
        keys = _prior_only_keys(room.data_dir, tenant, brand, spent_out)
        return with_prior_only_lines(view, keys), spent_out, donors
    raise PipelineError("the clean-room fetch kept running out of privacy budget")  # unreachable


def _prior_donors(room: CleanRoom, brand: str, planned: list[str]) -> list[str]:
    """Retailers outside the plan that need no privacy budget and hold the brand's history,
    to pool a prior from when every planned retailer's budget is spent."""
    donors = []
    for retailer in room.retailers():
        if retailer in planned or room.rules_for(retailer).dp_required:
            continue
        try:
            room.query(build_query(tenant=brand, retailer=retailer, metrics=["events"]))
        except UnknownBrandError:
            continue
        donors.append(retailer)
    if not donors:
        raise PipelineError(
            f"the privacy budget of {', '.join(planned)} is spent and {brand} has no history "
            "at a retailer without a privacy budget to pool prior-only curves from; plan with "
            "another retailer too, or when the budget refreshes (`rmn cleanroom budget`)",
            retailers=planned,
        )
    return donors


def _prior_only_keys(
    data_dir: Path, tenant: str, brand: str, retailers: list[str]
) -> list[tuple[str, str, str]]:
    """(retailer, placement, gtin) of the SKUs the brand lists at `retailers`, on every
    placement each retailer sells."""
    if not retailers:
        return []
    skus = FirstPartyStore(data_dir, tenant=tenant, brand=brand).skus()
    listed = zip(skus.column("gtin").to_pylist(), skus.column("retailers").to_pylist(), strict=True)
    where = [(str(g), set(at or [])) for g, at in listed]
    keys = []
    for retailer in retailers:
        try:
            placements = [p.value for p in load_retailer_policy(retailer).placements]
        except RMNError:
            placements = [p.value for p in Placement]
        keys += [(retailer, p, g) for g, at in where if retailer in at for p in placements]
    return keys
