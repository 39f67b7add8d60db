"""The simulated market's cast: retailers, brands, DMAs, audiences and the brands' SKU catalogs.

Retailers, brands and DMAs are fixed; everything numeric (SKUs, prices, margins, item ids,
audience sizes, campaigns) is drawn from the seed, so one seed always gives one market.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from tools.rmis import Placement, RMISAudienceDimension, gtin_check_digit

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


@dataclass(frozen=True)
class Category:
    price_range: tuple[float, float]
    margin: float
    nouns: tuple[str, ...]
    variants: tuple[str, ...]


CATEGORIES: dict[str, Category] = {
    "snacks": Category(
        (2.49, 6.99),
        0.30,
        (
            "Kettle Chips",
            "Cheddar Crackers",
            "Pretzel Twists",
            "Trail Mix",
            "Granola Bars",
            "Popcorn",
            "Tortilla Chips",
            "Rice Cakes",
            "Sandwich Cookies",
            "Fruit Snacks",
        ),
        ("Sea Salt", "Smoky BBQ", "Original", "Honey", "Spicy", "Family Size", "Lightly Salted"),
    ),
    "pantry": Category(
        (1.99, 8.99),
        0.22,
        (
            "Pasta Sauce",
            "Peanut Butter",
            "Oatmeal",
            "Breakfast Cereal",
            "Mac & Cheese",
            "Chicken Broth",
            "Jasmine Rice",
            "Salsa",
        ),
        ("Classic", "Organic", "Low Sodium", "Whole Grain", "Chunky", "Family Size"),
    ),
    "household": Category(
        (3.99, 18.99),
        0.28,
        (
            "Dish Soap",
            "Laundry Pods",
            "Paper Towels",
            "Trash Bags",
            "Surface Cleaner",
            "Scrub Sponges",
            "Bath Tissue",
        ),
        ("Lemon", "Unscented", "Mega Roll", "Value Pack", "Fresh Linen", "Ultra"),
    ),
    "beauty": Category(
        (5.99, 24.99),
        0.45,
        ("Lipstick", "Mascara", "Liquid Foundation", "Nail Polish", "Eyeliner", "Concealer"),
        ("Matte", "Waterproof", "Velvet", "Longwear", "Sheer", "Bold"),
    ),
    "skin_care": Category(
        (8.99, 39.99),
        0.48,
        (
            "Daily Moisturizer",
            "Sunscreen SPF 50",
            "Foaming Face Wash",
            "Night Cream",
            "Eye Serum",
            "Body Lotion",
        ),
        ("Sensitive", "Hydrating", "Oil-Free", "Fragrance-Free", "Brightening", "Repair"),
    ),
    "otc_health": Category(
        (4.99, 19.99),
        0.40,
        ("Allergy Relief", "Pain Reliever", "Cold & Flu", "Antacid", "Sleep Aid", "Cough Syrup"),
        ("Extra Strength", "Children's", "Non-Drowsy", "Rapid Release", "24 Hour", "Gel Caps"),
    ),
    "vitamins": Category(
        (7.99, 29.99),
        0.42,
        ("Multivitamin", "Vitamin D3", "Fish Oil", "Probiotic", "Vitamin C", "Magnesium"),
        ("Gummies", "Softgels", "Women's", "Men's", "Adult 50+", "Chewable"),
    ),
    "home_goods": Category(
        (11.99, 79.99),
        0.35,
        (
            "Bath Towel Set",
            "Throw Pillow",
            "Storage Bins",
            "Shower Curtain",
            "Picture Frame",
            "Scented Candle",
        ),
        ("Linen", "Charcoal", "Farmhouse", "Modern", "Coastal", "Velvet"),
    ),
    "kitchen": Category(
        (14.99, 59.99),
        0.30,
        (
            "Nonstick Skillet",
            "Knife Set",
            "Food Storage Set",
            "Cutting Board",
            "Mixing Bowls",
            "Baking Sheet",
        ),
        ("Pro", "Essentials", "Ceramic", "Stainless", "Bamboo", "10-Piece"),
    ),
    "small_electronics": Category(
        (19.99, 149.99),
        0.12,
        ("Air Fryer", "Coffee Maker", "Blender", "Electric Kettle", "Toaster", "Hand Mixer"),
        ("Compact", "Digital", "XL", "Smart", "Classic", "Pro"),
    ),
    "personal_care": Category(
        (2.99, 11.99),
        0.35,
        ("Body Wash", "Shampoo", "Deodorant", "Toothpaste", "Razor Refills", "Hand Soap"),
        ("Fresh", "Sensitive", "Charcoal", "Coconut", "Sport", "Clinical"),
    ),
    "beverages": Category(
        (1.49, 14.99),
        0.25,
        (
            "Sparkling Water",
            "Cold Brew Coffee",
            "Sports Drink",
            "Iced Tea",
            "Energy Drink",
            "Lemonade",
        ),
        ("Lime", "Zero Sugar", "Berry", "Original", "12-Pack", "Peach"),
    ),
    "alcohol": Category(
        (7.99, 29.99),
        0.18,
        ("Hard Seltzer", "Craft Lager", "IPA", "Canned Cocktail", "Red Blend Wine"),
        ("Variety Pack", "Black Cherry", "Session", "Mango", "Reserve", "12-Pack"),
    ),
}

ALL_CATEGORIES = tuple(CATEGORIES)

RETAILERS: dict[str, RetailerInfo] = {
    "alpha": RetailerInfo(
        id="alpha",
        name="Alpha Mart",
        kind="mass merchant",
        timezone="America/Chicago",
        placements=(
            P.SPONSORED_PRODUCT,
            P.SPONSORED_SEARCH,
            P.DISPLAY_ONSITE,
            P.DISPLAY_OFFSITE,
            P.INSTORE_SCREEN,
        ),
        categories=ALL_CATEGORIES,
        size=1.0,
    ),
    "beta": RetailerInfo(
        id="beta",
        name="Beta Grocers",
        kind="grocery",
        timezone="UTC",
        placements=(P.SPONSORED_PRODUCT, P.SPONSORED_SEARCH, P.DISPLAY_OFFSITE),
        categories=("snacks", "pantry", "household", "beverages", "alcohol"),
        size=0.6,
    ),
    "gamma": RetailerInfo(
        id="gamma",
        name="Gamma Pharmacy",
        kind="pharmacy",
        timezone="America/New_York",
        placements=(P.SPONSORED_SEARCH, P.SPONSORED_PRODUCT, P.DISPLAY_OFFSITE, P.INSTORE_SCREEN),
        categories=("beauty", "skin_care", "otc_health", "vitamins", "personal_care"),
        size=0.5,
    ),
    "delta": RetailerInfo(
        id="delta",
        name="Delta Home",
        kind="home",
        timezone="UTC",
        placements=(P.SPONSORED_SEARCH, P.SPONSORED_PRODUCT, P.DISPLAY_ONSITE, P.ONSITE_VIDEO),
        categories=("home_goods", "kitchen", "small_electronics", "household"),
        size=0.4,
    ),
}

BRANDS: dict[str, BrandInfo] = {
    "acme": BrandInfo(
        id="acme",
        name="Acme Foods",
        description="Grocery: snacks, pantry staples and household cleaning.",
        categories=("snacks", "pantry", "household"),
        category_weights=(0.45, 0.35, 0.20),
        budget_scale=2_500_000,
    ),
    "globex": BrandInfo(
        id="globex",
        name="Globex Health",
        description="Health and beauty: cosmetics, skin care, OTC medicine, vitamins.",
        categories=("beauty", "skin_care", "otc_health", "vitamins"),
        category_weights=(0.30, 0.25, 0.25, 0.20),
        budget_scale=1_800_000,
    ),
    "initech": BrandInfo(
        id="initech",
        name="Initech Home",
        description="Home goods, kitchenware and small kitchen electronics.",
        categories=("home_goods", "kitchen", "small_electronics"),
        category_weights=(0.40, 0.35, 0.25),
        budget_scale=1_200_000,
    ),
    "brand_x": BrandInfo(
        id="brand_x",
        name="Brand X Co.",
        description="Personal care and beverages, including some alcohol.",
        categories=("personal_care", "beverages", "alcohol"),
        category_weights=(0.45, 0.40, 0.15),
        budget_scale=2_200_000,
    ),
}

# Nielsen DMA code, name, TV households (thousands, approximate).
DMAS: tuple[tuple[str, str, int], ...] = (
    ("501", "New York", 7500),
    ("803", "Los Angeles", 5800),
    ("602", "Chicago", 3500),
    ("623", "Dallas-Ft. Worth", 3100),
    ("504", "Philadelphia", 3000),
    ("618", "Houston", 2700),
    ("807", "San Francisco-Oakland-San Jose", 2600),
    ("511", "Washington, DC", 2600),
    ("524", "Atlanta", 2600),
    ("506", "Boston", 2500),
    ("753", "Phoenix", 2100),
    ("539", "Tampa-St. Petersburg", 2100),
    ("819", "Seattle-Tacoma", 2000),
    ("505", "Detroit", 1900),
    ("613", "Minneapolis-St. Paul", 1800),
    ("751", "Denver", 1800),
    ("534", "Orlando-Daytona Beach", 1800),
    ("528", "Miami-Ft. Lauderdale", 1700),
    ("862", "Sacramento-Stockton-Modesto", 1500),
    ("510", "Cleveland-Akron", 1500),
    ("560", "Raleigh-Durham", 1400),
    ("517", "Charlotte", 1300),
    ("820", "Portland, OR", 1300),
    ("609", "St. Louis", 1200),
    ("527", "Indianapolis", 1200),
    ("659", "Nashville", 1200),
    ("508", "Pittsburgh", 1100),
    ("825", "San Diego", 1100),
    ("512", "Baltimore", 1100),
    ("770", "Salt Lake City", 1100),
    ("641", "San Antonio", 1000),
    ("535", "Columbus, OH", 1000),
    ("616", "Kansas City", 1000),
    ("533", "Hartford & New Haven", 1000),
    ("635", "Austin", 1000),
    ("515", "Cincinnati", 900),
    ("617", "Milwaukee", 900),
    ("839", "Las Vegas", 850),
    ("548", "West Palm Beach-Ft. Pierce", 850),
    ("561", "Jacksonville", 800),
    ("544", "Norfolk-Portsmouth-Newport News", 750),
    ("630", "Birmingham", 750),
    ("563", "Grand Rapids-Kalamazoo", 750),
    ("650", "Oklahoma City", 700),
    ("529", "Louisville", 700),
    ("790", "Albuquerque-Santa Fe", 700),
    ("571", "Ft. Myers-Naples", 650),
    ("556", "Richmond-Petersburg", 600),
    ("640", "Memphis", 600),
    ("622", "New Orleans", 600),
)

# retailer -> (audience_id, name, description, share of delivery)
_AUDIENCES: dict[str, tuple[tuple[str, str, str, float], ...]] = {
    "alpha": (
        ("all_shoppers", "All shoppers", "Everyone who shopped Alpha Mart in 12 months", 0.35),
        ("category_buyers", "Category buyers", "Bought in the SKU's category in 6 months", 0.20),
        ("lapsed_buyers", "Lapsed buyers", "Bought the brand before, not in 6 months", 0.10),
        ("new_to_brand", "New to brand", "Category buyers who never bought the brand", 0.15),
        ("loyalty_members", "Loyalty members", "Alpha Rewards members", 0.12),
        ("deal_seekers", "Deal seekers", "Mostly buy on promotion or with coupons", 0.08),
    ),
    "beta": (
        ("all_shoppers", "All shoppers", "Everyone who shopped Beta Grocers in 12 months", 0.40),
        ("loyalty_members", "Loyalty members", "Beta Club card holders", 0.25),
        ("category_buyers", "Category buyers", "Bought in the SKU's category in 6 months", 0.20),
        ("new_to_brand", "New to brand", "Category buyers who never bought the brand", 0.15),
    ),
    "gamma": (
        ("all_shoppers", "All shoppers", "Everyone who shopped Gamma Pharmacy in 12 months", 0.35),
        ("loyalty_members", "Loyalty members", "Gamma Care members", 0.25),
        ("category_buyers", "Category buyers", "Bought in the SKU's category in 6 months", 0.15),
        ("lapsed_buyers", "Lapsed buyers", "Bought the brand before, not in 6 months", 0.10),
        ("wellness_shoppers", "Wellness shoppers", "Frequent vitamin and self-care buyers", 0.15),
    ),
    "delta": (
        ("all_shoppers", "All shoppers", "Everyone who shopped Delta Home in 12 months", 0.40),
        ("category_buyers", "Category buyers", "Bought in the SKU's category in 12 months", 0.25),
        ("new_movers", "New movers", "Changed address in the last 6 months", 0.20),
        ("new_to_brand", "New to brand", "Category buyers who never bought the brand", 0.15),
    ),
}

# Households reached by each network (millions).
_REACH_M = {"alpha": 62.0, "beta": 18.0, "gamma": 26.0, "delta": 11.0}

# Native id formats: (prefix, digits) of each retailer's item ids and campaign ids.
ITEM_ID_FORMAT = {"alpha": ("AM", 8), "beta": ("BG-", 6), "gamma": ("G", 7), "delta": ("DH-", 7)}
CAMPAIGN_ID_FORMAT = {
    "alpha": ("AMC", 7),
    "beta": ("bcmp-", 6),
    "gamma": ("GPC", 6),
    "delta": ("dh_cmp_", 5),
}


def rng_for(seed: int, *labels: str) -> np.random.Generator:
    """An independent, stable random stream per purpose, so adding draws in one place never
    shifts the numbers drawn in another."""
    return np.random.default_rng([seed, *(zlib.crc32(label.encode()) for label in labels)])


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
    for (bid, brand), mfr in zip(BRANDS.items(), manufacturers, strict=True):
        n = int(rng.integers(20, 51))
        cats = rng.choice(len(brand.categories), size=n, p=np.array(brand.category_weights))
        item_refs = _unique_numbers(rng, 5, n, set())
        used_names: set[str] = set()
        n_high = int(round(rng.uniform(0.10, 0.15) * n))
        high_oos = set(rng.choice(n, size=n_high, replace=False).tolist())
        for i in range(n):
            cat_id = brand.categories[int(cats[i])]
            cat = CATEGORIES[cat_id]
            while True:
                name = f"{brand.name.split()[0]} {rng.choice(cat.variants)} {rng.choice(cat.nouns)}"
                if name not in used_names:
                    break
                name = f"{name} {int(rng.integers(2, 9)) * 6}ct"
                if name not in used_names:
                    break
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
            sku_rows.append(
                {
                    "gtin": gtin,
                    "brand_id": bid,
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

    listing_rows: list[dict[str, object]] = []
    carried: dict[str, list[str]] = {}
    for sku in sku_rows:
        eligible = [r for r in RETAILERS.values() if sku["category"] in r.categories]
        keep = [r.id for r in eligible if rng.random() < (0.95 if r.id == "alpha" else 0.85)]
        carried[str(sku["gtin"])] = keep or ["alpha"]
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

    # Stock on hand at the start of the flight: SKUs likely to stock out have little cover.
    for sku in sku_rows:
        cover = rng.uniform(0.2, 3.0) if float(sku["oos_prob"]) >= 0.5 else rng.uniform(14, 60)
        daily_units = 40 * np.exp(0.6 * float(sku["popularity"])) * len(carried[str(sku["gtin"])])
        sku["stock_units"] = int(daily_units * cover)
        sku["retailers"] = carried[str(sku["gtin"])]

    skus = pa.Table.from_pylist(sku_rows, schema=SKU_SCHEMA)
    listings = pa.Table.from_pylist(listing_rows, schema=LISTING_SCHEMA)
    return skus, listings


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
