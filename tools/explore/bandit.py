"""Spending the experiment reserve by Thompson sampling over uncertain response curves.

Each line item carries a particle posterior over its daily curve r(s) = a * (1 - exp(-s / b)):
paired draws of (log a, log b) with log weights. Every round (one day) draws one (a, b) per
line from its posterior, allocates the round's reserve by the exact KKT water-fill on the
sampled curves, observes each funded line's incremental revenue (multiplicative lognormal
noise), and reweights that line's particles by the observation's likelihood. When a line's
effective sample size collapses its particles are resampled and jittered (Liu-West
shrinkage, so the jitter does not inflate the posterior's spread).

`run_bandit` plays this against a simulated world whose true curves are known, scoring
regret against the oracle allocation of the same budget over the same lines and against an
equal split of the budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tools.errors import RMNError
from tools.optimize import Brief, CurveSet, prepare, solve_kkt
from tools.world import generate_world


class BanditInputError(RMNError):
    """Settings the reserve bandit cannot run with (no rounds, too few lines, ...)."""

    kind = "bandit_input_error"


def curve(a: np.ndarray, b: np.ndarray, spend: np.ndarray) -> np.ndarray:
    """Daily incremental revenue a * (1 - exp(-spend / b)), broadcast."""
    return a * -np.expm1(-spend / b)


@dataclass
class ParticlePosterior:
    """Weighted paired draws of (log a, log b) per line; arrays have shape (draws, lines)."""

    log_a: np.ndarray
    log_b: np.ndarray
    log_w: np.ndarray

    @classmethod
    def from_draws(cls, a_draws: np.ndarray, b_draws: np.ndarray) -> ParticlePosterior:
        """Equal-weight particles from posterior draws, e.g. a `CurveFit`'s daily draws."""
        a = np.asarray(a_draws, dtype=float)
        b = np.asarray(b_draws, dtype=float)
        if a.ndim != 2 or a.shape != b.shape or a.shape[0] < 2:
            raise BanditInputError("a_draws and b_draws need the same shape (draws >= 2, lines)")
        if np.any(a <= 0) or np.any(b <= 0):
            raise BanditInputError("draws of a and b must be > 0")
        return cls(np.log(a), np.log(b), np.zeros_like(a))

    @classmethod
    def lognormal(
        cls,
        a: np.ndarray,
        b: np.ndarray,
        sigma_a: np.ndarray | float,
        sigma_b: np.ndarray | float,
        draws: int,
        rng: np.random.Generator,
    ) -> ParticlePosterior:
        """Prior particles: independent lognormal draws with medians a, b per line."""
        n = np.shape(a)[0]
        log_a = np.log(a) + np.asarray(sigma_a) * rng.standard_normal((draws, n))
        log_b = np.log(b) + np.asarray(sigma_b) * rng.standard_normal((draws, n))
        return cls(log_a, log_b, np.zeros((draws, n)))

    @property
    def draws(self) -> int:
        return int(self.log_a.shape[0])

    def weights(self) -> np.ndarray:
        w = np.exp(self.log_w - self.log_w.max(axis=0))
        return w / w.sum(axis=0)

    def ess(self) -> np.ndarray:
        """Effective sample size per line."""
        return 1.0 / np.square(self.weights()).sum(axis=0)

    def mean_log(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean of (log a, log b) per line."""
        w = self.weights()
        return (w * self.log_a).sum(axis=0), (w * self.log_b).sum(axis=0)

    def sd_log(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior standard deviation of (log a, log b) per line."""
        w = self.weights()
        ma, mb = (w * self.log_a).sum(axis=0), (w * self.log_b).sum(axis=0)
        va = (w * np.square(self.log_a - ma)).sum(axis=0)
        vb = (w * np.square(self.log_b - mb)).sum(axis=0)
        return np.sqrt(va), np.sqrt(vb)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One (a, b) per line, drawn by weight (inverse-CDF on each line's column)."""
        cum = np.cumsum(self.weights(), axis=0)
        u = rng.random(cum.shape[1])
        idx = np.minimum((cum < u).sum(axis=0), self.draws - 1)
        cols = np.arange(cum.shape[1])
        return np.exp(self.log_a[idx, cols]), np.exp(self.log_b[idx, cols])

    def update(
        self,
        lines: np.ndarray,
        spend: np.ndarray,
        observed: np.ndarray,
        noise_sigma: float,
        rng: np.random.Generator,
        ess_fraction: float = 0.5,
        jitter: float = 0.1,
    ) -> None:
        """Reweight `lines` by observing revenue `observed` at daily `spend` under mean-one
        lognormal noise, then resample and jitter the lines whose ESS fell below
        `ess_fraction` of the draws."""
        if lines.size == 0:
            return
        pred = curve(np.exp(self.log_a[:, lines]), np.exp(self.log_b[:, lines]), spend)
        # log y ~ N(log r(s) - sigma^2 / 2, sigma^2)
        z = (np.log(observed) - np.log(pred) + 0.5 * noise_sigma**2) / noise_sigma
        self.log_w[:, lines] += -0.5 * np.square(z)
        self.log_w[:, lines] -= self.log_w[:, lines].max(axis=0)
        low = lines[self.ess()[lines] < ess_fraction * self.draws]
        if low.size:
            self._resample(low, rng, jitter)

    def _resample(self, lines: np.ndarray, rng: np.random.Generator, h: float) -> None:
        d = self.draws
        w = self.weights()[:, lines]
        # Systematic resampling, one offset per line.
        cum = np.cumsum(w, axis=0)
        cum[-1] = 1.0
        pos = (np.arange(d)[:, None] + rng.random(lines.size)) / d
        idx = np.empty((d, lines.size), dtype=np.intp)
        for j in range(lines.size):
            idx[:, j] = np.searchsorted(cum[:, j], pos[:, j])
        shrink = np.sqrt(1.0 - h**2)
        for arr in (self.log_a, self.log_b):
            col = arr[:, lines]
            mean = (w * col).sum(axis=0)
            sd = np.sqrt((w * np.square(col - mean)).sum(axis=0))
            picked = np.take_along_axis(col, idx, axis=0)
            arr[:, lines] = (
                shrink * picked + (1 - shrink) * mean + h * sd * rng.standard_normal(picked.shape)
            )
        self.log_w[:, lines] = 0.0


def curve_uncertainty(curves: CurveSet) -> np.ndarray:
    """Per line, the posterior spread of its curve: the standard deviation of log a plus that
    of log b over the curve set's draws (0 without draws)."""
    if curves.a_draws is None or curves.b_draws is None:
        return np.zeros(len(curves))
    return np.log(curves.a_draws).std(axis=0) + np.log(curves.b_draws).std(axis=0)


def reserve_lines(curves: CurveSet, top_k: int) -> np.ndarray:
    """The `top_k` lines whose curves are least known and can take spend (not out of stock,
    maximum above zero), most uncertain first: where the experiment reserve learns most.
    Prior-only lines (no history of their own) carry the widest curves, so they come first."""
    if top_k < 1:
        raise BanditInputError(f"top_k must be >= 1, got {top_k}")
    if curves.a_draws is None:
        raise BanditInputError("the curves carry no posterior draws to rank uncertainty by")
    spread = curve_uncertainty(curves)
    open_ = ~curves.out_of_stock & (curves.max_spend > 0)
    ranked = np.flatnonzero(open_)[np.argsort(-spread[open_], kind="stable")]
    return ranked[:top_k]


def allocate_round(a: np.ndarray, b: np.ndarray, budget: float) -> np.ndarray:
    """Revenue-maximizing split of `budget` over curves (a, b), by the exact KKT water-fill."""
    n = a.shape[0]
    ids = np.array([f"l{i}" for i in range(n)])
    curves = CurveSet.from_arrays(
        retailer_id=np.full(n, "reserve"), placement=ids, gtin=ids, a=a, b=b, margin=1.0
    )
    return solve_kkt(prepare(curves, Brief(budget=budget, objective="incremental_revenue"))).x


@dataclass(frozen=True)
class BanditSettings:
    """Knobs of the reserve bandit and of the simulated prior it starts from."""

    draws: int = 300
    top_k: int | None = None  # fund only the K lines with the widest prior; None: all
    noise_sigma: float = 0.3  # observation noise, sd of log revenue
    prior_sigma: tuple[float, float] = (0.15, 0.8)  # range of per-line prior sd of log a, log b
    ess_fraction: float = 0.5
    jitter: float = 0.1


def run_bandit(
    a_true: np.ndarray,
    b_true: np.ndarray,
    budget: float,
    rounds: int,
    seed: int,
    settings: BanditSettings | None = None,
) -> dict[str, Any]:
    """Thompson sampling of a daily reserve `budget` over lines with true curves (a, b).

    The prior is lognormal around a noisy initial estimate: each line gets its own prior sd
    and its estimate is off by a draw of that size, so the prior is honest but uneven."""
    s = settings or BanditSettings()
    if rounds < 1:
        raise BanditInputError(f"rounds must be >= 1, got {rounds}")
    if budget <= 0:
        raise BanditInputError(f"budget must be > 0, got {budget}")
    rng = np.random.default_rng(seed)
    n = a_true.shape[0]
    if n < 2:
        raise BanditInputError("the reserve needs at least 2 line items")
    lo, hi = s.prior_sigma
    sig_a, sig_b = rng.uniform(lo, hi, n), rng.uniform(lo, hi, n)
    a0 = a_true * np.exp(sig_a * rng.standard_normal(n))
    b0 = b_true * np.exp(sig_b * rng.standard_normal(n))
    k = n if s.top_k is None else min(max(s.top_k, 2), n)
    lines = np.sort(np.argsort(-(sig_a**2 + sig_b**2), kind="stable")[:k])
    a, b = a_true[lines], b_true[lines]
    post = ParticlePosterior.lognormal(
        a0[lines], b0[lines], sig_a[lines], sig_b[lines], s.draws, rng
    )
    start_a, start_b = post.mean_log()

    best = float(curve(a, b, allocate_round(a, b, budget)).sum())
    equal = float(curve(a, b, np.full(k, budget / k)).sum())
    regret_ts, funded_ever = _play(a, b, budget, rounds, post, rng, s, best)
    end_a, end_b = post.mean_log()

    def err(m: np.ndarray, truth: np.ndarray) -> float:
        sel = funded_ever if funded_ever.any() else np.ones(k, dtype=bool)
        return float(np.mean(np.abs(m[sel] - np.log(truth[sel]))))

    cum_ts = np.cumsum(regret_ts)
    cum_eq = np.cumsum(np.full(rounds, best - equal))
    return {
        "lines": lines,
        "regret_ts": regret_ts,
        "regret_equal": np.full(rounds, best - equal),
        "cum_ts": cum_ts,
        "cum_equal": cum_eq,
        "crossover_round": _crossover(cum_ts, cum_eq),
        "funded_lines": int(funded_ever.sum()),
        "posterior_error": {
            "log_a_start": err(start_a, a),
            "log_a_end": err(end_a, a),
            "log_b_start": err(start_b, b),
            "log_b_end": err(end_b, b),
        },
        "oracle_revenue_per_round": best,
        "equal_revenue_per_round": equal,
        "posterior": post,
    }


def _play(
    a: np.ndarray,
    b: np.ndarray,
    budget: float,
    rounds: int,
    post: ParticlePosterior,
    rng: np.random.Generator,
    s: BanditSettings,
    best: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The rounds: sample curves, allocate on them, observe the funded lines' noisy revenue
    and update `post`. Returns each round's regret against `best` and which lines were ever
    funded."""
    regret_ts: list[float] = []
    funded_ever = np.zeros(a.shape[0], dtype=bool)
    for _ in range(rounds):
        sa, sb = post.sample(rng)
        x = allocate_round(sa, sb, budget)
        regret_ts.append(best - float(curve(a, b, x).sum()))
        funded = np.flatnonzero(x > 1e-9 * budget)
        funded_ever[funded] = True
        mean_obs = curve(a[funded], b[funded], x[funded])
        noise = rng.normal(-0.5 * s.noise_sigma**2, s.noise_sigma, funded.size)
        post.update(
            funded,
            x[funded],
            mean_obs * np.exp(noise),
            s.noise_sigma,
            rng,
            s.ess_fraction,
            s.jitter,
        )
    return np.asarray(regret_ts), funded_ever


def _crossover(cum_ts: np.ndarray, cum_eq: np.ndarray) -> int | None:
    """First round (1-based) from which Thompson sampling's cumulative regret stays below
    the baseline's for good; None when it never does."""
    above = np.flatnonzero(~(cum_ts < cum_eq))
    if above.size == 0:
        return 1
    return None if above[-1] == cum_ts.size - 1 else int(above[-1]) + 2


def run_bandit_bench(
    rounds: int = 50,
    seed: int = 7,
    brand: str = "acme",
    reserve_fraction: float = 0.1,
    settings: BanditSettings | None = None,
) -> dict[str, Any]:
    """Thompson sampling vs an equal split of one brand's daily experiment reserve on a
    generated world: cumulative regret per round, the crossover round and posterior error."""
    started = time.perf_counter()
    world = generate_world(seed=seed)
    table = world.line_items
    brand_ids = np.asarray(table.column("brand_id").to_pylist())
    if brand not in world.brands:
        raise BanditInputError(f"unknown brand {brand!r}", known=sorted(world.brands))
    mask = brand_ids == brand
    a_true = table.column("a").to_numpy()[mask]
    b_true = table.column("b").to_numpy()[mask]
    budget = reserve_fraction * world.brands[brand].budget_scale / world.flight_days
    r = run_bandit(a_true, b_true, budget, rounds, seed, settings)
    final_ts, final_eq = float(r["cum_ts"][-1]), float(r["cum_equal"][-1])
    return {
        "brand": brand,
        "lines": int(r["lines"].size),
        "funded_lines": r["funded_lines"],
        "rounds": rounds,
        "seed": seed,
        "daily_reserve_usd": round(budget, 2),
        "oracle_revenue_per_round": round(r["oracle_revenue_per_round"], 2),
        "equal_revenue_per_round": round(r["equal_revenue_per_round"], 2),
        "cum_regret_ts": [round(float(v), 2) for v in r["cum_ts"]],
        "cum_regret_equal": [round(float(v), 2) for v in r["cum_equal"]],
        "final_regret_ts": round(final_ts, 2),
        "final_regret_equal": round(final_eq, 2),
        "regret_ratio": round(final_ts / final_eq, 4) if final_eq > 0 else None,
        "crossover_round": r["crossover_round"],
        "posterior_error": {k: round(v, 4) for k, v in r["posterior_error"].items()},
        "seconds": round(time.perf_counter() - started, 3),
    }
