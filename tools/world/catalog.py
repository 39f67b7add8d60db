"""The simulated market's cast: retailers, brands, DMAs, audiences and the brands' SKU catalogs.

The cast is data: who the retailers and brands are is read from the bundled catalog's files
(`rag_corpus/`, `tools.catalog`), what only the simulation needs from `cast.yaml` beside this
module; the simulator writes the same catalog files into every market it generates. Everything
numeric (SKUs, prices, margins, item ids, audience sizes, campaigns) is drawn from the seed, so
one seed always gives one market.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict

from tools.catalog import load_catalog
from tools.catalog.product_lines import ALL_CATEGORIES, Category
from tools.catalog.product_lines import PRODUCT_CATEGORIES as CATEGORIES
from tools.paths import bundled_catalog_dir
from tools.rmis import Placement, RMISAudienceDimension, gtin_check_digit
from tools.seeds import rng_for

P = Placement


class RetailerInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    kind: str
    timezone: str
    placements: tuple[Placement, ...]
    categories: tuple[str, ...]
    # Relative size of the network: scales spend capacity, audiences and organic sales.
    size: float


class BrandInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str
    categories: tuple[str, ...]
    category_weights: tuple[float, ...]
    # Flight budget (USD over 28 days) at which the brand's curves are about half saturated.
    budget_scale: float


CAST_FILE = Path(__file__).resolve().parent / "cast.yaml"


def _load_cast() -> tuple[
    dict[str, RetailerInfo],
    dict[str, BrandInfo],
    dict[str, dict[str, Any]],
    tuple[tuple[str, str, int], ...],
]:
    """The cast: who each retailer and brand is comes from the bundled catalog's files, what
    only the simulation needs (sizes, audiences, id formats, weights) from `cast.yaml`."""
    cast = yaml.safe_load(CAST_FILE.read_text(encoding="utf-8"))
    catalog = load_catalog(bundled_catalog_dir())
    retailers: dict[str, RetailerInfo] = {}
    for rid, sim in cast["retailers"].items():
        entry = catalog.retailer(rid)
        retailers[rid] = RetailerInfo(
            id=rid,
            name=entry.name,
            kind=sim["kind"],
            timezone=entry.timezone,
            placements=entry.placements,
            categories=entry.categories or ALL_CATEGORIES,
            size=sim["size"],
        )
    brands: dict[str, BrandInfo] = {}
    for bid, sim in cast["brands"].items():
        entry = catalog.brand(bid)
        brands[bid] = BrandInfo(
            id=bid,
            name=entry.name,
            description=entry.description,
            categories=entry.categories,
            category_weights=tuple(sim["category_weights"]),
            budget_scale=sim["budget_scale"],
        )
    dmas = tuple((str(d["code"]), str(d["name"]), int(d["households_k"])) for d in cast["dmas"])
    return retailers, brands, cast["retailers"], dmas


RETAILERS, BRANDS, _SIM, DMAS = _load_cast()
IROAS_RETAILER = {rid: float(sim["iroas_factor"]) for rid, sim in _SIM.items()}
# retailer -> (audience_id, name, description, share of delivery)
_AUDIENCES: dict[str, tuple[tuple[str, str, str, float], ...]] = {
    rid: tuple((a["id"], a["name"], a["description"], float(a["share"])) for a in sim["audiences"])
    for rid, sim in _SIM.items()
}
# Households reached by each network (millions).
_REACH_M = {rid: float(sim["reach_million_households"]) for rid, sim in _SIM.items()}
# Native id formats: (prefix, digits) of each retailer's item ids and campaign ids.
ITEM_ID_FORMAT = {
    rid: (str(sim["item_id"]["prefix"]), int(sim["item_id"]["digits"])) for rid, sim in _SIM.items()
}
CAMPAIGN_ID_FORMAT = {
    rid: (str(sim["campaign_id"]["prefix"]), int(sim["campaign_id"]["digits"]))
    for rid, sim in _SIM.items()
}


def audience_weights(retailer_id: str) -> np.ndarray:
    w = np.array([a[3] for a in _AUDIENCES[retailer_id]])
    return w / w.sum()


def build_audiences(seed: int) -> list[RMISAudienceDimension]:
    rng = rng_for(seed, "audiences")
    out = []
    for rid, auds in _AUDIENCES.items():
        for aid, name, desc, share in auds:
            base = 1.0 if aid == "all_shoppers" else share * 1.6
            households = _REACH_M[rid] * 1e6 * min(base, 1.0) * rng.uniform(0.85, 1.0)
            out.append(
                RMISAudienceDimension(
                    audience_id=aid,
                    retailer_id=rid,
                    name=name,
                    description=desc,
                    est_households=int(round(households, -3)),
                )
            )
    return out


def build_dmas() -> pa.Table:
    households = np.array([d[2] for d in DMAS], dtype=float)
    return pa.table(
        {
            "code": [d[0] for d in DMAS],
            "name": [d[1] for d in DMAS],
            "weight": households / households.sum(),
        }
    )


def _unique_numbers(rng: np.random.Generator, digits: int, n: int, avoid: set[int]) -> list[int]:
    lo, hi = 10 ** (digits - 1), 10**digits
    out: list[int] = []
    seen = set(avoid)
    while len(out) < n:
        for v in rng.integers(lo, hi, size=2 * (n - len(out)) + 4).tolist():
            if v not in seen:
                seen.add(v)
                out.append(v)
                if len(out) == n:
                    break
    return out


def format_native_id(retailer_id: str, number: int, fmt: dict[str, tuple[str, int]]) -> str:
    prefix, digits = fmt[retailer_id]
    return f"{prefix}{number:0{digits}d}"


def _price(rng: np.random.Generator, lo: float, hi: float) -> float:
    # Shelf prices end in .49 or .99.
    whole = int(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return float(max(whole, 1) + (0.99 if rng.random() < 0.7 else 0.49))


def build_skus(seed: int) -> tuple[pa.Table, pa.Table]:
    """Return (skus, listings). skus: one row per brand SKU with its unit economics and
    latent traits; listings: one row per (retailer, SKU) the retailer carries, with the
    retailer's own item id."""
    rng = rng_for(seed, "skus")
    manufacturers = _unique_numbers(rng, 5, len(BRANDS), set())
    sku_rows: list[dict[str, object]] = []
    for brand, mfr in zip(BRANDS.values(), manufacturers, strict=True):
        sku_rows += _brand_skus(rng, brand, mfr)
    carried, listing_rows = _listings(rng, sku_rows)

    # Stock on hand at the start of the flight: SKUs likely to stock out have little cover.
    for sku in sku_rows:
        cover = rng.uniform(0.2, 3.0) if float(sku["oos_prob"]) >= 0.5 else rng.uniform(14, 60)
        daily_units = 40 * np.exp(0.6 * float(sku["popularity"])) * len(carried[str(sku["gtin"])])
        sku["stock_units"] = int(daily_units * cover)
        sku["retailers"] = carried[str(sku["gtin"])]

    skus = pa.Table.from_pylist(sku_rows, schema=SKU_SCHEMA)
    listings = pa.Table.from_pylist(listing_rows, schema=LISTING_SCHEMA)
    return skus, listings


