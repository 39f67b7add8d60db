"""RMIS, the Retail Media Interop Schema: the one shape every retailer's data is mapped into.

The pydantic models document and validate single records (tests, APIs, the LLM's tools);
bulk data never goes through them row by row. `EVENT_COLUMNS` is the columnar form of
`RMISEvent` that the harmonizer writes to Parquet and the clean room reads.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator


class Placement(StrEnum):
    SPONSORED_SEARCH = "sponsored_search"
    SPONSORED_PRODUCT = "sponsored_product"
    DISPLAY_ONSITE = "display_onsite"
    DISPLAY_OFFSITE = "display_offsite"
    INSTORE_SCREEN = "instore_screen"
    ONSITE_VIDEO = "onsite_video"


def gtin_check_digit(body: str) -> int:
    """GS1 check digit for the first 13 digits of a GTIN-14 (or any GTIN body)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gtin14(value: str) -> bool:
    return len(value) == 14 and value.isdigit() and gtin_check_digit(value[:-1]) == int(value[-1])


class RMISEvent(BaseModel):
    """One delivery record: what one placement delivered for one SKU, audience and geo in one
    hour. It is the unit the clean room counts for k-anonymity ("underlying events")."""

    event_id: str = Field(description="'<retailer>:<native row id>', unique per retailer")
    retailer_id: str
    brand_id: str
    campaign_id: str
    event_ts: datetime = Field(description="start of the delivery hour, UTC")
    event_date: date = Field(description="UTC date of event_ts")
    geo_id: str = Field(description="Nielsen-style DMA code, e.g. '501'")
    placement: Placement
    audience_id: str
    gtin: str = Field(description="GTIN-14 of the advertised SKU")
    retailer_item_id: str = Field(description="the retailer's own item id, kept for tracing")
    impressions: int = Field(ge=0)
    clicks: int = Field(ge=0)
    conversions: int = Field(ge=0, description="attributed orders")
    spend: float = Field(ge=0, description="USD")
    attributed_sales: float = Field(ge=0, description="USD")
    attributed_units: int = Field(ge=0)
    viewability: float | None = Field(default=None, ge=0, le=1, description="share viewable")

    @field_validator("gtin")
    @classmethod
    def _gtin14(cls, v: str) -> str:
        if not is_valid_gtin14(v):
            raise ValueError(f"not a valid GTIN-14: {v!r}")
        return v

    @field_validator("clicks")
    @classmethod
    def _clicks_le_impressions(cls, v: int, info) -> int:  # type: ignore[no-untyped-def]
        imps = info.data.get("impressions")
        if imps is not None and v > imps:
            raise ValueError(f"clicks ({v}) exceed impressions ({imps})")
        return v


# Columnar form of RMISEvent: name -> DuckDB type. Order is the Parquet column order.
EVENT_COLUMNS: dict[str, str] = {
    "event_id": "VARCHAR",
    "retailer_id": "VARCHAR",
    "brand_id": "VARCHAR",
    "campaign_id": "VARCHAR",
    "event_ts": "TIMESTAMP",
    "event_date": "DATE",
    "geo_id": "VARCHAR",
    "placement": "VARCHAR",
    "audience_id": "VARCHAR",
    "gtin": "VARCHAR",
    "retailer_item_id": "VARCHAR",
    "impressions": "BIGINT",
    "clicks": "BIGINT",
    "conversions": "BIGINT",
    "spend": "DOUBLE",
    "attributed_sales": "DOUBLE",
    "attributed_units": "BIGINT",
    "viewability": "DOUBLE",
}
assert list(EVENT_COLUMNS) == list(RMISEvent.model_fields)


class RMISSKUDimension(BaseModel):
    """A brand's SKU as the retailers see it. Unit economics live in the brand's first-party
    store, never here, so that clean-room joins cannot reach them."""

    gtin: str
    brand_id: str
    name: str
    category: str
    list_price: float = Field(gt=0, description="USD shelf price")
    retailer_item_ids: dict[str, str] = Field(
        default_factory=dict, description="retailer_id -> that retailer's item id"
    )

    @field_validator("gtin")
    @classmethod
    def _gtin14(cls, v: str) -> str:
        if not is_valid_gtin14(v):
            raise ValueError(f"not a valid GTIN-14: {v!r}")
        return v


class RMISAudienceDimension(BaseModel):
    audience_id: str
    retailer_id: str
    name: str
    description: str
    est_households: int = Field(ge=0)


class RMISPolicyDimension(BaseModel):
    """One checkable rule of a retailer (or brand), as found in its policy documents."""

    retailer_id: str
    policy_type: str = Field(description="creative | data_access | measurement | bidding | ...")
    rule: str = Field(description="e.g. min_cell_size, blocked_fields, max_headline_chars")
    value: str | int | float | bool | list[str] | dict[str, object]
    placement: Placement | None = None
    source: str = Field(default="", description="document and section the rule comes from")
