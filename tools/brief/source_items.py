"""Source items: the gold briefs a brief dataset is written from.

Each item is one gold brief, sampled with a seeded `random.Random`: brand, budget, retailers
(a list, "all", or "all except"), objective, ROAS floor, experiment reserve (stated or left to
the default), flight (a range, a quarter, a month, the next N weeks or days, next month, or a
start with a length), the out-of-stock switch, and the day it was written. `gold` holds its
fields as JSON, as a correct parser would read them.
"""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tools.brief.schema import brand_retailers
from tools.world.catalog import BRANDS, RETAILERS


@dataclass
class SourceItem:
    """One gold brief and how it is to be written (retailer mode, flight kind, ...)."""

    source: str
    brand: str
    today: date
    budget: float
    retailer_mode: str  # list | all | except
    retailers: list[str]
    objective: str
    floor: float | None
    reserve: float
    reserve_stated: bool
    flight_kind: str | None
    flight_start: date | None
    flight_end: date | None
    oos: str | None  # include | exclude | None
    gold: dict[str, Any] = field(default_factory=dict)


def _month_end(y: int, m: int) -> date:
    return date(y, m, calendar.monthrange(y, m)[1])


def _sample_flight(rng: random.Random, today: date) -> tuple[str, date, date] | None:
    kind = rng.choice(
        [None, None, None, "range", "range", "quarter", "month", "weeks", "days", "next_month",
         "start_weeks"]
    )  # fmt: skip
    tomorrow = today + timedelta(days=1)
    if kind is None:
        return None
    if kind == "range":
        start = today + timedelta(days=rng.randint(5, 200))
        return kind, start, start + timedelta(days=rng.randint(13, 90))
    if kind == "quarter":
        q = (today.month - 1) // 3 + 1 + rng.randint(1, 4)
        y, q = today.year + (q - 1) // 4, (q - 1) % 4 + 1
        return kind, date(y, 3 * q - 2, 1), _month_end(y, 3 * q)
    if kind == "month":
        m = today.month + rng.randint(1, 8)
        y, m = today.year + (m - 1) // 12, (m - 1) % 12 + 1
        return kind, date(y, m, 1), _month_end(y, m)
    if kind == "weeks":
        return kind, tomorrow, tomorrow + timedelta(days=7 * rng.choice([2, 4, 6, 8, 12]) - 1)
    if kind == "days":
        return kind, tomorrow, tomorrow + timedelta(days=rng.choice([14, 30, 45, 60, 90]) - 1)
    if kind == "next_month":
        y, m = (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)
        return kind, date(y, m, 1), _month_end(y, m)
    start = today + timedelta(days=rng.randint(7, 150))
    return kind, start, start + timedelta(days=7 * rng.choice([2, 3, 4, 6, 8, 10]) - 1)


def sample_item(source: str, rng: random.Random) -> SourceItem:
    """One gold brief, drawn from `rng` (the same draws give the same item)."""
    brand = rng.choice(sorted(BRANDS))
    today = date(2026, 6, 1) + timedelta(days=rng.randint(0, 520))
    # Round millions, or round quarter-thousands for smaller flights.
    big = rng.random() < 0.6
    budget = rng.randint(10, 60) * 100_000.0 if big else rng.randint(6, 39) * 25_000.0
    sold = brand_retailers(brand)
    mode = rng.choices(["list", "all", "except"], weights=[0.65, 0.2, 0.15])[0]
    if mode == "all":
        retailers: list[str] = []
    elif mode == "except":
        dropped = rng.sample(sold, rng.randint(1, len(sold) - 1))
        retailers = [r for r in sold if r not in dropped]
    else:
        chosen = set(rng.sample(sold, rng.randint(1, len(sold))))
        retailers = [r for r in RETAILERS if r in chosen]
    objective = rng.choice(["incremental_margin", "incremental_revenue", "roas"])
    floor = rng.choice([None, None, 1.5, 2.0, 2.5, 2.75, 3.0, 3.5, 4.0])
    reserve_stated = rng.random() < 0.7
    reserve = (
        rng.choice([0.0, 0.05, 0.08, 0.1, 0.1, 0.12, 0.15, 0.2, 0.25]) if reserve_stated else 0.1
    )
    flight = _sample_flight(rng, today)
    oos = rng.choices([None, "include", "exclude"], weights=[0.72, 0.2, 0.08])[0]
    item = SourceItem(
        source, brand, today, budget, mode, retailers, objective, floor, reserve, reserve_stated,
        flight[0] if flight else None, flight[1] if flight else None, flight[2] if flight else None,
        oos,
    )  # fmt: skip
    item.gold = {
        "total_budget": budget,
        "retailers": retailers,
        "objective": objective,
        "roas_floor": floor,
        "experiment_reserve": reserve,
        "flight_start": item.flight_start.isoformat() if item.flight_start else None,
        "flight_end": item.flight_end.isoformat() if item.flight_end else None,
        "exclude_oos": oos != "include",
    }
    return item
