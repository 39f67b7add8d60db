"""The curve model of one brand's line items (see `tools.curves.fit`'s docstring): the gamma
likelihood of each line's cells on a grid of ell = log(b / L) with log a profiled out, the
exact grid posterior under normal priors, the pooled noise level, and joint posterior draws
of (a, b)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.special import logsumexp

from tools.curves.cells import MIN_PERIODS, Cells

ELL_GRID = np.linspace(-3.0, 4.0, 71)
DEFAULT_NOISE_CV = 0.5


@dataclass(frozen=True, eq=False)
class Likelihood:
    """Per line and grid point of ell: the profile estimate of log a, the profile
    log-likelihood, and (per line) the precision of log a."""

    log_a_hat: np.ndarray  # (lines, grid)
    profile: np.ndarray  # (lines, grid)
    precision: np.ndarray  # (lines,)

    def subset(self, rows: np.ndarray) -> Likelihood:
        return Likelihood(self.log_a_hat[rows], self.profile[rows], self.precision[rows])


def _phi(x: np.ndarray, multi_day: np.ndarray, kappa: float) -> np.ndarray:
    """Saturation of a period at mean daily spend x (in units of b)."""
    single = -np.expm1(-x)
    if kappa <= 0:
        return single
    k2 = kappa**2
    return np.where(multi_day, -np.expm1(-np.log1p(k2 * x) / k2), single)


def likelihood(cells: Cells, kappa: float, beta: float, cv: float) -> Likelihood:
    """Gamma likelihood of every line's cells on the ell grid, with log a profiled out: for a
    mean a * g_c and shapes k_c, the maximum is a = sum(k_c y_c / g_c) / sum(k_c) and the
    curvature in log a is sum(k_c)."""
    n = cells.level.shape[0]
    b = cells.level[cells.line, None] * np.exp(ELL_GRID)[None, :]
    x = (cells.spend / cells.days)[:, None] / b
    mult = cells.stock_days + beta * cells.promo_days
    g = np.maximum(mult[:, None] * _phi(x, cells.multi_day[:, None], kappa), 1e-300)
    y = np.maximum(cells.sales, 1e-9)
    shape = 1.0 / (cv**2 / cells.days + cells.sales_var / y**2)
    rows = sparse.csr_matrix(
        (shape, (cells.line, np.arange(cells.line.size))), shape=(n, cells.line.size)
    )
    precision = np.asarray(rows.sum(axis=1)).ravel()
    ratio = rows @ (cells.sales[:, None] / g)
    log_g = rows @ np.log(g)
    log_a_hat = np.log(np.maximum(ratio, 1e-300)) - np.log(precision)[:, None]
    profile = -precision[:, None] * (log_a_hat + 1.0) - log_g
    return Likelihood(log_a_hat, profile, precision)


@dataclass(frozen=True, eq=False)
class Posterior:
    weights: np.ndarray  # (lines, grid): posterior of ell
    log_a_mean: np.ndarray  # (lines, grid): mean of log a given ell
    log_a_var: np.ndarray  # (lines,): variance of log a given ell
    log_evidence: np.ndarray  # (lines,)
    log_joint: np.ndarray  # (lines, grid): unnormalized log posterior of ell

    def moments(self, log_level: np.ndarray) -> dict[str, np.ndarray]:
        w = self.weights
        ell = w @ ELL_GRID
        alpha_g = self.log_a_mean - log_level[:, None] - ELL_GRID[None, :]
        alpha = (w * alpha_g).sum(axis=1)
        return {
            "ell": ell,
            "ell_var": np.maximum(w @ ELL_GRID**2 - ell**2, 0.0),
            "alpha": alpha,
            "alpha_var": np.maximum(self.log_a_var + (w * alpha_g**2).sum(axis=1) - alpha**2, 0),
            "log_a": (w * self.log_a_mean).sum(axis=1),
        }


def posterior(
    lik: Likelihood,
    log_level: np.ndarray,
    m_alpha: np.ndarray,
    tau_alpha: float,
    m_ell: np.ndarray | float,
    tau_ell: np.ndarray | float,
) -> Posterior:
    """Exact grid posterior of ell under alpha ~ N(m_alpha, tau_alpha^2) and
    ell ~ N(m_ell, tau_ell^2); given ell, log a is the precision-weighted blend of its profile
    estimate and the prior."""
    prior_log_a = (m_alpha + log_level)[:, None] + ELL_GRID[None, :]
    k = lik.precision[:, None]
    var_sum = 1.0 / k + tau_alpha**2
    log_marg = -0.5 * ((lik.log_a_hat - prior_log_a) ** 2 / var_sum + np.log(var_sum))
    m_ell = np.broadcast_to(np.asarray(m_ell, dtype=float), log_level.shape)[:, None]
    tau = np.broadcast_to(np.asarray(tau_ell, dtype=float), log_level.shape)[:, None]
    log_prior = -0.5 * ((ELL_GRID[None, :] - m_ell) / tau) ** 2 - np.log(tau)
    log_joint = lik.profile + log_marg + log_prior
    evidence = logsumexp(log_joint, axis=1)
    post_prec = k + 1.0 / tau_alpha**2
    mean = (k * lik.log_a_hat + prior_log_a / tau_alpha**2) / post_prec
    weights = np.exp(log_joint - evidence[:, None])
    return Posterior(weights, mean, 1.0 / post_prec.ravel(), evidence, log_joint)


def noise_cv(cells: Cells, a: np.ndarray, b: np.ndarray, kappa: float, beta: float) -> float:
    """Pooled day-equivalent coefficient of variation of the cells around the fitted curves,
    from lines with at least MIN_PERIODS noise-free cells."""
    mu = predict(cells, a, b, kappa, beta)
    keep = (cells.n_periods[cells.line] >= MIN_PERIODS) & (cells.sales_var == 0) & (mu > 0)
    if keep.sum() < 20:
        return DEFAULT_NOISE_CV
    resid = cells.days[keep] * (cells.sales[keep] / mu[keep] - 1.0) ** 2
    dof = keep.sum() - 2 * np.unique(cells.line[keep]).size
    return float(np.sqrt(resid.sum() / max(dof, 1)))


def predict(cells: Cells, a: np.ndarray, b: np.ndarray, kappa: float, beta: float) -> np.ndarray:
    x = cells.spend / cells.days / b[cells.line]
    mult = cells.stock_days + beta * cells.promo_days
    return a[cells.line] * mult * _phi(x, cells.multi_day, kappa)


def posterior_draws(
    post: Posterior, level: np.ndarray, draws: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Joint posterior draws: ell from its grid posterior (uniform within the grid cell),
    then log a from its normal given ell."""
    rng = np.random.default_rng(seed)
    n = level.shape[0]
    cdf = np.cumsum(post.weights, axis=1)
    cdf /= cdf[:, -1:]
    u = rng.random((draws, n))
    idx = np.minimum((cdf[None, :, :] < u[:, :, None]).sum(axis=2), ELL_GRID.size - 1)
    step = ELL_GRID[1] - ELL_GRID[0]
    jitter = rng.uniform(-0.5, 0.5, (draws, n)) * step
    cols = np.arange(n)[None, :]
    log_a = (
        post.log_a_mean[cols, idx] + jitter + rng.normal(size=(draws, n)) * np.sqrt(post.log_a_var)
    )
    b = level[None, :] * np.exp(ELL_GRID[idx] + jitter)
    return np.exp(log_a), b
