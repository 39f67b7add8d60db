"""Geo-level daily sales with a known truth, to validate designs and readouts.

The world's sell-through gives a brand's national daily sales at a retailer, with its weekly
pattern, promotions, stock-outs and the always-on ads already in it. Those sales are split
over the 50 DMAs by TV-household weight times the retailer's over-index in each market (the
same draw the world uses to place delivery records), and each geo gets

- a slow AR(1) drift (local competitors, weather, store openings) shared by all its days, and
- daily noise that shrinks with the geo's unit volume (overdispersed Poisson) down to a floor,

so that small DMAs are noisier than large ones, as they are in real sell-through. Everything is
vectorized over simulations: arrays are shaped (sims, geos, days).
"""

from __future__ import annotations

import numpy as np

from tools.errors import RMNError
from tools.measurement.panel import GeoPanel
from tools.world import World, generate_world
from tools.world.geo import GeoSimConfig, NationalSales, geo_shares, simulate_geo_sales
from tools.world.simulate import simulate_history

__all__ = ["GeoSimConfig", "NationalSales", "geo_shares", "national_sales", "simulate_geo_sales"]


def national_sales(world: World, retailer: str, brand: str) -> NationalSales:
    """Daily sell-through of `brand` at `retailer` over the world's history."""
    listings = world.listings
    brand_of = dict(
        zip(
            world.skus.column("gtin").to_pylist(),
            world.skus.column("brand_id").to_pylist(),
            strict=True,
        )
    )
    mask = np.array(
        [
            r == retailer and brand_of[g] == brand
            for r, g in zip(
                listings.column("retailer_id").to_pylist(),
                listings.column("gtin").to_pylist(),
                strict=True,
            )
        ]
    )
    if not mask.any():
        raise RMNError(
            f"brand '{brand}' sells nothing at retailer '{retailer}' in this world",
            brand=brand,
            retailer=retailer,
        )
    # Enough delivery records that line items deliver on most days, as always-on campaigns do.
    hist = simulate_history(world, events=world.days * world.line_items.num_rows)
    return NationalSales(
        start=world.start,
        revenue=hist.sell_revenue[:, mask].sum(axis=1),
        units=hist.sell_units[:, mask].sum(axis=1).astype(float),
    )


def world_panel(
    seed: int = 7,
    retailer: str = "alpha",
    brand: str = "acme",
    days: int = 118,
    sim_seed: int = 0,
    config: GeoSimConfig | None = None,
) -> GeoPanel:
    """One simulated daily geo panel of a brand at a retailer over a world of `days` days."""
    world = generate_world(seed=seed, days=days)
    sales = simulate_geo_sales(
        national_sales(world, retailer, brand), geo_shares(world, retailer), 1, sim_seed, config
    )[0]
    return GeoPanel(
        geos=tuple(world.dmas.column("code").to_pylist()), start=world.start, sales=sales
    )


def plant_geo_lift(
    sales: np.ndarray, treated: np.ndarray, first_day: int, days: int, lift: float
) -> np.ndarray:
    """Multiply treated geos' sales by `1 + lift` over test days [first_day, first_day + days).
    `sales` is (..., geos, days); `treated` is boolean over geos, or (sims, geos)."""
    out = np.array(sales, dtype=float, copy=True)
    mult = 1.0 + lift * np.asarray(treated, dtype=float)
    out[..., first_day : first_day + days] *= mult[..., None]
    return out


def plant_daily_lift(
    sales: np.ndarray, on_days: np.ndarray, first_day: int, lift: float
) -> np.ndarray:
    """Multiply every geo's sales by `1 + lift` on the days flagged in `on_days`, counted from
    `first_day`. `on_days` is boolean over test days, or (sims, test days)."""
    out = np.array(sales, dtype=float, copy=True)
    on = np.asarray(on_days, dtype=float)
    n = on.shape[-1]
    mult = 1.0 + lift * on  # (..., days)
    out[..., first_day : first_day + n] *= mult[..., None, :]
    return out
