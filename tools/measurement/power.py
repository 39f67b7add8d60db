"""Power and minimum detectable effect for geo holdouts and switchbacks.

Both designs compare units (geos, or time periods) on a log scale, so a planted lift of `L` is
a shift of `log(1 + L)`. The noise that shift must beat is estimated from pre-period data only:

- Geo holdout: placebo tests on the history (GeoLift-style). For each placebo window of `d`
  days after `t` pre-period days, the test-window mean of every geo is regressed on its mean
  over the `t` days before, the same ANCOVA the readout runs, and the residual variance is
  recorded; it already carries the pre-period correlation (`var(y) * (1 - rho^2)`). The curve
  `var(d, t) = a + b / d + c * d + e / t` (non-negative terms: a persistent geo deviation,
  daily noise that averages out over the test, slow drift away from the pre-period, noise in
  the pre-period level that a longer history averages out) is fitted to the placebo points and
  read at the real pre-period length, so the test is judged with all its history, and lengths
  longer than the history allows as a placebo are extrapolated rather than guessed.
- Switchback: the residual variance of log period sales after the day-of-week and trend terms
  the readout uses, in placebo windows of the test's length.

The standardized effect those designs can detect comes from statsmodels' `TTestIndPower`
(a two-sided two-sample t-test), with the noise above as the unit-level sd.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import brentq, nnls
from statsmodels.stats.power import TTestIndPower

from tools.errors import RMNError

# Fewest pre-period days before a placebo window: the readout's covariate needs weeks, not days.
MIN_PLACEBO_PRE_DAYS = 28
PLACEBO_STEP_DAYS = 7
MIN_PRE_DAYS = MIN_PLACEBO_PRE_DAYS + 14


class InsufficientHistoryError(RMNError):
    """Too little pre-period data to estimate the noise a test must beat."""

    kind = "insufficient_history"


@lru_cache(maxsize=4096)
def detectable_effect_size(
    n_treat: int, n_control: int, alpha: float, power: float, df: int | None = None
) -> float:
    """Smallest standardized difference (Cohen's d) a two-group t-test detects with `power`.

    `df` is the residual degrees of freedom of the readout's regression (it spends some on its
    covariates); by default the plain two-sample test's `n_treat + n_control - 2`."""
    analysis = TTestIndPower()
    ratio = n_control / n_treat
    if df is None:
        es = analysis.solve_power(
            effect_size=None, nobs1=n_treat, alpha=alpha, power=power, ratio=ratio
        )
        return float(np.asarray(es).item())

    def gap(es: float) -> float:
        return float(power_at(es, n_treat, n_control, alpha, df).item()) - power

    # Bracket by doubling from a plausible effect: the noncentral t is least precise far out.
    hi = 1.0
    while gap(hi) < 0 and hi < 64:
        hi *= 2
    return float(brentq(gap, 1e-6, hi, xtol=1e-10))


def power_at(
    effect_size: float | np.ndarray,
    n_treat: int,
    n_control: int,
    alpha: float,
    df: int | None = None,
) -> np.ndarray:
    """Power of the two-group t-test at a standardized effect (vectorized over effects)."""
    es = np.maximum(np.abs(np.asarray(effect_size, dtype=float)), 1e-12)
    args = {"nobs1": n_treat, "ratio": n_control / n_treat, "df": df}
    analysis = TTestIndPower()
    out = np.asarray(analysis.power(effect_size=es, alpha=alpha, **args), dtype=float)
    if np.isnan(out).any():
        # Far out, the noncentral t's opposite tail underflows to NaN; it is negligible there,
        # so the upper tail at alpha / 2 is the two-sided power.
        upper = analysis.power(effect_size=es, alpha=alpha / 2, alternative="larger", **args)
        out = np.where(np.isnan(out), np.asarray(upper, dtype=float), out)
    return out


def design_effect(treated: np.ndarray, controls: np.ndarray) -> float:
    """Variance of the treatment coefficient in OLS on `[treated, controls]`, relative to a
    plain difference in means (`1/n1 + 1/n0`). Above 1 when the assignment happens to line up
    with a covariate (an unlucky draw); the design's power accounts for its own draw."""
    t = np.asarray(treated, dtype=float)
    Z = np.column_stack([t, controls])
    n1, n0 = t.sum(), (1 - t).sum()
    return float(np.linalg.pinv(Z.T @ Z)[0, 0] / (1 / n1 + 1 / n0))


@dataclass(frozen=True)
class NoiseModel:
    """Residual variance of a geo's log test-window level as a function of test length.

    `coef` holds (a, b, c, e) of `var(d, t) = a + b / d + c * d + e / t`; `pre_days` is the
    pre-period length `t` the design reads it at; `rho` is the mean placebo correlation between
    a geo's pre-period and test-window level, by placebo length."""

    coef: tuple[float, float, float, float]
    pre_days: int
    placebos: int
    rho: tuple[tuple[int, float], ...]

    def variance(self, days: int | np.ndarray) -> np.ndarray:
        d = np.asarray(days, dtype=float)
        a, b, c, e = self.coef
        return np.maximum(a + b / d + c * d + e / self.pre_days, 1e-12)

    def sd(self, days: int) -> float:
        return float(np.sqrt(self.variance(days)))

    def correlation(self, days: int) -> float:
        """Placebo pre/test correlation at the placebo length nearest to `days`."""
        lengths = np.array([d for d, _ in self.rho])
        return float(self.rho[int(np.argmin(np.abs(lengths - days)))][1])


