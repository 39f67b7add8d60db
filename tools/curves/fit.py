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

from tools.curves.cells import MIN_DAYS, MIN_PERIODS, Cells, CurveFitError, select_cells, spend_cv
from tools.curves.model import (
    DEFAULT_NOISE_CV,
    Posterior,
    likelihood,
    noise_cv,
    posterior,
    posterior_draws,
    predict,
)
from tools.curves.pooling import (
    SATURATION_PRIOR,
    WEAK_PRIOR,
    AlphaPrior,
    Saturation,
    learn_saturation,
    pool_alpha,
    spend_residual,
)
from tools.curves.prior_only import PooledPrior, prior_only_curves
from tools.curves.views import LINE_KEY, DataView
from tools.optimize import CurveSet

PROMO_LIFT_GRID = np.linspace(0.0, 4.0, 5)
DEFAULT_SPEND_CV = 0.6
# The full view holds SKUs at or above this flight stock-out risk at zero (predicted out of
# stock) and prices the risk into the expected revenue of the others.
OOS_THRESHOLD = 0.9


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
    lines = _SeenLines.of(seen_view, min_days)
    measured = spend_cv(seen_view) if spend_variation is None else spend_variation
    kappa = DEFAULT_SPEND_CV if measured is None else float(measured)
    knows_promos = view.kind == "full" and bool((lines.cells.promo_days > 0).any())
    if promo_lift is not None:
        betas = np.array([float(promo_lift)])
    else:
        betas = PROMO_LIFT_GRID if knows_promos else np.zeros(1)
    fitter = _Fitter(lines, kappa, pooling, saturation_prior)
    beta, cv, post, hyper = fitter.search(betas)
    mo = post.moments(lines.log_level)
    a_hat = np.exp(mo["log_a"])
    b_hat = lines.cells.level * np.exp(mo["ell"])
    curves = _Curves.observed(
        len(view.lines),
        observed,
        (a_hat, b_hat),
        posterior_draws(post, lines.cells.level, draws, seed),
    )
    if suppressed.any():
        hidden = np.flatnonzero(suppressed)
        prior = prior_only_curves(fitter.pooled_prior(), view.lines.iloc[hidden], draws, seed)
        curves.fill(hidden, prior.a, prior.b, prior.a_draws, prior.b_draws)
    quality = _quality(lines.cells, a_hat, b_hat, kappa, beta)
    return CurveFit(
        view=view,
        lines=_line_table(view, lines.cells, curves, observed, suppressed, quality),
        a_draws=curves.a_draws,
        b_draws=curves.b_draws,
        spend_cv=kappa,
        noise_cv=cv,
        promo_lift=beta,
        pooled=pooling,
        hyper=hyper | {"spend_cv_measured": measured is not None},
    )


@dataclass(frozen=True, eq=False)
class _SeenLines:
    """The view's lines with a history, as the fit indexes them: their cells, log spend
    levels, retailer x placement groups and SKUs (codes and labels), which show curvature
    (`shaped`) and how hard each is pushed (`spend_residual`)."""

    cells: Cells
    log_level: np.ndarray
    group: np.ndarray
    group_labels: np.ndarray
    sku: np.ndarray
    sku_labels: np.ndarray
    shaped: np.ndarray
    push: np.ndarray

    @classmethod
    def of(cls, view: DataView, min_days: int) -> _SeenLines:
        cells = select_cells(view, min_days=min_days)
        log_level = np.log(cells.level)
        group, group_labels = pd.factorize(
            view.lines["retailer_id"] + "/" + view.lines["placement"]
        )
        sku, sku_labels = pd.factorize(view.lines["gtin"])
        return cls(
            cells=cells,
            log_level=log_level,
            group=group,
            group_labels=np.asarray(group_labels, dtype=str),
            sku=sku,
            sku_labels=np.asarray(sku_labels, dtype=str),
            shaped=cells.n_periods >= MIN_PERIODS,
            push=spend_residual(log_level, group, sku),
        )


