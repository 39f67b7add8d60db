"""Retailer spend rules as optimizer limits, read from each retailer's placements & bidding
policy (`rag_corpus/retailers/<id>/placements_bidding.md`).

    curves, report = policy_limits(curves, flight_days=28, categories=sku_categories)
    result = allocate(curves, brief)     # result.shadow_prices.group_caps["alpha/..."]

Three rules change what a plan may spend; `curves` are one brand's line items for one flight:

- Monthly placement caps. A brand may spend at most `max_monthly_spend_usd` per calendar
  month on one placement at one retailer: a group cap on the sum of that placement's lines.
  Flight spend is paced evenly, so a calendar month holding d of the flight's F days takes
  d / F of it, and the flight may spend cap * F / d_max, with d_max the most flight days in
  one calendar month: exact when `flight_start` is given, else min(F, 31), which holds
  whatever day the flight starts.
- Minimum daily budget. Each campaign needs at least `min_daily_budget_usd` a day, so a line
  gets either nothing or at least that times the flight days (its minimum spend unit). The
  rule is applied per line, as if each line ran as its own campaign: that meets the policy
  however the brand groups lines into campaigns.
- Where a product may run. A line whose placement the retailer does not sell, whose SKU's
  category the retailer does not advertise, or whose category is barred from that placement
  gets a maximum of 0. Categories come from `categories` (GTIN -> category, catalog or policy
  names); without them only the placement rule applies.

Bid floors (`min_bid_usd`) price a click or an impression, not a flight's spend, so they set
no limit here. A retailer without policy documents gets no limits and is listed in the
report; a malformed policy raises `PolicyParseError` naming the file and line.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from tools.optimize.curves import CurveSet, GroupCap, OptimizerInputError
from tools.policy import list_retailers, load_retailer_policy, policy_category
from tools.policy.models import RetailerPolicy


class RestrictedLine(BaseModel):
    """A line the policy keeps at zero spend, and why."""

    row: int
    retailer_id: str
    placement: str
    gtin: str
    reason: str
    source: str = Field(description="policy document and section")


class PolicyLimitReport(BaseModel):
    """What `policy_limits` applied, with the policy section behind each rule."""

    flight_days: int
    flight_start: date | None
    max_days_in_a_month: int = Field(description="d_max: a monthly cap allows cap * F / d_max")
    group_caps: list[GroupCap] = Field(description="one per retailer x placement with lines")
    min_units: dict[str, float] = Field(
        description="per retailer: a funded line's smallest flight spend, USD"
    )
    min_unit_sources: dict[str, str] = Field(default_factory=dict)
    restricted: list[RestrictedLine] = Field(default_factory=list)
    unpoliced_retailers: list[str] = Field(
        default_factory=list, description="retailers without policy documents: no limits"
    )
    notes: list[str] = Field(default_factory=list)


def max_days_in_a_month(flight_days: int, flight_start: date | None = None) -> int:
    """The most days of the flight that fall in one calendar month."""
    if flight_start is None:
        return min(flight_days, 31)
    counts: dict[tuple[int, int], int] = {}
    day, end = flight_start, flight_start + timedelta(days=flight_days)
    while day < end:
        month_end = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
        stop = min(end, month_end + timedelta(days=1))
        counts[(day.year, day.month)] = (stop - day).days
        day = stop
    return max(counts.values())


def _restriction(
    policy: RetailerPolicy, placement: str, category: str | None
) -> tuple[str, str] | None:
    """(reason, source) when the policy keeps this placement x category at zero."""
    bidding = policy.bidding
    sold = {p.value for p in bidding.placements}
    if placement not in sold:
        return (
            f"{policy.retailer_id} does not sell {placement} (sells {', '.join(sorted(sold))})",
            policy.source_for("bidding", "placements.pricing_model", "placements"),
        )
    if category is None:
        return None
    if category in bidding.prohibited_categories:
        return (
            f"{policy.retailer_id} does not advertise {category}",
            policy.source_for("bidding", "prohibited_categories"),
        )
    rule = bidding.restriction(category)
    if rule is not None and placement in {p.value for p in rule.forbidden_placements}:
        return (
            f"{policy.retailer_id} does not allow {category} on {placement}",
            policy.source_for("bidding", f"category_restrictions.{category}"),
        )
    return None


def policy_limits(
    curves: CurveSet,
    flight_days: int,
    *,
    categories: Mapping[str, str] | None = None,
    flight_start: date | None = None,
    corpus: Path | None = None,
) -> tuple[CurveSet, PolicyLimitReport]:
    """One brand's curves with its retailers' spend rules applied (see the module docstring):
    monthly placement caps become group caps, the minimum daily budget a minimum spend unit
    per line, and lines the policy does not allow a maximum of 0. Returns the new curves,
    ready for `allocate`, and a report of every rule applied with its source."""
    if isinstance(flight_days, bool) or not isinstance(flight_days, int | np.integer):
        raise OptimizerInputError(f"flight_days must be a whole number, got {flight_days!r}")
    if flight_days < 1:
        raise OptimizerInputError(f"flight_days must be >= 1, got {flight_days}")
    flight_days = int(flight_days)
    d_max = max_days_in_a_month(flight_days, flight_start)
    known = set(list_retailers(corpus))
    max_spend = curves.max_spend.copy()
    min_unit = curves.min_unit.copy()
    caps: list[GroupCap] = []
    restricted: list[RestrictedLine] = []
    min_units: dict[str, float] = {}
    unit_sources: dict[str, str] = {}
    unpoliced: list[str] = []
    cats = {g: policy_category(c) for g, c in (categories or {}).items()}
    rows = np.arange(len(curves))
    for code, retailer in enumerate(curves.retailers.tolist()):
        at = rows[curves.retailer_code == code]
        if retailer not in known:
            unpoliced.append(retailer)
            continue
        policy = load_retailer_policy(retailer, corpus)
        unit = policy.bidding.min_daily_budget_usd * flight_days
        min_units[retailer] = unit
        unit_sources[retailer] = policy.source_for("bidding", "min_daily_budget_usd")
        min_unit[at] = np.maximum(min_unit[at], unit)
        restricted += _restrict(curves, at, retailer, policy, cats, max_spend)
        caps += _placement_caps(curves, at, retailer, policy, flight_days / d_max)
    limited = curves.replace(
        max_spend=max_spend, min_unit=min_unit, group_caps=(*curves.group_caps, *caps)
    )
    report = PolicyLimitReport(
        flight_days=flight_days,
        flight_start=flight_start,
        max_days_in_a_month=d_max,
        group_caps=caps,
        min_units=min_units,
        min_unit_sources=unit_sources,
        restricted=restricted,
        unpoliced_retailers=unpoliced,
        notes=_notes(curves, unpoliced, categories, cats),
    )
    report.restricted.sort(key=lambda r: r.row)
    return limited, report


def _restrict(
    curves: CurveSet,
    at: np.ndarray,
    retailer: str,
    policy: RetailerPolicy,
    cats: dict[str, str],
    max_spend: np.ndarray,
) -> list[RestrictedLine]:
    """Hold the retailer's lines (rows `at`) that the policy does not allow at a maximum of
    0 in `max_spend`; a line the brief requires spend on cannot be held there."""
    restricted: list[RestrictedLine] = []
    line_cats = np.array([cats.get(str(g), "") for g in curves.gtin[at]], dtype=str)
    combos = np.char.add(np.char.add(curves.placement[at].astype(str), "\x1f"), line_cats)
    for combo in np.unique(combos).tolist():
        placement, category = combo.split("\x1f")
        why = _restriction(policy, placement, category or None)
        if why is None:
            continue
        for i in at[combos == combo].tolist():
            if curves.min_spend[i] > 0:
                raise OptimizerInputError(
                    f"row {i} ({retailer}/{placement}/{curves.gtin[i]}) has a min_spend "
                    f"of {curves.min_spend[i]:,.2f} but the policy allows no spend: "
                    f"{why[0]} ({why[1]})",
                    row=i,
                )
            max_spend[i] = 0.0
            restricted.append(
                RestrictedLine(
                    row=i,
                    retailer_id=retailer,
                    placement=placement,
                    gtin=str(curves.gtin[i]),
                    reason=why[0],
                    source=why[1],
                )
            )
    return restricted


def _placement_caps(
    curves: CurveSet, at: np.ndarray, retailer: str, policy: RetailerPolicy, factor: float
) -> list[GroupCap]:
    """One group cap per placement the retailer sells and the brand has lines on: the
    monthly cap times flight days over the most flight days in one calendar month."""
    caps: list[GroupCap] = []
    for placement, bid in policy.bidding.placements.items():
        members = at[curves.placement[at] == placement.value]
        if members.size == 0:
            continue
        caps.append(
            GroupCap(
                name=f"{retailer}/{placement.value}",
                lines=members.tolist(),
                cap=bid.max_monthly_spend_usd * factor,
                source=policy.source_for(
                    "bidding", "placements.max_monthly_spend_usd", "placements"
                ),
            )
        )
    return caps


def _notes(
    curves: CurveSet,
    unpoliced: list[str],
    categories: Mapping[str, str] | None,
    cats: dict[str, str],
) -> list[str]:
    notes = []
    if unpoliced:
        notes.append(
            f"no policy documents for {', '.join(unpoliced)}: no spend limits applied there"
        )
    if categories is None:
        notes.append("no SKU categories given: category restrictions were not checked")
    else:
        missing = sorted({str(g) for g in curves.gtin.tolist()} - set(cats))
        if missing:
            notes.append(
                f"{len(missing)} SKU(s) without a category: category restrictions were not "
                f"checked for them (first: {missing[0]})"
            )
    return notes
