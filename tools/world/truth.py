"""Ground truth of the simulated market: response curves, promotions, stock-outs, and the
expected outcome of any flight allocation.

A line item is (retailer_id, placement, gtin). Its incremental revenue per day at daily spend
`s` (full price, in stock, no promotion) is `a * (1 - exp(-s / b))`: marginal iROAS at zero
spend is `a / b`, and `b` is the daily spend at which the curve is 63% saturated. Promotion
days multiply the response by `1 + promo_lift` but sell at a discount, which lowers that
day's margin rate; expected out-of-stock share removes sales outright.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError

from tools.errors import RMNError
from tools.rmis import Placement, RMISAudienceDimension
from tools.world.catalog import (
    BRANDS,
    IROAS_RETAILER,
    RETAILERS,
    SKU_SCHEMA,
    BrandInfo,
    RetailerInfo,
    build_audiences,
    build_campaigns,
    build_dmas,
    build_skus,
    rng_for,
)

FORMAT_VERSION = 1
MAX_DAYS = 3660
MAX_FLIGHT_DAYS = 366
# Budgets are quoted for a 28-day flight; curve scale `b` is per day, independent of flight.
REFERENCE_FLIGHT_DAYS = 28

# Systematic effectiveness (marginal iROAS at zero spend) by placement and retailer.
IROAS_BASE = 6.5
IROAS_PLACEMENT = {
    "sponsored_search": 1.25,
    "sponsored_product": 1.0,
    "display_onsite": 0.6,
    "onsite_video": 0.55,
    "instore_screen": 0.45,
    "display_offsite": 0.3,
}
# Relative spend capacity (curve scale) by placement.
CAPACITY_PLACEMENT = {
    "sponsored_search": 1.0,
    "sponsored_product": 0.9,
    "display_onsite": 0.6,
    "display_offsite": 0.8,
    "instore_screen": 0.4,
    "onsite_video": 0.5,
}
CPM_USD = {
    "sponsored_search": 10.0,
    "sponsored_product": 8.0,
    "display_onsite": 6.0,
    "display_offsite": 4.0,
    "instore_screen": 14.0,
    "onsite_video": 18.0,
}
# In-store screens are not clickable.
CTR = {
    "sponsored_search": 0.03,
    "sponsored_product": 0.012,
    "display_onsite": 0.004,
    "display_offsite": 0.002,
    "instore_screen": 0.0,
    "onsite_video": 0.006,
}
PROMO_DISCOUNTS = np.array([10.0, 15.0, 20.0, 25.0, 30.0, 40.0])
PROMO_DISCOUNT_P = np.array([0.2, 0.25, 0.25, 0.15, 0.1, 0.05])

LineKey = tuple[str, str, str]


@dataclass(frozen=True, eq=False)
class World:
    """Catalog plus ground truth. Tables are pyarrow; `line_items` holds the true curve
    parameters and flight economics an oracle optimizer needs."""

    seed: int
    start: date
    days: int
    flight_days: int
    retailers: dict[str, RetailerInfo]
    brands: dict[str, BrandInfo]
    dmas: pa.Table
    audiences: tuple[RMISAudienceDimension, ...]
    campaigns: pa.Table
    skus: pa.Table
    listings: pa.Table
    line_items: pa.Table
    promotions: pa.Table
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def flight_start(self) -> date:
        return self.start + timedelta(days=self.days)

    @property
    def flight_end(self) -> date:
        """Last flight day (inclusive)."""
        return self.flight_start + timedelta(days=self.flight_days - 1)

    @property
    def exported_at(self) -> datetime:
        """When the retailers exported the history: 06:00 UTC on the first flight day."""
        return datetime.combine(self.flight_start, time(6), tzinfo=UTC)

    @cached_property
    def _arrays(self) -> dict[str, np.ndarray]:
        cols = ("a", "b", "oos_prob", "flight_rev_days", "flight_margin_days")
        return {c: self.line_items.column(c).to_numpy() for c in cols}

    @cached_property
    def _index(self) -> dict[LineKey, int]:
        keys = zip(
            self.line_items.column("retailer_id").to_pylist(),
            self.line_items.column("placement").to_pylist(),
            self.line_items.column("gtin").to_pylist(),
            strict=True,
        )
        return {k: i for i, k in enumerate(keys)}

    @property
    def line_keys(self) -> list[LineKey]:
        return list(self._index)

    def expected(self, spend: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Expected (incremental revenue, incremental margin) per line item for flight spend
        laid out like `line_items` in the last axis; leading axes score many plans at once."""
        arr = self._arrays
        daily = np.asarray(spend, dtype=float) / self.flight_days
        per_day = arr["a"] * -np.expm1(-daily / arr["b"]) * (1.0 - arr["oos_prob"])
        return per_day * arr["flight_rev_days"], per_day * arr["flight_margin_days"]

    def response(self, line: int | LineKey, daily_spend: np.ndarray | float) -> np.ndarray:
        """Incremental revenue per day at full price, in stock, without promotion."""
        i = self._index[line] if isinstance(line, tuple) else int(line)
        a, b = self._arrays["a"][i], self._arrays["b"][i]
        return a * -np.expm1(-np.asarray(daily_spend, dtype=float) / b)


