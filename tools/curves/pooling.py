"""How a brand's line items borrow strength from each other (empirical Bayes, see
`tools.curves.fit`'s docstring): the saturation prior learned from the lines that show
curvature, and the first-dollar iROAS prior per retailer x placement and SKU learned from
all lines by expectation-maximization."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from tools.curves.model import ELL_GRID, Likelihood, Posterior, posterior

# Pseudo-lines that pull a retailer x placement mean toward the brand's mean.
GROUP_PRIOR_LINES = 2.0
# Prior on the brand's mean log(b / spend level): brands spend near the curve's scale, to
# within a factor of about 1.6 (one sd); and on the spread of that log ratio across lines.
SATURATION_PRIOR = (0.0, 0.5)
SATURATION_SPREAD, SATURATION_SPREAD_SD = 0.5, 0.5
SATURATION_SLOPE_SD = 1.0
_TAU_MIN, _TAU_MAX = 0.05, 2.0
# Without pooling each line stands alone under weakly informative priors.
WEAK_PRIOR = {"m_alpha": float(np.log(4.0)), "tau_alpha": 1.5, "m_ell": 0.0, "tau_ell": 1.5}


def spend_effects(
    log_level: np.ndarray, group: np.ndarray, sku: np.ndarray, sweeps: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Additive two-way fit of the log spend level: a retailer x placement effect and a SKU
    effect (shrunk by one pseudo-line toward zero, so a SKU seen on a single line does not
    absorb all of it)."""
    n_groups, n_skus = int(group.max()) + 1, int(sku.max()) + 1
    g_eff = np.zeros(n_groups)
    s_eff = np.zeros(n_skus)
    s_count = np.bincount(sku, minlength=n_skus)
    g_count = np.bincount(group, minlength=n_groups)
    for _ in range(sweeps):
        g_eff = np.bincount(group, weights=log_level - s_eff[sku], minlength=n_groups) / g_count
        s_eff = np.bincount(sku, weights=log_level - g_eff[group], minlength=n_skus) / (
            s_count + 1.0
        )
    return g_eff, s_eff


def spend_residual(
    log_level: np.ndarray, group: np.ndarray, sku: np.ndarray, sweeps: int = 20
) -> np.ndarray:
    """A line's log spend level beyond what its retailer x placement and its SKU predict
    (`spend_effects`): how hard the brand pushes this line compared with its peers."""
    g_eff, s_eff = spend_effects(log_level, group, sku, sweeps)
    return log_level - g_eff[group] - s_eff[sku]


@dataclass(frozen=True)
class Saturation:
    """The prior on ell per line: N(mean + slope * push, spread^2), push = `spend_residual`."""

    mean: float
    slope: float
    spread: float

    def center(self, push: np.ndarray) -> np.ndarray:
        return self.mean + self.slope * push


def learn_saturation(
    lik: Likelihood,
    log_level: np.ndarray,
    push: np.ndarray,
    shaped: np.ndarray,
    hyperprior: tuple[float, float] = SATURATION_PRIOR,
) -> Saturation:
    """The brand's prior on ell = log(b / L), from the lines that show curvature.

    A line seen only as a history total fits any ell (its first-dollar iROAS adjusts), so
    only lines seen over MIN_PERIODS periods or more take part, each with its first-dollar
    iROAS under a weak prior so that the answer does not lean on the other lines. Those are
    the lines that spend most, and a line pushed harder than its peers sits further up its
    curve, so the prior's center moves with the line's push (`spend_residual`); conditioning
    on spend also keeps the selection of well-observed lines by spend from biasing it.

    Mean, slope and spread maximize the shaped lines' marginal likelihood, regularized by
    mean ~ N(`hyperprior`) (spend levels sit near the curve's scale), slope ~
    N(0, SATURATION_SLOPE_SD^2) and log spread ~ N(log SATURATION_SPREAD,
    SATURATION_SPREAD_SD^2). With no shaped line it is the prior."""
    m0, s0 = hyperprior
    if not shaped.any():
        return Saturation(m0, 0.0, SATURATION_SPREAD)
    sub = lik.subset(shaped)
    n = int(shaped.sum())
    log_l, z = log_level[shaped], push[shaped]
    alpha0 = float(np.median(sub.log_a_hat[:, np.searchsorted(ELL_GRID, 0.0)] - log_l))
    flat = 10.0
    post = posterior(sub, log_l, np.full(n, alpha0), WEAK_PRIOR["tau_alpha"], 0.0, flat)
    log_like = post.log_joint + 0.5 * (ELL_GRID / flat) ** 2

    def objective(theta: np.ndarray) -> float:
        m, slope, log_tau = (float(t) for t in theta)
        center = m + slope * z
        log_prior = -0.5 * ((ELL_GRID[None, :] - center[:, None]) / np.exp(log_tau)) ** 2
        total = float(logsumexp(log_like + log_prior, axis=1).sum()) - n * log_tau
        total -= 0.5 * ((m - m0) / s0) ** 2 + 0.5 * (slope / SATURATION_SLOPE_SD) ** 2
        total -= 0.5 * ((log_tau - np.log(SATURATION_SPREAD)) / SATURATION_SPREAD_SD) ** 2
        return -total

    start = np.array([m0, 0.0, np.log(SATURATION_SPREAD)])
    opts = {"xatol": 1e-3, "fatol": 1e-3}
    m, slope, log_tau = minimize(objective, start, method="Nelder-Mead", options=opts).x
    return Saturation(float(m), float(slope), float(np.clip(np.exp(log_tau), _TAU_MIN, _TAU_MAX)))


