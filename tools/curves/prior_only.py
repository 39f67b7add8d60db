"""Curves for line items with no history of their own (the clean room suppressed their
totals), drawn from what the lines with a history teach: their spend levels by retailer x
placement and SKU, and the pooled saturation and first-dollar iROAS priors. Such a curve is
wide but not optimistic, so the optimizer and the experiment reserve can still fund it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from tools.curves.pooling import WEAK_PRIOR, AlphaPrior, Saturation, spend_effects

# How sharply suppression cuts off a line's spend level around the smallest level that came
# back (log scale): spend per event differs between lines, so the cut-off is soft.
SUPPRESSION_SOFTNESS = 0.5
_LEVEL_GRID = np.linspace(-4.0, 4.0, 161)


@dataclass(frozen=True, eq=False)
class PooledPrior:
    """What the lines with a history teach about a line without one: their log spend levels
    by retailer x placement group and SKU, and the learned priors (None without pooling)."""

    log_level: np.ndarray
    group: np.ndarray
    group_labels: np.ndarray  # "retailer/placement" per group code
    sku: np.ndarray
    sku_labels: np.ndarray  # GTIN per SKU code
    saturation: Saturation | None
    alpha: AlphaPrior | None


@dataclass(frozen=True, eq=False)
class PriorCurves:
    a: np.ndarray  # per day, exp of the prior mean of log a
    b: np.ndarray
    a_draws: np.ndarray  # (draws, lines), per day
    b_draws: np.ndarray


@dataclass(frozen=True, eq=False)
class _LevelPrior:
    """Per hidden line: where its group and SKU sit among the pooled ones (-1: unseen), the
    two-way prediction of its log spend level and that prediction's sd, and the level's
    distribution on a grid (values and weights) after the suppression cut-off."""

    gj: np.ndarray
    sj: np.ndarray
    pred: np.ndarray
    sd: np.ndarray
    grid: np.ndarray
    weights: np.ndarray


def prior_only_curves(
    pooled: PooledPrior, lines: pd.DataFrame, draws: int, seed: int
) -> PriorCurves:
    """Curves for lines with no history of their own, from the pooled prior.

    A line's history total is suppressed when it had too few events, that is when it spent
    little, so its daily spend level L is drawn from the two-way model of the lines that came
    back (`spend_effects`: retailer x placement and SKU effects, their residual spread) times
    a soft cut-off below the smallest level that came back at its retailer x placement (else
    at its retailer). Then ell = log(b / L) from the saturation prior at the line's push,
    and alpha = log(a / b) from its retailer x placement mean plus its SKU effect. A group or
    SKU no line came back for takes the brand's average effect, with the effects' spread
    added to the uncertainty."""
    rng = np.random.default_rng([seed, 1])
    m = len(lines)
    lv = _level_prior(pooled, lines)
    w, grid, pred, sd = lv.weights, lv.grid, lv.pred, lv.sd
    mean_level = (w * grid).sum(axis=1)
    m_ell, slope, tau_ell, m_alpha, sd_alpha = _shape_prior(pooled, lv.gj, lv.sj)

    mean_log_b = mean_level + m_ell + slope * (mean_level - pred)
    mean_log_a = mean_log_b + m_alpha

    cdf = np.cumsum(w, axis=1)
    u = rng.random((draws, m))
    idx = np.minimum((cdf[None, :, :] < u[:, :, None]).sum(axis=2), _LEVEL_GRID.size - 1)
    step = float(_LEVEL_GRID[1] - _LEVEL_GRID[0])
    level = grid[np.arange(m)[None, :], idx] + sd * step * rng.uniform(-0.5, 0.5, (draws, m))
    ell = m_ell + slope * (level - pred) + tau_ell * rng.standard_normal((draws, m))
    log_b = level + ell
    log_a = log_b + m_alpha + sd_alpha * rng.standard_normal((draws, m))
    return PriorCurves(
        a=np.exp(mean_log_a), b=np.exp(mean_log_b), a_draws=np.exp(log_a), b_draws=np.exp(log_b)
    )


def _level_prior(pooled: PooledPrior, lines: pd.DataFrame) -> _LevelPrior:
    """The hidden lines' log spend levels: the two-way prediction from their group and SKU,
    cut off softly below the smallest level that came back in the line's group, else at its
    retailer, else anywhere."""
    m = len(lines)
    g_eff, s_eff = spend_effects(pooled.log_level, pooled.group, pooled.sku)
    resid = pooled.log_level - g_eff[pooled.group] - s_eff[pooled.sku]
    sd_level = float(np.clip(np.sqrt(np.mean(resid**2)), 0.1, 2.0))
    g_count = np.bincount(pooled.group, minlength=g_eff.size)
    g_mean = float(np.average(g_eff, weights=g_count))
    g_var = float(np.average((g_eff - g_mean) ** 2, weights=g_count))
    s_var = float(np.mean(s_eff**2))

    g_pos = {label: i for i, label in enumerate(pooled.group_labels.tolist())}
    s_pos = {label: i for i, label in enumerate(pooled.sku_labels.tolist())}
    labels = (lines["retailer_id"] + "/" + lines["placement"]).tolist()
    gj = np.array([g_pos.get(label, -1) for label in labels])
    sj = np.array([s_pos.get(g, -1) for g in lines["gtin"].astype(str).tolist()])
    pred = np.where(gj >= 0, g_eff[np.maximum(gj, 0)], g_mean) + np.where(
        sj >= 0, s_eff[np.maximum(sj, 0)], 0.0
    )
    sd = np.sqrt(sd_level**2 + np.where(gj >= 0, 0.0, g_var) + np.where(sj >= 0, 0.0, s_var))

    seen_groups = pooled.group_labels[pooled.group]
    seen_retailers = np.array([label.split("/")[0] for label in seen_groups])
    floor = np.empty(m)
    for j, label in enumerate(labels):
        at = pooled.log_level[seen_groups == label]
        if at.size == 0:
            at = pooled.log_level[seen_retailers == label.split("/")[0]]
        floor[j] = float(at.min()) if at.size else float(pooled.log_level.min())

    grid = pred[:, None] + sd[:, None] * _LEVEL_GRID[None, :]
    log_w = -0.5 * _LEVEL_GRID[None, :] ** 2 + stats.norm.logcdf(
        (floor[:, None] - grid) / SUPPRESSION_SOFTNESS
    )
    w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return _LevelPrior(gj=gj, sj=sj, pred=pred, sd=sd, grid=grid, weights=w)


def _shape_prior(
    pooled: PooledPrior, gj: np.ndarray, sj: np.ndarray
) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    """(m_ell, slope, tau_ell, m_alpha, sd_alpha) per hidden line: the learned saturation
    prior and its group's first-dollar iROAS mean plus its SKU effect (the brand's averages,
    with their spread added, where no line came back), or the weak priors without pooling."""
    if pooled.saturation is None or pooled.alpha is None:
        weak = WEAK_PRIOR
        m = gj.size
        return (
            weak["m_ell"],
            0.0,
            weak["tau_ell"],
            np.full(m, weak["m_alpha"]),
            np.full(m, weak["tau_alpha"]),
        )
    sat, prior = pooled.saturation, pooled.alpha
    groups_known = gj >= 0
    m_group = np.where(groups_known, prior.m_group[np.maximum(gj, 0)], prior.m_group.mean())
    var_group = np.where(groups_known, 0.0, float(np.var(prior.m_group)))
    v = np.where(sj >= 0, prior.v_sku[np.maximum(sj, 0)], 0.0)
    var_sku = np.where(sj >= 0, 0.0, prior.tau_sku**2)
    sd_alpha = np.sqrt(prior.tau_alpha**2 + var_group + var_sku)
    return sat.mean, sat.slope, sat.spread, m_group + v, sd_alpha