class AllocationLine(BaseModel):
    """Spend for one line item over the whole flight (USD), paced evenly per day."""

    retailer_id: str
    placement: str
    gtin: str
    spend: float


class OutcomeLine(BaseModel):
    retailer_id: str
    placement: str
    gtin: str
    spend: float
    incremental_revenue: float
    incremental_margin: float
    iroas: float
    marginal_iroas: float
    spend_on_oos: float


class Outcome(BaseModel):
    """Expected result of a flight allocation under the world's ground truth."""

    spend: float
    incremental_revenue: float
    incremental_margin: float
    iroas: float
    spend_on_oos: float
    lines: list[OutcomeLine]


# --------------------------------------------------------------------------- generation


def _whole(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _validate_params(seed: Any, days: Any, start: Any, flight_days: Any) -> None:
    if not _whole(seed) or seed < 0:
        raise RMNError(f"seed must be a non-negative integer, got {seed!r}")
    if not _whole(days) or not 1 <= days <= MAX_DAYS:
        raise RMNError(f"days must be between 1 and {MAX_DAYS}, got {days!r}")
    if not _whole(flight_days) or not 1 <= flight_days <= MAX_FLIGHT_DAYS:
        raise RMNError(f"flight_days must be between 1 and {MAX_FLIGHT_DAYS}, got {flight_days!r}")
    if not isinstance(start, date) or isinstance(start, datetime):
        raise RMNError(f"start must be a date, got {start!r}")


def generate_world(
    seed: int = 7, days: int = 90, start: date = date(2026, 7, 1), flight_days: int = 28
) -> World:
    """Catalog and ground truth for a history of `days` days from `start` and a flight of
    `flight_days` days right after it. Small and fast: no delivery records."""
    _validate_params(seed, days, start, flight_days)
    seed, days, flight_days = int(seed), int(days), int(flight_days)
    skus, listings = build_skus(seed)
    promotions, flight = _build_promotions(seed, skus, listings, start, days, flight_days)
    campaigns = build_campaigns(seed)
    line_items = _build_line_items(seed, skus, listings, campaigns, flight)
    return World(
        seed=seed,
        start=start,
        days=days,
        flight_days=flight_days,
        retailers=dict(RETAILERS),
        brands=dict(BRANDS),
        dmas=build_dmas(),
        audiences=tuple(build_audiences(seed)),
        campaigns=campaigns,
        skus=skus,
        listings=listings,
        line_items=line_items,
        promotions=promotions,
    )


def _build_promotions(
    seed: int, skus: pa.Table, listings: pa.Table, start: date, days: int, flight_days: int
) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Promo calendar per listing over history and flight: non-overlapping windows of 3-10
    days. Returns the calendar and per-listing flight sums (response days, margin days)."""
    rng = rng_for(seed, "promotions")
    total = days + flight_days
    n = listings.num_rows
    discount = np.zeros((n, total))
    lift = np.zeros((n, total))
    for i in range(n):
        d = int(rng.integers(0, 30))
        while d < total:
            length = int(rng.integers(3, 11))
            disc = float(rng.choice(PROMO_DISCOUNTS, p=PROMO_DISCOUNT_P))
            discount[i, d : d + length] = disc
            # Deeper discounts lift more; elasticity varies by listing and event.
            lift[i, d : d + length] = disc / 100 * rng.uniform(1.5, 3.5)
            d += length + int(rng.integers(14, 50))

    gtin_to_row = {g: k for k, g in enumerate(skus.column("gtin").to_pylist())}
    sku_row = np.array([gtin_to_row[g] for g in listings.column("gtin").to_pylist()])
    price = skus.column("list_price").to_numpy()[sku_row][:, None]
    cost = skus.column("unit_cost").to_numpy()[sku_row][:, None]
    margin_rate = 1.0 - cost / (price * (1.0 - discount / 100))

    li, di = np.nonzero(discount)
    dates = np.datetime64(start, "D") + di.astype("timedelta64[D]")
    promotions = pa.table(
        {
            "retailer_id": pa.array(listings.column("retailer_id").to_numpy(False)[li]),
            "gtin": pa.array(listings.column("gtin").to_numpy(False)[li]),
            "date": pa.array(dates, pa.date32()),
            "discount_pct": discount[li, di],
            "promo_lift": lift[li, di],
            "margin_rate": margin_rate[li, di],
        }
    )
    mult = 1.0 + lift[:, days:]
    flight = {
        "rev_days": mult.sum(axis=1),
        "margin_days": (mult * margin_rate[:, days:]).sum(axis=1),
        "promo_days": (discount[:, days:] > 0).sum(axis=1),
    }
    return promotions, flight


def _build_line_items(
    seed: int,
    skus: pa.Table,
    listings: pa.Table,
    campaigns: pa.Table,
    flight: dict[str, np.ndarray],
) -> pa.Table:
    rng = rng_for(seed, "curves")
    sku = skus.to_pandas().set_index("gtin")
    lst = listings.to_pandas()
    lst["listing"] = np.arange(len(lst))
    rows = []
    for r in lst.itertuples(index=False):
        for plc in RETAILERS[r.retailer_id].placements:
            rows.append((r.retailer_id, plc.value, r.gtin, r.item_id, r.listing))
    li = np.array([x[4] for x in rows])
    retailer = np.array([x[0] for x in rows], dtype=object)
    placement = np.array([x[1] for x in rows], dtype=object)
    gtin = np.array([x[2] for x in rows], dtype=object)
    s = sku.loc[gtin]
    brand = s["brand_id"].to_numpy()
    n = len(rows)

    plc_iroas = np.array([IROAS_PLACEMENT[p] for p in placement])
    ret_iroas = np.array([IROAS_RETAILER[r] for r in retailer])
    resp = s["responsiveness"].to_numpy()
    iroas0 = np.clip(
        IROAS_BASE * plc_iroas * ret_iroas * np.exp(0.2 * resp + 0.15 * rng.normal(size=n)),
        1.0,
        12.0,
    )
    capacity = (
        np.array([RETAILERS[r].size for r in retailer])
        * np.array([CAPACITY_PLACEMENT[p] for p in placement])
        * np.exp(0.7 * s["popularity"].to_numpy() + 0.3 * rng.normal(size=n))
    )
    # Scale each brand so its summed flight saturation spend matches its budget scale.
    b = np.empty(n)
    for bid, info in BRANDS.items():
        m = brand == bid
        target = info.budget_scale * rng.uniform(0.8, 1.25) / REFERENCE_FLIGHT_DAYS
        b[m] = capacity[m] / capacity[m].sum() * target
    a = iroas0 * b

    camp = campaigns.to_pandas().set_index(["retailer_id", "brand_id", "placement"])
    campaign_id = camp.loc[list(zip(retailer, brand, placement, strict=True)), "campaign_id"]
    return pa.table(
        {
            "line_id": pa.array(np.arange(n), pa.int32()),
            "retailer_id": pa.array(retailer, pa.string()),
            "placement": pa.array(placement, pa.string()),
            "gtin": pa.array(gtin, pa.string()),
            "brand_id": pa.array(brand, pa.string()),
            "category": pa.array(s["category"].to_numpy(), pa.string()),
            "item_id": pa.array(np.array([x[3] for x in rows], dtype=object), pa.string()),
            "campaign_id": pa.array(campaign_id.to_numpy(), pa.string()),
            "listing": pa.array(li, pa.int32()),
            "a": a,
            "b": b,
            "iroas0": iroas0,
            "list_price": s["list_price"].to_numpy(),
            "unit_cost": s["unit_cost"].to_numpy(),
            "margin_rate": s["margin_rate"].to_numpy(),
            "oos_prob": s["oos_prob"].to_numpy(),
            "flight_rev_days": flight["rev_days"][li],
            "flight_margin_days": flight["margin_days"][li],
            "flight_promo_days": pa.array(flight["promo_days"][li], pa.int32()),
            # History delivery: typical daily spend, and cost of reach.
            "hist_spend_level": b * rng.uniform(0.3, 1.5, size=n),
            "cpm": np.array([CPM_USD[p] for p in placement]) * np.exp(0.2 * rng.normal(size=n)),
            "ctr": np.array([CTR[p] for p in placement]) * np.exp(0.25 * rng.normal(size=n)),
        }
    )


# ---------------------------------------------------------------------------- outcomes


def _fmt_key(key: tuple[Any, ...]) -> str:
    return "/".join(str(k) for k in key)


def _norm_placement(p: Any) -> str:
    return p.value if isinstance(p, Placement) else str(p)


def parse_allocation(obj: Any) -> list[AllocationLine]:
    """Validate a plan given as plain data (a list of {retailer_id, placement, gtin, spend})."""
    if not isinstance(obj, list):
        raise RMNError(
            "an allocation must be a list of {retailer_id, placement, gtin, spend} objects"
        )
    out = []
    for i, item in enumerate(obj):
        try:
            out.append(AllocationLine.model_validate(item))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise RMNError(f"allocation line {i}: {where}: {first['msg']}", line=i) from None
    return out


def _allocation_arrays(world: World, allocation: Any) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(allocation, Mapping):
        keys = [(str(k[0]), _norm_placement(k[1]), str(k[2])) for k in allocation]
        spends = list(allocation.values())
    elif isinstance(allocation, pa.Table) or hasattr(allocation, "to_dict"):
        table = (
            allocation
            if isinstance(allocation, pa.Table)
            else pa.Table.from_pandas(allocation, preserve_index=False)
        )
        missing = {"retailer_id", "placement", "gtin", "spend"} - set(table.column_names)
        if missing:
            raise RMNError(f"allocation table lacks columns: {', '.join(sorted(missing))}")
        keys = list(
            zip(
                table.column("retailer_id").to_pylist(),
                table.column("placement").to_pylist(),
                table.column("gtin").to_pylist(),
                strict=True,
            )
        )
        spends = table.column("spend").to_pylist()
    elif isinstance(allocation, Iterable) and not isinstance(allocation, str | bytes):
        keys, spends = [], []
        for item in allocation:
            line = item if isinstance(item, AllocationLine) else _coerce_line(item)
            keys.append((line.retailer_id, _norm_placement(line.placement), line.gtin))
            spends.append(line.spend)
    else:
        raise RMNError(
            "allocation must be AllocationLine items, a dict keyed by "
            "(retailer_id, placement, gtin), or a table with those columns and spend"
        )

    index = world._index
    idx = np.fromiter((index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
    if (idx < 0).any():
        bad = [_fmt_key(keys[i]) for i in np.flatnonzero(idx < 0)]
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        raise RMNError(
            f"unknown line items: {', '.join(bad[:10])}{more}; a line item is "
            "retailer_id/placement/gtin for a SKU that retailer lists",
            unknown=bad[:100],
        )
    try:
        spend = np.array(spends, dtype=float)
    except (TypeError, ValueError):
        raise RMNError("allocation spends must be numbers (USD for the flight)") from None
    bad_mask = ~np.isfinite(spend) | (spend < 0)
    if bad_mask.any():
        bad = [f"{_fmt_key(keys[i])}={spends[i]}" for i in np.flatnonzero(bad_mask)]
        more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
        raise RMNError(
            f"spend must be a finite, non-negative USD amount: {', '.join(bad[:10])}{more}",
            invalid=bad[:100],
        )
    return idx, spend


def _coerce_line(item: Any) -> AllocationLine:
    try:
        if isinstance(item, tuple | list) and len(item) == 4:
            r, p, g, s = item
            return AllocationLine(retailer_id=r, placement=_norm_placement(p), gtin=g, spend=s)
        if isinstance(item, Mapping) and isinstance(item.get("placement"), Placement):
            item = {**item, "placement": item["placement"].value}
        return AllocationLine.model_validate(item)
    except (ValidationError, TypeError, ValueError):
        raise RMNError(f"not an allocation line: {item!r}") from None


def realized_outcome(world: World, allocation: Any) -> Outcome:
    """Expected incremental revenue and margin of a flight allocation.

    `allocation`: AllocationLine items (or dicts / 4-tuples), a dict keyed by
    (retailer_id, placement, gtin) -> flight spend, or a table with those columns and `spend`.
    Repeated line items add up. Unknown line items or negative spend raise RMNError."""
    idx, spend = _allocation_arrays(world, allocation)
    n = world.line_items.num_rows
    total = np.bincount(idx, weights=spend, minlength=n)
    used = np.zeros(n, dtype=bool)
    used[idx] = True
    rev, margin = world.expected(total)
    arr = world._arrays
    oos = arr["oos_prob"]
    spend_on_oos = total * oos
    daily = total / world.flight_days
    marginal = (
        arr["a"]
        / arr["b"]
        * np.exp(-daily / arr["b"])
        * (1 - oos)
        * arr["flight_rev_days"]
        / world.flight_days
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        line_iroas = np.where(total > 0, rev / np.where(total > 0, total, 1.0), 0.0)
    li = np.flatnonzero(used)
    t = world.line_items
    cols = {
        "retailer_id": t.column("retailer_id").take(li).to_pylist(),
        "placement": t.column("placement").take(li).to_pylist(),
        "gtin": t.column("gtin").take(li).to_pylist(),
        "spend": total[li].tolist(),
        "incremental_revenue": rev[li].tolist(),
        "incremental_margin": margin[li].tolist(),
        "iroas": line_iroas[li].tolist(),
        "marginal_iroas": marginal[li].tolist(),
        "spend_on_oos": spend_on_oos[li].tolist(),
    }
    names = list(cols)
    lines = [
        OutcomeLine.model_construct(**dict(zip(names, vals, strict=True)))
        for vals in zip(*cols.values(), strict=True)
    ]
    total_spend = float(total.sum())
    total_rev = float(rev.sum())
    return Outcome(
        spend=total_spend,
        incremental_revenue=total_rev,
        incremental_margin=float(margin.sum()),
        iroas=total_rev / total_spend if total_spend > 0 else 0.0,
        spend_on_oos=float(spend_on_oos.sum()),
        lines=lines,
    )


# -------------------------------------------------------------------------- persistence

WORLD_TABLES = ("dmas", "campaigns", "skus", "listings", "line_items", "promotions")


def world_dir(out_dir: Path | str) -> Path:
    return Path(out_dir) / "world"


def world_json(world: World) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "seed": world.seed,
        "start": world.start.isoformat(),
        "days": world.days,
        "flight_days": world.flight_days,
        "flight_start": world.flight_start.isoformat(),
        "flight_end": world.flight_end.isoformat(),
        "exported_at": world.exported_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "retailers": {k: v.model_dump(mode="json") for k, v in world.retailers.items()},
        "brands": {k: v.model_dump(mode="json") for k, v in world.brands.items()},
        "audiences": [a.model_dump(mode="json") for a in world.audiences],
        "tables": {name: f"{name}.parquet" for name in WORLD_TABLES},
        "curve": "incremental revenue per day = a * (1 - exp(-daily_spend / b))",
        **world.meta,
    }


def load_world(out_dir: Path | str) -> World:
    """Read back a world written by `write_exports`; outcomes are identical to the original."""
    wdir = world_dir(out_dir)
    meta_path = wdir / "world.json"
    if not meta_path.is_file():
        raise RMNError(
            f"no world found at {out_dir} (missing {meta_path}); "
            "create one with `rmn world generate --out DIR`"
        )
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise RMNError(
                f"{meta_path} has format_version {meta.get('format_version')!r}; "
                f"this version reads {FORMAT_VERSION}: regenerate the world"
            )
        tables = {name: pq.read_table(wdir / f"{name}.parquet") for name in WORLD_TABLES}
        # Parquet renames list items ("item" -> "element"); restore the in-memory schema.
        tables["skus"] = tables["skus"].cast(SKU_SCHEMA)
        return World(
            seed=int(meta["seed"]),
            start=date.fromisoformat(meta["start"]),
            days=int(meta["days"]),
            flight_days=int(meta["flight_days"]),
            retailers={k: RetailerInfo.model_validate(v) for k, v in meta["retailers"].items()},
            brands={k: BrandInfo.model_validate(v) for k, v in meta["brands"].items()},
            audiences=tuple(RMISAudienceDimension.model_validate(a) for a in meta["audiences"]),
            meta={"exports": meta["exports"]} if "exports" in meta else {},
            **tables,
        )
    except (OSError, KeyError, ValueError, pa.ArrowException) as err:
        raise RMNError(f"world at {out_dir} is incomplete or corrupt: {err}") from None
