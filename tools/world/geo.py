"""Geo-level daily sales of the simulated market: each brand's national sell-through at a
retailer split over the DMAs by household weight times the retailer's over-index there, with
a slow AR(1) drift per geo and daily noise that shrinks with the geo's volume (small DMAs are
noisier, as in real sell-through). The simulator writes them as each brand's `geo_sales` file;
`tools.measurement.simulate` draws many of them to validate designs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from tools.errors import RMNError
from tools.seeds import rng_for
from tools.world.truth import World


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
