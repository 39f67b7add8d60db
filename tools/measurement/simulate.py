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

from dataclasses import dataclass
from datetime import date

import numpy as np

from tools.errors import RMNError
from tools.measurement.design import GeoPanel
from tools.world import World, generate_world
from tools.world.catalog import rng_for
from tools.world.simulate import simulate_history


@dataclass(frozen=True)
class GeoSimConfig:
    """Noise of simulated geo sales around their share of national sales (log scale)."""

    drift_sd: float = 0.04  # stationary sd of the slow geo drift
    drift_phi: float = 0.9  # day-to-day persistence of that drift
    noise_floor: float = 0.05  # daily noise that volume does not average away
    overdispersion: float = 4.0  # variance of daily units over their mean


@dataclass(frozen=True)
class NationalSales:
    """A brand's total daily sell-through at one retailer: `revenue` is (days,) USD, or
    (sims, days) when each simulation sees its own stretch of history."""

    start: date
    revenue: np.ndarray
    units: np.ndarray

    def windows(self, offsets: np.ndarray, days: int) -> NationalSales:
        """One `days`-long stretch per offset, stacked as (len(offsets), days)."""
        offsets = np.asarray(offsets, dtype=int)
        if offsets.min() < 0 or offsets.max() + days > self.revenue.shape[-1]:
            raise RMNError(
                f"windows of {days} days at offsets up to {offsets.max()} run past the "
                f"{self.revenue.shape[-1]} days of history"
            )
        idx = offsets[:, None] + np.arange(days)[None, :]
        return NationalSales(self.start, self.revenue[..., idx], self.units[..., idx])


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


def geo_shares(world: World, retailer: str) -> np.ndarray:
    """Each DMA's share of the retailer's sales: household weight times the retailer's
    over-index there (the world's own draw, so sales sit where the ads are delivered)."""
    w = world.dmas.column("weight").to_numpy()
    w = w * np.exp(0.3 * rng_for(world.seed, "geo", retailer).normal(size=w.size))
    return w / w.sum()


def simulate_geo_sales(
    national: NationalSales,
    shares: np.ndarray,
    n_sims: int,
    seed: int,
    config: GeoSimConfig | None = None,
) -> np.ndarray:
    """`n_sims` independent draws of daily geo sales, shaped (sims, geos, days)."""
    cfg = config or GeoSimConfig()
    rng = np.random.default_rng([seed, 0x6E0])
    revenue = np.broadcast_to(national.revenue, (n_sims, national.revenue.shape[-1]))
    G, T = shares.size, revenue.shape[1]
    mean_units = national.units.mean() * shares  # (G,)
    noise_sd = np.sqrt(cfg.noise_floor**2 + cfg.overdispersion / np.maximum(mean_units, 1e-9))

    drift = np.empty((n_sims, G, T))
    innov_sd = cfg.drift_sd * np.sqrt(1 - cfg.drift_phi**2)
    drift[..., 0] = cfg.drift_sd * rng.standard_normal((n_sims, G))
    shocks = rng.standard_normal((n_sims, G, T))
    for t in range(1, T):
        drift[..., t] = cfg.drift_phi * drift[..., t - 1] + innov_sd * shocks[..., t]
    noise = noise_sd[None, :, None] * rng.standard_normal((n_sims, G, T))
    # Mean-preserving: E[exp(z - var/2)] = 1.
    log_mult = drift + noise - 0.5 * (cfg.drift_sd**2 + noise_sd[None, :, None] ** 2)
    return revenue[:, None, :] * shares[None, :, None] * np.exp(log_mult)


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
