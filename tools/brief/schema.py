"""The structured brief: what the planner needs from a plain-words brief, and its errors."""

from __future__ import annotations

import math
from datetime import date
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.catalog import current
from tools.errors import RMNError, UnknownBrandError
from tools.optimize import Brief

Objective = Literal["incremental_margin", "incremental_revenue", "roas"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
DEFAULT_OBJECTIVE: Objective = "incremental_margin"
DEFAULT_RESERVE = 0.10
MAX_RESERVE = 0.5
# A flight lasts 1 to 366 days (a leap year): the bound the brief, the review edits, the
# pipeline's query and governance all check.
MAX_FLIGHT_DAYS = 366
# The largest budget one brief may plan. The biggest advertisers spend $10-20B a year on all
# media; a brief asking more than $100B at a few retailers has a typo or a wrong unit in it
# ("$5T" for "$5M"), so it is refused with the amount it was read as, not planned. Budgets
# below it but far beyond the brand's own history ask for confirmation at planning time
# (`tools.pipeline.capacity`).
MAX_BUDGET = 1e11

# The fields read from the text, in the order the model writes them. brand_id comes from the
# caller, parsed_by and warnings from the parser.
BRIEF_FIELDS: tuple[str, ...] = (
    "total_budget",
    "retailers",
    "objective",
    "roas_floor",
    "experiment_reserve",
    "flight_start",
    "flight_end",
    "exclude_oos",
)
# The fields a brief may leave open, filled by their defaults: a reader is told which values
# the brief gave and which it did not (an approver read "10%" as the brief's own reserve).
DEFAULTED: tuple[str, ...] = ("retailers", "objective", "experiment_reserve", "exclude_oos")


class BriefError(RMNError):
    """A brief that cannot be turned into a plan as written; `field` names the culprit."""

    kind = "brief_error"


class StructuredBrief(BaseModel):
    """A parsed brief. `retailers == []` means every retailer the brand sells through."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    brand_id: str
    total_budget: float = Field(gt=0, le=MAX_BUDGET, description="USD over the flight")
    retailers: list[str] = Field(default_factory=list)
    objective: Objective = DEFAULT_OBJECTIVE
    roas_floor: float | None = Field(None, gt=0)
    experiment_reserve: float = Field(DEFAULT_RESERVE, ge=0, le=MAX_RESERVE)
    flight_start: date | None = None
    flight_end: date | None = None
    exclude_oos: bool = True
    # The brief's own division of the budget among its retailers ("$200k on Alpha and $150k
    # on Beta"), as it gives the amounts; {} leaves the split to the optimizer. It is kept as
    # shares: the ads follow it after the reserve, and an edit of the total keeps it.
    retailer_split: dict[str, float] = Field(default_factory=dict)
    # The most the brief lets the plan spend on ads at a retailer ("no more than $200k at
    # Beta", "at most $400k on any one retailer"). The planner hands them to the plan's
    # constraints, where a reviewer changes or lifts them like their own caps.
    retailer_caps: dict[str, float] = Field(default_factory=dict)
    # The least the brief has the plan spend on ads at a retailer ("at least $300k must go to
    # Beta" under a joint business plan, an upfront): held in the plan's constraints like caps.
    retailer_mins: dict[str, float] = Field(default_factory=dict)
    parsed_by: str = "rules"
    warnings: list[str] = Field(default_factory=list)
    # Of `DEFAULTED`, the fields the brief leaves open (their values are the defaults); empty
    # where the reader cannot tell (the model alone). An edit of a field removes it.
    defaults: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _flight_in_order(self) -> StructuredBrief:
        if self.flight_start and self.flight_end and self.flight_end < self.flight_start:
            raise ValueError(
                f"flight ends ({self.flight_end}) before it starts ({self.flight_start})"
            )
        return self

    @model_validator(mode="after")
    def _split_positive(self) -> StructuredBrief:
        for retailer, part in self.retailer_split.items():
            if not 0 <= part <= MAX_BUDGET:
                raise ValueError(f"the split's amount for {retailer!r} must be 0 to "
                                 f"{MAX_BUDGET:,.0f}, got {part}")
        if self.retailer_split and not sum(self.retailer_split.values()) > 0:
            raise ValueError("a split of the budget needs an amount above 0")
        stray = sorted(set(self.retailer_split) - set(self.resolved_retailers()))
        if stray:
            raise ValueError(
                f"the split names {', '.join(stray)}, which the brief does not plan (edit "
                "retailer_split too; null lets the optimizer split)"
            )
        for retailer, cap in self.retailer_caps.items():
            if not 0 <= cap <= MAX_BUDGET:
                raise ValueError(f"the cap for {retailer!r} must be 0 to {MAX_BUDGET:,.0f}, "
                                 f"got {cap}")  # fmt: skip
        for retailer, low in self.retailer_mins.items():
            if not 0 <= low <= MAX_BUDGET:
                raise ValueError(f"the minimum for {retailer!r} must be 0 to "
                                 f"{MAX_BUDGET:,.0f}, got {low}")  # fmt: skip
        return self

    def fields(self) -> dict[str, Any]:
        """The fields read from the text, JSON-ready, in `BRIEF_FIELDS` order."""
        data = self.model_dump(mode="json", include=set(BRIEF_FIELDS))
        return {name: data[name] for name in BRIEF_FIELDS}

    def shown(self) -> dict[str, Any]:
        """What a question shows of the brief: its fields and, where it gives them, its split,
        its caps and its minimums."""
        split = {"retailer_split": dict(self.retailer_split)} if self.retailer_split else {}
        caps = {"retailer_caps": dict(self.retailer_caps)} if self.retailer_caps else {}
        mins = {"retailer_mins": dict(self.retailer_mins)} if self.retailer_mins else {}
        return self.fields() | split | caps | mins

    def resolved_retailers(self) -> list[str]:
        """The retailers to plan over, with [] expanded to all of the brand's retailers."""
        return list(self.retailers) or brand_retailers(self.brand_id)

    def split_caps(self) -> dict[str, float]:
        """The most each retailer may spend on ads under the brief's split: its share of the
        spendable budget (the total less the reserve), 0 for a retailer of the plan the split
        leaves out. {} without a split."""
        if not self.retailer_split:
            return {}
        whole = sum(self.retailer_split.values())
        ads = self.total_budget * (1 - self.experiment_reserve)
        return {r: ads * self.retailer_split.get(r, 0.0) / whole
                for r in self.resolved_retailers()}

    def to_optimizer_brief(self) -> Brief:
        return Brief(
            budget=self.total_budget,
            reserve_fraction=self.experiment_reserve,
            objective=self.objective,
            roas_floor=self.roas_floor,
            retailer_caps=self.split_caps(),
        )


def brief_constraints(brief: StructuredBrief) -> dict[str, dict[str, float]]:
    """The plan's constraints a brief states: its caps and minimums at retailers."""
    return {key: dict(value) for key, value in (("retailer_caps", brief.retailer_caps),
                                                 ("retailer_mins", brief.retailer_mins)) if value}


def check_brand(brand_id: str) -> None:
    """Refuse a brand the catalog in force does not define (`tools.catalog`)."""
    brands = current().brands
    if brand_id not in brands:
        raise UnknownBrandError(
            f"unknown brand {brand_id!r}; known: {', '.join(brands)}",
            brand=brand_id,
            known=list(brands),
        )


def brand_retailers(brand_id: str) -> list[str]:
    """The retailers the brand sells through (its brand.yaml), in catalog order."""
    check_brand(brand_id)
    return current().brand_retailers(brand_id)


def retailer_label(retailer_id: str) -> str:
    return current().retailer(retailer_id).label


def canonical_retailers(ids: list[str] | set[str]) -> list[str]:
    """Known retailer ids, de-duplicated, in catalog order."""
    return current().canonical(ids)


def field_matches(name: str, got: Any, gold: Any, brand: str) -> bool:
    """Whether a parsed field (JSON-ready) is the gold one: retailers as sets ([] = every
    retailer the brand sells through), numbers to a relative 1e-6."""
    if name == "retailers":
        everything = set(brand_retailers(brand))
        return (set(got) or everything) == (set(gold) or everything)
    if isinstance(gold, bool) or isinstance(got, bool):
        return got is gold
    if gold is None or got is None:
        return got is None and gold is None
    if isinstance(gold, int | float):
        return isinstance(got, int | float) and math.isclose(got, gold, rel_tol=1e-6, abs_tol=1e-9)
    return str(got) == str(gold)