class _Fitter:
    """Posteriors of the seen lines at a promotion lift and noise level; with pooling, each
    run learns the priors anew, warm-started from the last run's."""

    def __init__(
        self,
        lines: _SeenLines,
        kappa: float,
        pooling: bool,
        saturation_prior: tuple[float, float],
    ) -> None:
        self.lines = lines
        self.kappa = kappa
        self.pooling = pooling
        self.saturation_prior = saturation_prior
        self.saturation: Saturation | None = None
        self.alpha: AlphaPrior | None = None

    def run(self, beta: float, cv: float) -> tuple[Posterior, dict[str, float]]:
        ln = self.lines
        lik = likelihood(ln.cells, self.kappa, beta, cv)
        if not self.pooling:
            w = WEAK_PRIOR
            n = ln.log_level.shape[0]
            post = posterior(
                lik,
                ln.log_level,
                np.full(n, w["m_alpha"]),
                w["tau_alpha"],
                w["m_ell"],
                w["tau_ell"],
            )
            return post, {"tau_alpha": w["tau_alpha"], "m_ell": w["m_ell"], "tau_ell": w["tau_ell"]}
        sat = learn_saturation(lik, ln.log_level, ln.push, ln.shaped, self.saturation_prior)
        prior, post = pool_alpha(
            lik, ln.log_level, ln.group, ln.sku, sat.center(ln.push), sat.spread, self.alpha
        )
        self.saturation, self.alpha = sat, prior
        return post, {
            "tau_alpha": prior.tau_alpha,
            "tau_sku": prior.tau_sku,
            "m_ell": sat.mean,
            "ell_slope": sat.slope,
            "tau_ell": sat.spread,
        }

    def best_beta(self, candidates: np.ndarray, cv: float) -> float:
        scores = [float(self.run(float(b), cv)[0].log_evidence.sum()) for b in candidates]
        return float(candidates[int(np.argmax(scores))])

    def search(self, betas: np.ndarray) -> tuple[float, float, Posterior, dict[str, float]]:
        """(promotion lift, noise cv, posterior, learned hyperparameters). Noise level and
        promotion lift depend on each other: a coarse search of the lift at the default
        noise, the noise at that lift, then a finer search around it."""
        cells, log_level = self.lines.cells, self.lines.log_level
        beta = self.best_beta(betas, DEFAULT_NOISE_CV)
        post, _ = self.run(beta, DEFAULT_NOISE_CV)
        mo = post.moments(log_level)
        a, b = np.exp(mo["log_a"]), cells.level * np.exp(mo["ell"])
        cv = noise_cv(cells, a, b, self.kappa, beta)
        if betas.size > 1:
            step = float(betas[1] - betas[0])
            fine = beta + step * np.array([-0.5, -0.25, 0.0, 0.25, 0.5])
            beta = self.best_beta(fine[(fine >= betas[0]) & (fine <= betas[-1])], cv)
        post, hyper = self.run(beta, cv)
        return beta, cv, post, hyper

    def pooled_prior(self) -> PooledPrior:
        ln = self.lines
        return PooledPrior(
            log_level=ln.log_level,
            group=ln.group,
            group_labels=ln.group_labels,
            sku=ln.sku,
            sku_labels=ln.sku_labels,
            saturation=self.saturation,
            alpha=self.alpha,
        )


@dataclass(frozen=True, eq=False)
class _Curves:
    """Point curves and paired draws of (a, b) per line of the view, per day."""

    a: np.ndarray
    b: np.ndarray
    a_draws: np.ndarray  # (draws, lines)
    b_draws: np.ndarray

    @classmethod
    def observed(
        cls,
        total: int,
        rows: np.ndarray,
        point: tuple[np.ndarray, np.ndarray],
        draws: tuple[np.ndarray, np.ndarray],
    ) -> _Curves:
        """Curves of `total` lines with those at `rows` filled in (the rest to fill)."""
        n = draws[0].shape[0]
        out = cls(np.empty(total), np.empty(total), np.empty((n, total)), np.empty((n, total)))
        out.fill(rows, *point, *draws)
        return out

    def fill(
        self,
        rows: np.ndarray,
        a: np.ndarray,
        b: np.ndarray,
        a_draws: np.ndarray,
        b_draws: np.ndarray,
    ) -> None:
        self.a[rows], self.b[rows] = a, b
        self.a_draws[:, rows], self.b_draws[:, rows] = a_draws, b_draws


def _line_table(
    view: DataView,
    cells: Cells,
    curves: _Curves,
    observed: np.ndarray,
    suppressed: np.ndarray,
    quality: pd.DataFrame,
) -> pd.DataFrame:
    """`CurveFit.lines`: the view's line keys with curves, intervals, periods and quality."""
    total = len(view.lines)
    lines = view.lines[LINE_KEY].copy()
    lines["a"] = curves.a
    lines["b"] = curves.b
    lines["a_low"], lines["a_high"] = np.percentile(curves.a_draws, [5, 95], axis=0)
    lines["b_low"], lines["b_high"] = np.percentile(curves.b_draws, [5, 95], axis=0)
    period = np.full(total, "none", dtype=object)
    period[observed] = cells.period
    n_periods = np.zeros(total, dtype=np.int64)
    n_periods[observed] = cells.n_periods
    lines["period"] = period
    lines["n_periods"] = n_periods
    for col in quality.columns:
        values = np.full(total, None, dtype=object)
        values[observed] = quality[col].to_numpy()
        lines[col] = values
    lines["too_little_data"] = n_periods < MIN_PERIODS
    lines["prior_only"] = suppressed
    return lines


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


def _quality(cells: Cells, a: np.ndarray, b: np.ndarray, kappa: float, beta: float) -> pd.DataFrame:
    """Per line, over its periods: r2, rmse (USD per period) and rmse relative to the mean
    period's sales; None with fewer than three periods."""
    df = pd.DataFrame(
        {"line": cells.line, "y": cells.sales, "mu": predict(cells, a, b, kappa, beta)}
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
