"""The first-party files a brand keeps in its catalog folder, one pydantic model per file.

Each row of a file is validated by its model; the README's "Use your own data" table is the
same schema in words. Text as spreadsheets write it is accepted: "$3.99" for a price, "12%"
for a share, a UPC-A/EAN-13 for a GTIN (stored as its GTIN-14), dates as YYYY-MM-DD.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tools.catalog.models import CATEGORIES
from tools.rmis import gtin_check_digit

_MONEY = re.compile(r"^\(?-?\$?\s*-?[\d,]*\.?\d+\)?$")


def to_gtin14(value: Any) -> str:
    """A GTIN-8/12/13/14 (digits, check digit valid) as its GTIN-14."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _gtin14(str(value).strip())


@lru_cache(maxsize=65536)
def _gtin14(text: str) -> str:
    # GTINs repeat on every day of a sell-through file: each is checked once.
    if not text.isdigit() or len(text) not in (8, 12, 13, 14):
        raise ValueError(
            f"{text!r} is not a GTIN; allowed: 8, 12, 13 or 14 digits (UPC-A, EAN-13, GTIN-14)"
        )
    padded = text.zfill(14)
    if gtin_check_digit(padded[:-1]) != int(padded[-1]):
        raise ValueError(
            f"{text!r} has a wrong check digit (expected {gtin_check_digit(padded[:-1])}); "
            "allowed: a GTIN whose last digit is its GS1 check digit"
        )
    return padded


