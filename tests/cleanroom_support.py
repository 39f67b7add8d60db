"""What the clean-room tests share: seeded RMIS events (skewed, so that some cells are large
and many tiny, or exact counts per cell), written as a retailer's harmonized events file, and
fixed data-access rules to query them under."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tools.cleanroom import (
    METRICS,
    CleanRoomQuery,
    DataAccessRules,
)
from tools.rmis import EVENT_COLUMNS, Placement, gtin_check_digit

BRANDS = ("acme", "globex", "initech")
START = date(2026, 8, 1)
PLACEMENTS = [p.value for p in Placement]
GEOS = ["501", "602", "803", "807"]
AUDIENCES = ["all_shoppers", "deal_seekers", "new_parents"]
SUM_METRICS = [m for m, col in METRICS.items() if col]


def gtin(n: int) -> str:
    body = f"{n:013d}"
    return body + str(gtin_check_digit(body))


def brand_gtins(brand: str) -> list[str]:
    base = 10_000_000 * (BRANDS.index(brand) + 1)
    return [gtin(base + i) for i in range(4)]


def random_events(seed: int, n: int, days: int = 21) -> dict[str, np.ndarray]:
    """RMIS events with skewed categories, so that some cells are large and many are tiny."""
    rng = np.random.default_rng(seed)

    def skewed(values: list[str], size: int) -> np.ndarray:
        w = 0.45 ** np.arange(len(values))
        return rng.choice(np.array(values, dtype=object), size=size, p=w / w.sum())

    brand = rng.choice(np.array(BRANDS, dtype=object), size=n, p=[0.5, 0.3, 0.2])
    campaign = np.array([f"{b}_c{rng.integers(0, 3)}" for b in brand], dtype=object)
    sku = np.array([brand_gtins(b)[int(rng.integers(0, 4))] for b in brand], dtype=object)
    offset = np.clip(rng.geometric(0.15, size=n) - 1, 0, days - 1)
    day = np.datetime64(START, "D") + offset.astype("timedelta64[D]")
    impressions = rng.integers(0, 5_000, size=n)
    clicks = rng.binomial(impressions, 0.02)
    conversions = rng.binomial(clicks, 0.1)
    units = conversions * rng.integers(1, 3, size=n)
    return {
        "event_id": np.array([f"r:{i}" for i in range(n)], dtype=object),
        "retailer_id": np.full(n, "alpha", dtype=object),
        "brand_id": brand,
        "campaign_id": campaign,
        "event_date": day,
        "geo_id": skewed(GEOS, n),
        "placement": skewed(PLACEMENTS, n),
        "audience_id": skewed(AUDIENCES, n),
        "gtin": sku,
        "impressions": impressions,
        "clicks": clicks,
        "conversions": conversions,
        "spend": np.round(rng.gamma(2.0, 8.0, size=n), 2),
        "attributed_sales": np.round(units * rng.uniform(2.0, 9.0, size=n), 2),
        "attributed_units": units,
    }


def write_events(data: Path, retailer: str, ev: dict[str, np.ndarray]) -> Path:
    n = len(ev["event_id"])
    ts = ev["event_date"].astype("datetime64[s]") + np.arange(n) % 24 * np.timedelta64(1, "h")
    cols: dict[str, pa.Array] = {
        "event_id": pa.array(ev["event_id"], pa.string()),
        "retailer_id": pa.array(np.full(n, retailer, dtype=object), pa.string()),
        "brand_id": pa.array(ev["brand_id"], pa.string()),
        "campaign_id": pa.array(ev["campaign_id"], pa.string()),
        "event_ts": pa.array(ts, pa.timestamp("us")),
        "event_date": pa.array(ev["event_date"], pa.date32()),
        "geo_id": pa.array(ev["geo_id"], pa.string()),
        "placement": pa.array(ev["placement"], pa.string()),
        "audience_id": pa.array(ev["audience_id"], pa.string()),
        "gtin": pa.array(ev["gtin"], pa.string()),
        "retailer_item_id": pa.array([f"AM{i:08d}" for i in range(n)], pa.string()),
        "impressions": pa.array(ev["impressions"], pa.int64()),
        "clicks": pa.array(ev["clicks"], pa.int64()),
        "conversions": pa.array(ev["conversions"], pa.int64()),
        "spend": pa.array(ev["spend"], pa.float64()),
        "attributed_sales": pa.array(ev["attributed_sales"], pa.float64()),
        "attributed_units": pa.array(ev["attributed_units"], pa.int64()),
        "viewability": pa.array(np.full(n, 0.7), pa.float64()),
    }
    assert list(cols) == list(EVENT_COLUMNS)
    path = data / "rmis" / retailer / "events.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def fixed_events(cells: dict[tuple[str, str], int], spend: float = 2.0) -> dict[str, np.ndarray]:
    """Exactly `count` events for each (brand, placement), all else constant."""
    brand, placement = [], []
    for (b, p), count in cells.items():
        brand += [b] * count
        placement += [p] * count
    n = len(brand)
    ones = np.ones(n, dtype=np.int64)
    return {
        "event_id": np.array([f"r:{i}" for i in range(n)], dtype=object),
        "brand_id": np.array(brand, dtype=object),
        "campaign_id": np.array([f"{b}_c0" for b in brand], dtype=object),
        "event_date": np.full(n, np.datetime64(START, "D")),
        "geo_id": np.full(n, "501", dtype=object),
        "placement": np.array(placement, dtype=object),
        "audience_id": np.full(n, "all_shoppers", dtype=object),
        "gtin": np.array([brand_gtins(b)[0] for b in brand], dtype=object),
        "impressions": 100 * ones,
        "clicks": 3 * ones,
        "conversions": ones,
        "spend": np.full(n, spend),
        "attributed_sales": np.full(n, 10.0),
        "attributed_units": ones,
    }


def rules(**overrides: Any) -> Any:
    fixed = DataAccessRules(source="rag_corpus/retailers/test.md#data-access", **overrides)
    return lambda retailer: fixed


def week_start(d: np.ndarray) -> np.ndarray:
    days = d.astype("datetime64[D]").astype(np.int64)
    return (days - (days + 3) % 7).astype("datetime64[D]")  # 1970-01-01 was a Thursday


def q(**fields: Any) -> CleanRoomQuery:
    return CleanRoomQuery(**{"tenant": "acme", "retailer": "alpha", **fields})