def _brand_skus(rng: np.random.Generator, brand: BrandInfo, mfr: int) -> list[dict[str, object]]:
    """20-50 SKUs of one brand, with GTINs under its manufacturer number: names, prices,
    margins and latent traits; 10-15% of them at high stock-out risk in the flight."""
    n = int(rng.integers(20, 51))
    cats = rng.choice(len(brand.categories), size=n, p=np.array(brand.category_weights))
    item_refs = _unique_numbers(rng, 5, n, set())
    used_names: set[str] = set()
    n_high = int(round(rng.uniform(0.10, 0.15) * n))
    high_oos = set(rng.choice(n, size=n_high, replace=False).tolist())
    rows: list[dict[str, object]] = []
    for i in range(n):
        cat_id = brand.categories[int(cats[i])]
        cat = CATEGORIES[cat_id]
        name = _sku_name(rng, brand, cat, used_names)
        used_names.add(name)
        body = f"000{mfr:05d}{item_refs[i]:05d}"
        gtin = body + str(gtin_check_digit(body))
        price = _price(rng, *cat.price_range)
        z_pop = float(rng.normal())
        z_resp = float(rng.normal())
        # Responsive hero SKUs tend to carry thin margins, so chasing revenue and
        # chasing margin lead to different plans.
        target_margin = cat.margin + 0.08 * rng.normal() - 0.07 * z_resp
        margin = float(np.clip(target_margin, 0.055, 0.495))
        unit_cost = round(price * (1 - margin), 2)
        oos = rng.uniform(0.5, 0.95) if i in high_oos else rng.uniform(0.0, 0.1)
        rows.append(
            {
                "gtin": gtin,
                "brand_id": brand.id,
                "name": name,
                "category": cat_id,
                "list_price": price,
                "unit_cost": unit_cost,
                "unit_margin": round(price - unit_cost, 2),
                "margin_rate": (price - unit_cost) / price,
                "popularity": z_pop,
                "responsiveness": z_resp,
                "hist_oos_prob": float(rng.uniform(0.0, 0.06)),
                "oos_prob": float(oos),
            }
        )
    return rows


