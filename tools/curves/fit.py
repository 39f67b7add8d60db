"""Saturating response curves per line item, fitted from a data view with partial pooling.

Each line item (retailer x placement x SKU) earns r(s) = a (1 - exp(-s / b)) incremental
revenue per day at daily spend s, at full price and in stock. A clean-room cell reports the
spend S and attributed sales Y of one line over a period of D days, so

    E[Y] = a * M * phi(S / (D b)),     M = in-stock days + beta * in-stock discount days,

where beta is the promotion lift per unit of discount (the full view estimates it; the
clean-room-only view sees neither promotions nor stock, so M = D and `a` absorbs the
history's average) and phi is the saturation of a period whose daily spend varies around its
mean: for a single day phi(x) = 1 - exp(-x); over several days with a gamma-distributed
daily spend of coefficient of variation kappa, phi(x) = 1 - (1 + kappa^2 x)^(-1 / kappa^2).

Noise: Y has a gamma likelihood with coefficient of variation cv / sqrt(D) (attribution and
day-to-day noise), widened by the variance of any privacy noise.

Per line the parameters are alpha = log(a / b), the first dollar's iROAS, and
ell = log(b / L), the saturation scale relative to the line's mean daily spend L. Given ell,
log a has a closed-form gamma profile, so each line's posterior is computed exactly on a
grid of ell, with log a normal given ell.

Lines borrow strength in two stages (empirical Bayes). A line seen only as a history total
(most lines, where k-anonymity suppresses its weeks) pins its curve's height at the spend it
had but fits any curvature, so (1) the brand's prior on ell, N(m + slope * push, tau^2), is
learned from the lines seen over several periods only, regularized toward b ~ L
(SATURATION_PRIOR); push is how much harder a line is funded than its retailer x placement
and its SKU predict, since a line pushed harder sits further up its curve; then
(2) alpha ~ N(m_alpha[g] + v[sku], tau_alpha^2), with g the retailer x placement and v a SKU
effect shared by the SKU's line items, is learned from all lines by expectation-maximization.
A thin line thus takes its first-dollar iROAS from its SKU and placement, and its total then
says how saturated it is.

A line whose history total the clean room suppressed (the view marks it `suppressed`) has no
data of its own: it gets a prior-only curve from the pooled priors (`prior_only_curves`), with
its spend level drawn below what came back, so its curve is wide but not optimistic, and the
optimizer and the experiment reserve can still fund it.

`fit_curves(view)` returns a `CurveFit`: point curves, posterior draws of (a, b), fit quality
per line, and `curve_set()` for the optimizer on the flight's scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats
from scipy.optimize import minimize
from scipy.special import logsumexp

from tools.curves.views import LINE_KEY, DataView
from tools.errors import RMNError
from tools.optimize import CurveSet

ELL_GRID = np.linspace(-3.0, 4.0, 71)
PROMO_LIFT_GRID = np.linspace(0.0, 4.0, 5)
# Below this many periods a line's own shape is barely identified: it leans on the pooling.
MIN_PERIODS = 4
# A line is fitted on daily cells when at least this many days survived k-anonymity,
# else on weekly cells when at least MIN_PERIODS weeks did, else on its history total.
MIN_DAYS = 14
DEFAULT_SPEND_CV = 0.6
# The full view holds SKUs at or above this flight stock-out risk at zero (predicted out of
# stock) and prices the risk into the expected revenue of the others.
OOS_THRESHOLD = 0.9
DEFAULT_NOISE_CV = 0.5
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


class CurveFitError(RMNError):
    kind = "curve_fit_error"


@dataclass(frozen=True, eq=False)
class Cells:
    """The cells a fit uses, one period kind per line, as arrays."""

    line: np.ndarray
    spend: np.ndarray
    sales: np.ndarray
    days: np.ndarray
    stock_days: np.ndarray
    promo_days: np.ndarray
    sales_var: np.ndarray
    multi_day: np.ndarray
    period: np.ndarray  # per line: "day", "week" or "total"
    n_periods: np.ndarray  # per line
    level: np.ndarray  # per line: mean daily spend over the history (L)


def select_cells(view: DataView, min_days: int = MIN_DAYS, min_weeks: int = MIN_PERIODS) -> Cells:
    """Pick each line's finest period with enough surviving cells. One kind per line: mixing
    a line's weeks with its total would count the same spend twice."""
    c = view.cells
    n = len(view.lines)
    counts = c.groupby(["line", "period"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=np.arange(n), columns=["day", "week", "total"], fill_value=0)
    period = np.where(
        counts["day"].to_numpy() >= min_days,
        "day",
        np.where(counts["week"].to_numpy() >= min_weeks, "week", "total"),
    )
    if (counts["total"].to_numpy() == 0).any():
        raise CurveFitError("every line item needs its history total in the view")
    chosen = c[c["period"].to_numpy() == period[c["line"].to_numpy()]]
    chosen = chosen[chosen["stock_days"] > 0]
    # A line out of stock in every chosen period still has a total: take it at face value.
    lost = np.setdiff1d(np.arange(n), chosen["line"].to_numpy())
    if lost.size:
        period[lost] = "total"
        rescue = c[(c["period"] == "total") & c["line"].isin(lost)].copy()
        rescue["stock_days"] = rescue["days"].astype(float)
        chosen = pd.concat([chosen, rescue]).sort_values(["line", "start"], kind="stable")
    n_periods = np.bincount(chosen["line"], minlength=n)
    lines = view.lines
    return Cells(
        line=chosen["line"].to_numpy(np.int64),
        spend=chosen["spend"].to_numpy(float),
        sales=chosen["sales"].to_numpy(float),
        days=chosen["days"].to_numpy(float),
        stock_days=chosen["stock_days"].to_numpy(float),
        promo_days=chosen["promo_days"].to_numpy(float),
        sales_var=chosen["sales_var"].to_numpy(float),
        multi_day=chosen["days"].to_numpy() > 1,
        period=period,
        n_periods=n_periods,
        level=lines["spend"].to_numpy(float) / lines["days"].to_numpy(float),
    )


def spend_cv(view: DataView, min_coverage: float = 0.9) -> float | None:
    """Day-to-day coefficient of variation of a line's spend, from the brand's daily spend per
    retailer x placement: with independent lines, the variance of the group's daily total is
    kappa^2 times the sum of its lines' squared mean daily spends. Groups with more than
    1 - `min_coverage` of their days suppressed are skipped (the survivors are the busy days).
    None when no group qualifies."""
    pacing = view.pacing
    if pacing.empty:
        return None
    lines = view.lines.assign(level=view.lines["spend"] / view.lines["days"])
    sq = lines.groupby(["retailer_id", "placement"])["level"].apply(lambda s: float((s**2).sum()))
    days = {a.retailer: (a.history_end - a.history_start).days + 1 for a in view.access}
    num = den = 0.0
    for (retailer, placement), grp in pacing.groupby(["retailer_id", "placement"]):
        spend = grp["spend"].to_numpy(float)
        if (retailer, placement) not in sq.index or spend.size < min_coverage * days[retailer]:
            continue
        num += float(((spend - spend.mean()) ** 2).sum())
        den += (spend.size - 1) * float(sq[(retailer, placement)])
    return float(np.sqrt(num / den)) if den > 0 else None


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


def _noise_cv(cells: Cells, a: np.ndarray, b: np.ndarray, kappa: float, beta: float) -> float:
    """Pooled day-equivalent coefficient of variation of the cells around the fitted curves,
    from lines with at least MIN_PERIODS noise-free cells."""
    mu = _predict(cells, a, b, kappa, beta)
    keep = (cells.n_periods[cells.line] >= MIN_PERIODS) & (cells.sales_var == 0) & (mu > 0)
    if keep.sum() < 20:
        return DEFAULT_NOISE_CV
    resid = cells.days[keep] * (cells.sales[keep] / mu[keep] - 1.0) ** 2
    dof = keep.sum() - 2 * np.unique(cells.line[keep]).size
    return float(np.sqrt(resid.sum() / max(dof, 1)))


def _predict(cells: Cells, a: np.ndarray, b: np.ndarray, kappa: float, beta: float) -> np.ndarray:
    x = cells.spend / cells.days / b[cells.line]
    mult = cells.stock_days + beta * cells.promo_days
    return a[cells.line] * mult * _phi(x, cells.multi_day, kappa)


@dataclass(frozen=True, eq=False)
class CurveFit:
    """Fitted daily curves per line item of `view.lines`, with posterior draws.

    `lines` adds to the view's line keys: a, b (per day, full price, in stock, no promotion in
    the full view; the clean-room-only view's `a` carries the history's average promotion and
    stock), 90% intervals of a and b, the period used, n_periods, r2, rmse (USD per period) and
    rel_rmse (over the mean period's sales; all three None with fewer than three periods),
    too_little_data (fewer than MIN_PERIODS periods: the curve's shape comes from the pooled
    prior) and prior_only (no history at all: the whole curve comes from the pooled prior,
    period "none"). Draws are per day, paired: draw d of a goes with draw d of b."""

    view: DataView
    lines: pd.DataFrame
    a_draws: np.ndarray  # (draws, lines), per day
    b_draws: np.ndarray
    spend_cv: float
    noise_cv: float
    promo_lift: float
    pooled: bool
    hyper: dict[str, Any] = field(default_factory=dict)

    def flight_scale(self) -> tuple[np.ndarray, np.ndarray]:
        """Per line: full-price response days the flight earns (promotions lift them) and the
        margin rate of its incremental revenue, or (flight days, nan) without economics."""
        f = float(self.view.flight_days)
        econ = self.view.economics
        n = len(self.lines)
        if econ is None:
            return np.full(n, f), np.full(n, np.nan)
        rev_days = f + self.promo_lift * econ.promo_days
        margin = (econ.margin_days + self.promo_lift * econ.promo_margin_days) / rev_days
        return rev_days, margin

    def curve_set(
        self,
        *,
        margin_rate: float | None = None,
        oos_threshold: float | None = OOS_THRESHOLD,
        draws: bool = True,
    ) -> CurveSet:
        """Curves on the flight's scale for the optimizer: flight spend x over F days earns
        F' * a * (1 - exp(-x / (F * b))) * (1 - p_oos), with F' the flight's response days.

        The full view scales by the stock-out probability (spend on a SKU that sells out
        earns nothing once it has: the truth's expected value), zeroes lines at or above
        `oos_threshold` (None: never) and weights revenue by each line's flight margin rate
        (promotion days sell at a discount; a negative rate counts as zero). The clean-room-
        only view assumes every SKU in stock and one brand-level `margin_rate` (None: 1, so
        the margin objective plans revenue)."""
        f = float(self.view.flight_days)
        rev_days, margin = self.flight_scale()
        econ = self.view.economics
        n = len(self.lines)
        if econ is None:
            in_stock = np.ones(n)
            margin = np.full(n, 1.0 if margin_rate is None else margin_rate)
            oos = np.zeros(n, dtype=bool)
        else:
            in_stock = 1.0 - econ.oos_prob
            oos = (
                econ.oos_prob >= oos_threshold
                if oos_threshold is not None
                else np.zeros(n, dtype=bool)
            )
        scale = rev_days * in_stock
        live = scale > 0
        scale = np.where(live, scale, 1e-9 * f)
        a = self.lines["a"].to_numpy() * scale
        extra: dict[str, np.ndarray] = {}
        if draws:
            extra = {"a_draws": self.a_draws * scale, "b_draws": self.b_draws * f}
        return CurveSet.from_arrays(
            retailer_id=self.lines["retailer_id"].to_numpy(),
            placement=self.lines["placement"].to_numpy(),
            gtin=self.lines["gtin"].to_numpy(),
            a=a,
            b=self.lines["b"].to_numpy() * f,
            margin=np.clip(np.nan_to_num(margin, nan=0.0), 0.0, 1.0),
            out_of_stock=oos | ~live,
            prior_only=self.lines["prior_only"].to_numpy(dtype=bool),
            **extra,
        )


def fit_curves(
    view: DataView,
    *,
    draws: int = 200,
    seed: int = 0,
    pooling: bool = True,
    spend_variation: float | None = None,
    promo_lift: float | None = None,
    saturation_prior: tuple[float, float] = SATURATION_PRIOR,
    min_days: int = MIN_DAYS,
) -> CurveFit:
    """Fit every line item of the view; see the module docstring.

    `spend_variation`: day-to-day coefficient of variation of a line's spend (kappa); None
    measures it from the view's daily pacing (DEFAULT_SPEND_CV where there is none).
    `promo_lift`: response lift per unit of discount (beta); None estimates it by maximum
    marginal likelihood when the view knows promotions (the clean-room-only view uses 0).
    `saturation_prior`: (mean, sd) of the brand's mean log(b / spend level), the anchor for
    lines that show no curvature. `pooling=False` fits each line alone under weak priors.
    Lines the view marks `suppressed` get prior-only curves (`prior_only_curves`)."""
    if len(view.lines) == 0:
        raise CurveFitError("the view has no line items to fit")
    suppressed = _suppressed(view)
    observed = np.flatnonzero(~suppressed)
    if observed.size == 0:
        raise CurveFitError(
            "no line item in the view has a history total (all were suppressed): there is "
            "no history to fit curves or a prior from"
        )
    seen_view = _observed_view(view, observed) if suppressed.any() else view
    cells = select_cells(seen_view, min_days=min_days)
    log_level = np.log(cells.level)
    n = len(seen_view.lines)
    group_of = seen_view.lines["retailer_id"] + "/" + seen_view.lines["placement"]
    group, group_labels = pd.factorize(group_of)
    sku, sku_labels = pd.factorize(seen_view.lines["gtin"])
    shaped = cells.n_periods >= MIN_PERIODS
    push = spend_residual(log_level, group, sku)

    measured = spend_cv(seen_view) if spend_variation is None else spend_variation
    kappa = DEFAULT_SPEND_CV if measured is None else float(measured)
    knows_promos = view.kind == "full" and bool((cells.promo_days > 0).any())
    if promo_lift is not None:
        betas = np.array([float(promo_lift)])
    else:
        betas = PROMO_LIFT_GRID if knows_promos else np.zeros(1)
    warm: dict[str, AlphaPrior] = {}
    learned: dict[str, Any] = {}

    def run(beta: float, cv: float) -> tuple[Posterior, dict[str, float]]:
        lik = likelihood(cells, kappa, beta, cv)
        if not pooling:
            w = WEAK_PRIOR
            post = posterior(
                lik, log_level, np.full(n, w["m_alpha"]), w["tau_alpha"], w["m_ell"], w["tau_ell"]
            )
            return post, {"tau_alpha": w["tau_alpha"], "m_ell": w["m_ell"], "tau_ell": w["tau_ell"]}
        sat = learn_saturation(lik, log_level, push, shaped, saturation_prior)
        prior, post = pool_alpha(
            lik, log_level, group, sku, sat.center(push), sat.spread, warm.get("alpha")
        )
        warm["alpha"] = prior
        learned.update(saturation=sat, alpha=prior)
        return post, {
            "tau_alpha": prior.tau_alpha,
            "tau_sku": prior.tau_sku,
            "m_ell": sat.mean,
            "ell_slope": sat.slope,
            "tau_ell": sat.spread,
        }

    def best_beta(candidates: np.ndarray, cv: float) -> float:
        scores = [float(run(float(b), cv)[0].log_evidence.sum()) for b in candidates]
        return float(candidates[int(np.argmax(scores))])

    # Noise level and promotion lift depend on each other: a coarse search of the lift at
    # the default noise, the noise at that lift, then a finer search around it.
    beta = best_beta(betas, DEFAULT_NOISE_CV)
    post, _ = run(beta, DEFAULT_NOISE_CV)
    mo = post.moments(log_level)
    cv = _noise_cv(cells, np.exp(mo["log_a"]), cells.level * np.exp(mo["ell"]), kappa, beta)
    if betas.size > 1:
        step = float(betas[1] - betas[0])
        fine = beta + step * np.array([-0.5, -0.25, 0.0, 0.25, 0.5])
        beta = best_beta(fine[(fine >= betas[0]) & (fine <= betas[-1])], cv)
    post, hyper = run(beta, cv)
    mo = post.moments(log_level)
    a_hat = np.exp(mo["log_a"])
    b_hat = cells.level * np.exp(mo["ell"])

    a_seen, b_seen = _draws(post, cells.level, draws, seed)
    lines = view.lines[LINE_KEY].copy()
    total = len(view.lines)
    a_col, b_col = np.empty(total), np.empty(total)
    a_col[observed], b_col[observed] = a_hat, b_hat
    a_draws, b_draws = np.empty((draws, total)), np.empty((draws, total))
    a_draws[:, observed], b_draws[:, observed] = a_seen, b_seen
    period = np.full(total, "none", dtype=object)
    period[observed] = cells.period
    n_periods = np.zeros(total, dtype=np.int64)
    n_periods[observed] = cells.n_periods
    if suppressed.any():
        pooled = PooledPrior(
            log_level=log_level,
            group=group,
            group_labels=np.asarray(group_labels, dtype=str),
            sku=sku,
            sku_labels=np.asarray(sku_labels, dtype=str),
            saturation=learned.get("saturation"),
            alpha=learned.get("alpha"),
        )
        hidden = view.lines.iloc[np.flatnonzero(suppressed)]
        prior = prior_only_curves(pooled, hidden, draws, seed)
        rows = np.flatnonzero(suppressed)
        a_col[rows], b_col[rows] = prior.a, prior.b
        a_draws[:, rows], b_draws[:, rows] = prior.a_draws, prior.b_draws
    lines["a"] = a_col
    lines["b"] = b_col
    lines["a_low"], lines["a_high"] = np.percentile(a_draws, [5, 95], axis=0)
    lines["b_low"], lines["b_high"] = np.percentile(b_draws, [5, 95], axis=0)
    lines["period"] = period
    lines["n_periods"] = n_periods
    quality = _quality(cells, a_hat, b_hat, kappa, beta)
    for col in quality.columns:
        values = np.full(total, None, dtype=object)
        values[observed] = quality[col].to_numpy()
        lines[col] = values
    lines["too_little_data"] = n_periods < MIN_PERIODS
    lines["prior_only"] = suppressed
    return CurveFit(
        view=view,
        lines=lines,
        a_draws=a_draws,
        b_draws=b_draws,
        spend_cv=kappa,
        noise_cv=cv,
        promo_lift=beta,
        pooled=pooling,
        hyper=hyper | {"spend_cv_measured": measured is not None},
    )


def _suppressed(view: DataView) -> np.ndarray:
    if "suppressed" not in view.lines.columns:
        return np.zeros(len(view.lines), dtype=bool)
    return view.lines["suppressed"].fillna(False).to_numpy(dtype=bool)


def _observed_view(view: DataView, observed: np.ndarray) -> DataView:
    """The view restricted to lines with a history, cells renumbered."""
    renumber = np.full(len(view.lines), -1)
    renumber[observed] = np.arange(observed.size)
    cells = view.cells.copy()
    cells["line"] = renumber[cells["line"].to_numpy()]
    return DataView(
        kind=view.kind,
        brand=view.brand,
        flight_days=view.flight_days,
        lines=view.lines.iloc[observed].reset_index(drop=True),
        cells=cells[cells["line"] >= 0].reset_index(drop=True),
        access=view.access,
        pacing=view.pacing,
        flight_start=view.flight_start,
        notes=view.notes,
    )


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


# How sharply suppression cuts off a line's spend level around the smallest level that came
# back (log scale): spend per event differs between lines, so the cut-off is soft.
SUPPRESSION_SOFTNESS = 0.5
_LEVEL_GRID = np.linspace(-4.0, 4.0, 161)


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

    # Smallest level that came back in the line's group, else at its retailer, else anywhere.
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
    mean_level = (w * grid).sum(axis=1)

    if pooled.saturation is not None and pooled.alpha is not None:
        sat, prior = pooled.saturation, pooled.alpha
        m_ell, slope, tau_ell = sat.mean, sat.slope, sat.spread
        groups_known = gj >= 0
        m_group = np.where(groups_known, prior.m_group[np.maximum(gj, 0)], prior.m_group.mean())
        var_group = np.where(groups_known, 0.0, float(np.var(prior.m_group)))
        v = np.where(sj >= 0, prior.v_sku[np.maximum(sj, 0)], 0.0)
        var_sku = np.where(sj >= 0, 0.0, prior.tau_sku**2)
        m_alpha = m_group + v
        sd_alpha = np.sqrt(prior.tau_alpha**2 + var_group + var_sku)
    else:
        weak = WEAK_PRIOR
        m_ell, slope, tau_ell = weak["m_ell"], 0.0, weak["tau_ell"]
        m_alpha = np.full(m, weak["m_alpha"])
        sd_alpha = np.full(m, weak["tau_alpha"])

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


def _draws(
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


def _quality(cells: Cells, a: np.ndarray, b: np.ndarray, kappa: float, beta: float) -> pd.DataFrame:
    """Per line, over its periods: r2, rmse (USD per period) and rmse relative to the mean
    period's sales; None with fewer than three periods."""
    df = pd.DataFrame(
        {"line": cells.line, "y": cells.sales, "mu": _predict(cells, a, b, kappa, beta)}
    )
    df["res2"] = (df["y"] - df["mu"]) ** 2
    g = df.groupby("line")
    n = g.size()
    rmse = np.sqrt(g["res2"].mean())
    ss_tot = g["y"].var(ddof=0) * n
    out = pd.DataFrame(
        {
            "r2": 1.0 - g["res2"].sum() / ss_tot.where(ss_tot > 0),
            "rmse": rmse,
            "rel_rmse": rmse / g["y"].mean().where(g["y"].mean() > 0),
        }
    ).reindex(np.arange(a.shape[0]))
    out[n.reindex(out.index, fill_value=0).to_numpy() < 3] = np.nan
    return out.astype(object).where(out.notna(), None)