def to_number(value: Any, what: str) -> float:
    """A finite number from a number or spreadsheet text ("$1,234.50", "(3.10)", "12%")."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number; allowed: {what}")
    if isinstance(value, int | float):
        number = float(value)
    else:
        text = str(value).strip().replace("\u00a0", "").replace(" ", "")
        percent = text.endswith("%")
        text = text.removesuffix("%")
        negative = text.startswith("(") and text.endswith(")")
        if not text or not _MONEY.match(text):
            raise ValueError(f"{str(value)!r} is not a number; allowed: {what}")
        number = float(text.strip("()").replace("$", "").replace(",", ""))
        number = -number if negative else number
        number = number / 100 if percent else number
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number; allowed: {what}")
    return number


def to_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return _iso_date(str(value).strip())


@lru_cache(maxsize=65536)
def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"{text!r} is not a date; allowed: YYYY-MM-DD") from None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is str and value and not value[0].isspace() and not value[-1].isspace():
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class _Row(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_missing(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(_blank(v) for v in data.values()):
            return {k: v for k, v in data.items() if not _blank(v)}
        return data


class ProductRow(_Row):
    """products: one row per product, or per product and retailer listing. `retailer_id` and
    `item_id` (the network's own id: an ASIN, a Walmart item id) go together; they are how a
    network's report is matched to the product."""

    gtin: str = Field(description="GTIN-14, or the UPC-A/EAN-13 it pads from")
    name: str = Field(min_length=1, description="product name as shoppers see it")
    category: str = Field(description="one of the catalog's categories")
    price: float = Field(description="shelf price, USD, above 0")
    unit_cost: float = Field(description="cost of one unit to the brand, USD, 0 or more")
    retailer_id: str | None = Field(None, description="a retailer the brand sells through")
    item_id: str | None = Field(None, description="that retailer's id for the product")

    @field_validator("gtin", mode="before")
    @classmethod
    def _gtin(cls, v: Any) -> str:
        return to_gtin14(v)

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, v: Any) -> str:
        text = str(v).strip().lower()
        if text not in CATEGORIES:
            raise ValueError(f"unknown category {text!r}; allowed: {', '.join(CATEGORIES)}")
        return text

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, v: Any) -> float:
        price = to_number(v, "a price above 0, e.g. 3.99 or $3.99")
        if price <= 0:
            raise ValueError(f"price {price:g} is not above 0; allowed: a price above 0")
        return price

    @field_validator("unit_cost", mode="before")
    @classmethod
    def _cost(cls, v: Any) -> float:
        cost = to_number(v, "a unit cost of 0 or more, e.g. 2.10")
        if cost < 0:
            raise ValueError(f"unit cost {cost:g} is negative; allowed: 0 or more")
        return cost

    @field_validator("retailer_id", "item_id", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> str | None:
        return _text(v)

    @model_validator(mode="after")
    def _listing(self) -> ProductRow:
        if (self.retailer_id is None) != (self.item_id is None):
            raise ValueError(
                "retailer_id and item_id go together; allowed: both (a listing) or neither"
            )
        return self


class StockRow(_Row):
    """stock: units on hand and the forecast probability of a stock-out in the flight, per
    product (and retailer, when stock is held per retailer)."""

    gtin: str
    stock_units: int = Field(description="units on hand, 0 or more")
    oos_prob: float = Field(description="stock-out probability in the flight, 0-1 or 0%-100%")
    retailer_id: str | None = None
    as_of: date | None = None

    @field_validator("gtin", mode="before")
    @classmethod
    def _gtin(cls, v: Any) -> str:
        return to_gtin14(v)

    @field_validator("stock_units", mode="before")
    @classmethod
    def _units(cls, v: Any) -> int:
        units = to_number(v, "a whole number of units, 0 or more")
        if units < 0 or not float(units).is_integer():
            raise ValueError(f"{v!r} units; allowed: a whole number of units, 0 or more")
        return int(units)

    @field_validator("oos_prob", mode="before")
    @classmethod
    def _prob(cls, v: Any) -> float:
        p = to_number(v, "a probability between 0 and 1 (or 0% to 100%)")
        if not 0 <= p <= 1:
            raise ValueError(f"{p:g} is not a probability; allowed: 0 to 1 (or 0% to 100%)")
        return p

    @field_validator("retailer_id", mode="before")
    @classmethod
    def _retailer(cls, v: Any) -> str | None:
        return _text(v)

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of(cls, v: Any) -> date:
        return to_date(v)


class PromotionRow(_Row):
    """promotions: a discount on a product at a retailer from start_date to end_date
    (inclusive)."""

    retailer_id: str
    gtin: str
    start_date: date
    end_date: date
    discount_pct: float = Field(description="percent off, 0-100 (15 or 15%)")

    @field_validator("gtin", mode="before")
    @classmethod
    def _gtin(cls, v: Any) -> str:
        return to_gtin14(v)

    @field_validator("retailer_id", mode="before")
    @classmethod
    def _retailer(cls, v: Any) -> str | None:
        return _text(v)

    @field_validator("start_date", "end_date", mode="before")
    @classmethod
    def _dates(cls, v: Any) -> date:
        return to_date(v)

    @field_validator("discount_pct", mode="before")
    @classmethod
    def _pct(cls, v: Any) -> float:
        percent = isinstance(v, str) and v.strip().endswith("%")
        d = to_number(v, "percent off between 0 and 100, e.g. 15 or 15%")
        d = d * 100 if percent else d
        if not 0 < d < 100:
            raise ValueError(f"discount {d:g}% is out of range; allowed: above 0 and below 100")
        return d

    @model_validator(mode="after")
    def _order(self) -> PromotionRow:
        if self.end_date < self.start_date:
            raise ValueError(
                f"end_date {self.end_date} is before start_date {self.start_date}; allowed: "
                "an end on or after the start"
            )
        return self


class SellthroughRow(_Row):
    """sellthrough: units and revenue sold per day, retailer and product; with `geo` (a DMA
    or region code) when the brand has sales by market, which experiments can be drawn on."""

    date: date
    retailer_id: str
    gtin: str
    units: float = Field(description="units sold, 0 or more")
    revenue: float = Field(description="sales, USD, 0 or more")
    geo: str | None = None

    @field_validator("gtin", mode="before")
    @classmethod
    def _gtin(cls, v: Any) -> str:
        return to_gtin14(v)

    @field_validator("date", mode="before")
    @classmethod
    def _day(cls, v: Any) -> date:
        return to_date(v)

    @field_validator("retailer_id", "geo", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> str | None:
        return _text(v)

    @field_validator("units", "revenue", mode="before")
    @classmethod
    def _non_negative(cls, v: Any) -> float:
        if type(v) is float and 0 <= v < math.inf:  # the common case, checked fast
            return v
        x = to_number(v, "a number, 0 or more")
        if x < 0:
            raise ValueError(f"{x:g} is negative; allowed: 0 or more")
        return x


class GeoSalesRow(_Row):
    """geo_sales: the brand's sales by market (a DMA or region code) at a retailer, per day or
    per week (rows dated on Mondays, 7 days apart): what a retailer's store-level sales or
    syndicated market data say. Geo experiments are drawn on it."""

    date: date
    retailer_id: str
    geo: str
    revenue: float = Field(description="sales, USD, 0 or more")
    units: float | None = None

    @field_validator("date", mode="before")
    @classmethod
    def _day(cls, v: Any) -> date:
        return to_date(v)

    @field_validator("retailer_id", "geo", mode="before")
    @classmethod
    def _ids(cls, v: Any) -> str | None:
        return _text(v)

    @field_validator("revenue", "units", mode="before")
    @classmethod
    def _non_negative(cls, v: Any) -> float:
        if type(v) is float and 0 <= v < math.inf:
            return v
        x = to_number(v, "a number, 0 or more")
        if x < 0:
            raise ValueError(f"{x:g} is negative; allowed: 0 or more")
        return x


# file name -> (row model, key columns that must be unique, required?)
FILES: dict[str, tuple[type[_Row], tuple[str, ...], bool]] = {
    "products": (ProductRow, ("gtin", "retailer_id"), True),
    "stock": (StockRow, ("gtin", "retailer_id"), False),
    "promotions": (PromotionRow, ("retailer_id", "gtin", "start_date"), False),
    "sellthrough": (SellthroughRow, ("date", "retailer_id", "gtin", "geo"), False),
    "geo_sales": (GeoSalesRow, ("date", "retailer_id", "geo"), False),
}
FORMATS = (".csv", ".parquet", ".xlsx")


def required_columns(name: str) -> list[str]:
    model = FILES[name][0]
    return [n for n, f in model.model_fields.items() if f.is_required()]


def optional_columns(name: str) -> list[str]:
    model = FILES[name][0]
    return [n for n, f in model.model_fields.items() if not f.is_required()]