# A variant its product cannot have, and the one it takes instead: "Gel Caps Cough Syrup" (a
# syrup comes in no gel caps) was read as a catalog error by approvers. The draws are the same,
# so only such a product's name changes.
_CANNOT_BE = {("Gel Caps", "Cough Syrup"): "Non-Drowsy"}


def _sku_name(rng: np.random.Generator, brand: BrandInfo, cat: Category, used: set[str]) -> str:
    """A product name not yet used by the brand (a pack count tells repeats apart)."""
    while True:
        variant, noun = str(rng.choice(cat.variants)), str(rng.choice(cat.nouns))
        name = f"{brand.name.split()[0]} {_CANNOT_BE.get((variant, noun), variant)} {noun}"
        if name not in used:
            return name
        name = f"{name} {int(rng.integers(2, 9)) * 6}ct"
        if name not in used:
            return name


def _listings(
    rng: np.random.Generator, sku_rows: list[dict[str, object]]
) -> tuple[dict[str, list[str]], list[dict[str, object]]]:
    """Which retailers carry each SKU (most that sell its category; Alpha Mart when none
    does) and each listing's native item id."""
    carried: dict[str, list[str]] = {}
    for sku in sku_rows:
        eligible = [r for r in RETAILERS.values() if sku["category"] in r.categories]
        keep = [r.id for r in eligible if rng.random() < (0.95 if r.id == "alpha" else 0.85)]
        carried[str(sku["gtin"])] = keep or ["alpha"]
    listing_rows: list[dict[str, object]] = []
    for rid in RETAILERS:
        gtins = [g for g, rs in carried.items() if rid in rs]
        numbers = _unique_numbers(rng, ITEM_ID_FORMAT[rid][1], len(gtins), set())
        for g, num in zip(gtins, numbers, strict=True):
            listing_rows.append(
                {
                    "retailer_id": rid,
                    "gtin": g,
                    "item_id": format_native_id(rid, num, ITEM_ID_FORMAT),
                }
            )
    return carried, listing_rows


SKU_SCHEMA = pa.schema(
    [
        ("gtin", pa.string()),
        ("brand_id", pa.string()),
        ("name", pa.string()),
        ("category", pa.string()),
        ("list_price", pa.float64()),
        ("unit_cost", pa.float64()),
        ("unit_margin", pa.float64()),
        ("margin_rate", pa.float64()),
        ("popularity", pa.float64()),
        ("responsiveness", pa.float64()),
        ("hist_oos_prob", pa.float64()),
        ("oos_prob", pa.float64()),
        ("stock_units", pa.int64()),
        ("retailers", pa.list_(pa.string())),
    ]
)

LISTING_SCHEMA = pa.schema(
    [("retailer_id", pa.string()), ("gtin", pa.string()), ("item_id", pa.string())]
)


def build_campaigns(seed: int) -> pa.Table:
    """One always-on campaign per (retailer, brand, placement)."""
    rng = rng_for(seed, "campaigns")
    rows = []
    for rid, r in RETAILERS.items():
        numbers = _unique_numbers(
            rng, CAMPAIGN_ID_FORMAT[rid][1], len(BRANDS) * len(r.placements), set()
        )
        k = 0
        for bid, brand in BRANDS.items():
            for plc in r.placements:
                rows.append(
                    {
                        "retailer_id": rid,
                        "brand_id": bid,
                        "placement": plc.value,
                        "campaign_id": format_native_id(rid, numbers[k], CAMPAIGN_ID_FORMAT),
                        "name": f"{brand.name} | {r.name} | {plc.value} | always-on",
                    }
                )
                k += 1
    return pa.Table.from_pylist(rows)
