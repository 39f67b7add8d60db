"""A retailer's data-access rules: what a tenant may ask of its clean room.

The typed form of a data-access policy's front matter (`DataAccessPolicy` in
`tools.policy.models` is the same rules as a document must state them), the public fields a
clean-room query may name (with the RMIS expression each stands for), and the built-in defaults
for a retailer without a policy. The clean room (`tools.cleanroom`) reads its rules from here;
this module imports nothing from it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Public dimension name -> SQL expression over the RMIS events table. Only these can be
# grouped by or filtered on; raw columns (brand_id, event_id, ...) never reach a query.
DIMENSIONS: dict[str, str] = {
    "date": "event_date",
    "week": "CAST(date_trunc('week', event_date) AS DATE)",
    "geo": "geo_id",
    "placement": "placement",
    "sku": "gtin",
    "audience": "audience_id",
    "campaign": "campaign_id",
}

# Public metric name -> RMIS column summed; `events` is the row count (the k-anonymity unit).
METRICS: dict[str, str | None] = {
    "spend": "spend",
    "impressions": "impressions",
    "clicks": "clicks",
    "conversions": "conversions",
    "attributed_sales": "attributed_sales",
    "attributed_units": "attributed_units",
    "events": None,
}

# Brand unit economics, stock and promotion signals, and person-level identifiers.
DEFAULT_BLOCKED_FIELDS: tuple[str, ...] = (
    "margin",
    "unit_margin",
    "unit_cost",
    "cost",
    "stock",
    "stock_units",
    "oos_prob",
    "promo",
    "promo_flag",
    "discount_pct",
    "user_id",
    "household_id",
    "email",
    "phone",
    "address",
    "ip_address",
    "device_id",
)

# Upper bound of one event row's contribution to a sum, used only under differential privacy.
# One row is one placement x SKU x audience x geo x hour, so these are generous per-hour caps.
DEFAULT_SUM_CLAMP: dict[str, float] = {
    "spend": 500.0,
    "impressions": 50_000.0,
    "clicks": 2_000.0,
    "conversions": 200.0,
    "attributed_sales": 5_000.0,
    "attributed_units": 500.0,
}

DEFAULT_SOURCE = "built-in clean-room defaults (tools/policy/data_access.py)"

# The smallest epsilon a differentially private query may spend. Below it the Laplace noise
# on a count has a scale over 1,000 events per released column and swamps every cell; far
# below it (about 1e-300) the noise scale overflows and OpenDP cannot build the mechanism.
MIN_EPSILON = 1e-3

# How often a tenant's privacy budget starts afresh (calendar periods in UTC; `none`: never).
BudgetPeriod = Literal["none", "daily", "weekly", "monthly", "quarterly"]
BUDGET_PERIODS: tuple[str, ...] = ("none", "daily", "weekly", "monthly", "quarterly")


def _lower_unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(v.strip().lower() for v in values))


class DataAccessRules(BaseModel):
    """What one retailer lets a tenant (brand) do in its clean room."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_cell_size: int = Field(default=50, ge=1, description="k: fewest events per output row")
    blocked_fields: list[str] = Field(default_factory=lambda: list(DEFAULT_BLOCKED_FIELDS))
    allowed_dimensions: list[str] = Field(default_factory=lambda: list(DIMENSIONS))
    allowed_metrics: list[str] = Field(default_factory=lambda: list(METRICS))
    dp_required: bool = False
    default_epsilon: float = Field(default=1.0, ge=MIN_EPSILON, allow_inf_nan=False)
    tenant_epsilon_budget: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    budget_period: BudgetPeriod = Field(
        default="none",
        description="the calendar period (UTC) after which the epsilon budget starts afresh; "
        "none: it never does (the built-in default, the strictest)",
    )
    sum_clamp: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_SUM_CLAMP),
        description="per-metric upper bound of one row's contribution to a sum",
    )
    source: str = DEFAULT_SOURCE

    @field_validator("blocked_fields", "allowed_dimensions", "allowed_metrics")
    @classmethod
    def _normalize(cls, v: list[str]) -> list[str]:
        return _lower_unique(v)

    @field_validator("allowed_dimensions")
    @classmethod
    def _known_dimensions(cls, v: list[str]) -> list[str]:
        unknown = [d for d in v if d not in DIMENSIONS]
        if unknown:
            raise ValueError(f"unknown dimension(s) {unknown}; known: {', '.join(DIMENSIONS)}")
        return v

    @field_validator("allowed_metrics")
    @classmethod
    def _known_metrics(cls, v: list[str]) -> list[str]:
        unknown = [m for m in v if m not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> DataAccessRules:
        # `events` is a count (sensitivity 1) and needs no bound.
        missing = [m for m in self.allowed_metrics if METRICS[m] and m not in self.sum_clamp]
        if missing:
            raise ValueError(f"sum_clamp needs a bound for allowed metric(s) {missing}")
        if any(b <= 0 for b in self.sum_clamp.values()):
            raise ValueError("sum_clamp bounds must be positive")
        if self.default_epsilon > self.tenant_epsilon_budget:
            raise ValueError("default_epsilon cannot exceed tenant_epsilon_budget")
        return self