@dataclass
class AlphaPrior:
    """The pooled prior on alpha: per retailer x placement means, SKU effects, spreads."""

    m_group: np.ndarray
    v_sku: np.ndarray
    tau_alpha: float
    tau_sku: float

    def mean(self, group: np.ndarray, sku: np.ndarray) -> np.ndarray:
        return self.m_group[group] + self.v_sku[sku]


def _group_means(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group mean, shrunk toward the overall mean by GROUP_PRIOR_LINES pseudo-lines."""
    total = np.bincount(group, weights=values, minlength=n_groups)
    count = np.bincount(group, minlength=n_groups)
    return (total + GROUP_PRIOR_LINES * float(values.mean())) / (count + GROUP_PRIOR_LINES)


def _clip_tau(variance: float) -> float:
    return float(np.clip(np.sqrt(max(variance, 0.0)), _TAU_MIN, _TAU_MAX))


def pool_alpha(
    lik: Likelihood,
    log_level: np.ndarray,
    group: np.ndarray,
    sku: np.ndarray,
    m_ell: np.ndarray,
    tau_ell: float,
    start: AlphaPrior | None = None,
    iterations: int = 100,
    tol: float = 1e-4,
) -> tuple[AlphaPrior, Posterior]:
    """Expectation-maximization of the prior on alpha given the saturation prior: posterior
    moments per line, then retailer x placement means (shrunk toward the brand mean), SKU
    effects (shrunk toward zero) and both spreads."""
    n_groups, n_skus = int(group.max()) + 1, int(sku.max()) + 1
    if start is None:
        near = np.clip(np.searchsorted(ELL_GRID, m_ell), 0, ELL_GRID.size - 1)
        naive = lik.log_a_hat[np.arange(near.size), near] - log_level
        start = AlphaPrior(_group_means(naive, group, n_groups), np.zeros(n_skus), 0.3, 0.2)
    h = start
    sku_count = np.bincount(sku, minlength=n_skus)
    for _ in range(iterations):
        post = posterior(lik, log_level, h.mean(group, sku), h.tau_alpha, m_ell, tau_ell)
        mo = post.moments(log_level)
        m_group = _group_means(mo["alpha"] - h.v_sku[sku], group, n_groups)
        resid = mo["alpha"] - m_group[group]
        shrink = h.tau_alpha**2 / h.tau_sku**2
        v_sku = np.bincount(sku, weights=resid, minlength=n_skus) / (sku_count + shrink)
        v_var = 1.0 / (sku_count / h.tau_alpha**2 + 1.0 / h.tau_sku**2)
        dev = mo["alpha_var"] + (mo["alpha"] - m_group[group] - v_sku[sku]) ** 2
        new = AlphaPrior(
            m_group,
            v_sku,
            _clip_tau(float(dev.mean())),
            _clip_tau(float(np.mean(v_sku**2 + v_var))),
        )
        change = max(
            float(np.abs(new.m_group - h.m_group).max()),
            float(np.abs(new.v_sku - h.v_sku).max()),
            abs(new.tau_alpha - h.tau_alpha),
            abs(new.tau_sku - h.tau_sku),
        )
        h = new
        if change < tol:
            break
    post = posterior(lik, log_level, h.mean(group, sku), h.tau_alpha, m_ell, tau_ell)
    return h, post
