"""A retailer's data-access rules for the clean room, and the fields the clean room knows.

The clean room asks an injectable provider (`rules_for(retailer) -> DataAccessRules`) for
the rules; `policy_rules` (the default) reads them from the retailer's data-access policy
document, and `default_rules` returns the built-in defaults below.
"""

from __future__ import annotations

from collections.abc import Callable

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

DEFAULT_SOURCE = "built-in clean-room defaults (tools/cleanroom/rules.py)"


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
    default_epsilon: float = Field(default=1.0, gt=0)
    tenant_epsilon_budget: float = Field(default=10.0, gt=0)
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


RulesProvider = Callable[[str], DataAccessRules]


def default_rules(retailer: str) -> DataAccessRules:
    """The built-in rules, the same for every retailer."""
    return DataAccessRules()


def policy_rules(retailer: str) -> DataAccessRules:
    """The retailer's own rules, read from the front matter of its data-access policy in
    `rag_corpus/`. A retailer without policy documents gets the built-in defaults, and the
    rules' `source` says so."""
    from tools.policy import list_retailers, load_retailer_policy

    if retailer not in list_retailers():
        return DataAccessRules(
            source=f"{DEFAULT_SOURCE}; no data-access policy for {retailer!r} in rag_corpus/"
        )
    policy = load_retailer_policy(retailer).data_access
    # One document holds all data-access rules; the section anchor of the first is misleading.
    return policy.model_copy(update={"source": policy.source.split("#")[0]})