def _fit_variance(d: np.ndarray, t: np.ndarray, var: np.ndarray) -> tuple[float, ...]:
    """Non-negative least squares in relative error, so that short, noisy windows do not
    dominate. Terms the placebo grid cannot identify (too few distinct lengths) are left out."""
    n_d, n_t = np.unique(d).size, np.unique(t).size
    cols = [np.ones_like(d), 1.0 / d, d, 1.0 / t]
    keep = [0] + ([1] if n_d > 1 else []) + ([2] if n_d > 2 else []) + ([3] if n_t > 1 else [])
    A = np.column_stack([cols[i] for i in keep]) / var[:, None]
    sol, _ = nnls(A, np.ones_like(var))
    coef = [0.0, 0.0, 0.0, 0.0]
    for i, v in zip(keep, sol, strict=True):
        coef[i] = float(v)
    return tuple(coef)


def geo_noise_model(pre_sales: np.ndarray) -> NoiseModel:
    """Placebo ANCOVA residual variance of log geo means, from a (geos, days) pre-period panel
    of daily sales."""
    S = np.asarray(pre_sales, dtype=float)
    G, P = S.shape
    if P < MIN_PRE_DAYS:
        raise InsufficientHistoryError(
            f"the pre-period has {P} days; power needs at least {MIN_PRE_DAYS} days of daily "
            "geo sales before the test",
            days=P,
            needed=MIN_PRE_DAYS,
        )
    if G < 4:
        raise InsufficientHistoryError(f"a geo holdout needs at least 4 geos, got {G}", geos=G)
    C = np.concatenate([np.zeros((G, 1)), np.cumsum(np.maximum(S, 0.0), axis=1)], axis=1)
    pts_d: list[np.ndarray] = []
    pts_t: list[np.ndarray] = []
    pts_v: list[np.ndarray] = []
    rho: list[tuple[int, float]] = []
    for d in range(7, P - MIN_PLACEBO_PRE_DAYS + 1, PLACEBO_STEP_DAYS):
        origins = np.arange(MIN_PLACEBO_PRE_DAYS, P - d + 1, PLACEBO_STEP_DAYS)
        x = np.log(np.maximum(C[:, origins] / origins, 1e-9))  # (G, n_origins)
        y = np.log(np.maximum((C[:, origins + d] - C[:, origins]) / d, 1e-9))
        xc = x - x.mean(axis=0)
        yc = y - y.mean(axis=0)
        sxx = (xc**2).sum(axis=0)
        syy = (yc**2).sum(axis=0)
        sxy = (xc * yc).sum(axis=0)
        r2 = np.where(sxx * syy > 0, sxy**2 / np.maximum(sxx * syy, 1e-300), 0.0)
        pts_d.append(np.full(origins.size, float(d)))
        pts_t.append(origins.astype(float))
        pts_v.append(np.maximum(syy * (1 - r2) / (G - 2), 1e-12))
        rho.append((d, float(np.mean(np.sqrt(r2) * np.sign(sxy)))))
    var = np.concatenate(pts_v)
    coef = _fit_variance(np.concatenate(pts_d), np.concatenate(pts_t), var)
    return NoiseModel(coef, P, int(var.size), tuple(rho))  # type: ignore[arg-type]


def dow_trend_matrix(first_weekday: int, n: int, period_days: int) -> np.ndarray:
    """Regressors of the switchback readout besides the on/off flag: intercept, linear trend,
    and day-of-week dummies when periods are single days (longer periods average the week)."""
    t = np.arange(n, dtype=float)
    cols = [np.ones(n), (t - t.mean()) / max(n, 1)]
    if period_days == 1:
        dow = (first_weekday + np.arange(n)) % 7
        cols += [(dow == k).astype(float) for k in range(1, 7)]
    return np.column_stack(cols)


def switchback_noise_sd(
    pre_daily: np.ndarray, first_weekday: int, periods: int, period_days: int
) -> float:
    """Residual sd of log period sales after the readout's trend and day-of-week terms, pooled
    over placebo windows as long as the test (the whole pre-period when the test is longer).

    `pre_daily` is total daily sales; `first_weekday` the weekday of its first day (Monday 0)."""
    y = np.asarray(pre_daily, dtype=float)
    n_blocks = y.size // period_days
    if n_blocks < 10:
        raise InsufficientHistoryError(
            f"the pre-period holds {n_blocks} periods of {period_days} day(s); switchback power "
            "needs at least 10",
            periods=n_blocks,
        )
    # Blocks end where the pre-period ends, next to the test.
    skip = y.size - n_blocks * period_days
    blocks = np.log(np.maximum(y[skip:].reshape(n_blocks, period_days).mean(axis=1), 1e-9))
    weekday0 = (first_weekday + skip) % 7
    k = dow_trend_matrix(0, 1, period_days).shape[1]
    n = min(max(periods, k + 4), n_blocks)
    ss, df = 0.0, 0
    for s in range(0, n_blocks - n + 1, max(1, 7 // period_days)):
        X = dow_trend_matrix((weekday0 + s * period_days) % 7, n, period_days)
        yy = blocks[s : s + n]
        beta, *_ = np.linalg.lstsq(X, yy, rcond=None)
        r = yy - X @ beta
        ss += float(r @ r)
        df += n - int(np.linalg.matrix_rank(X))
    return float(np.sqrt(ss / max(df, 1)))
