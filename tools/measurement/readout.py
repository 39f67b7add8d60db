"""Lift readout of a finished experiment: lift, its confidence interval, p-value and iROAS.

Geo holdout: ANCOVA across geos, `log(test-period daily sales) ~ treated + log(pre-period
daily sales)`, by statsmodels OLS with HC2 standard errors (unbiased for a difference in group
means under unequal group variances, which a 20/80 holdout of small and large DMAs has).
Regressing on the pre-period level, rather than subtracting it as a difference-in-differences
does, lets the data choose how much of the pre-period to carry over, which in large samples is
never less precise.

Switchback: OLS across periods, `log(period daily sales) ~ ads_on + trend (+ day of week)`,
with HC2 standard errors; periods were assigned at random, so serial correlation in sales does
not bias the on/off contrast.

The lift is `exp(beta) - 1`. Incremental revenue is what the treated units sold beyond their
counterfactual, `treated sales * (1 - exp(-beta))`, and iROAS divides it by the test spend; both
intervals map the lift's interval endpoints, which the maps preserve in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import statsmodels.api as sm
from pydantic import BaseModel, Field

from tools.measurement.models import ExperimentDesign, ExperimentDesignError
from tools.measurement.panel import GeoPanel
from tools.measurement.power import dow_trend_matrix
from tools.policy import ExperimentType

COV_TYPE = "HC2"


class LiftReadout(BaseModel):
    retailer: str
    experiment_type: ExperimentType
    start: date
    end: date
    n_treatment: int
    n_control: int
    confidence: float
    lift: float = Field(description="relative lift of treated sales over their counterfactual")
    lift_ci: tuple[float, float]
    log_lift: float
    se_log_lift: float
    p_value: float
    significant: bool
    treated_sales: float = Field(description="sales of treated geos (or ads-on days) in the test")
    test_spend: float
    incremental_revenue: float
    incremental_revenue_ci: tuple[float, float]
    iroas: float | None
    iroas_ci: tuple[float, float] | None
    method: str
    dropped_geos: list[str] = Field(default_factory=list)
    summary: str


@dataclass(frozen=True)
class Fit:
    """One treatment coefficient with its standard error, interval and p-value (log scale)."""

    beta: float
    se: float
    lo: float
    hi: float
    p: float


def fit_effect(y: np.ndarray, treated: np.ndarray, controls: np.ndarray, confidence: float) -> Fit:
    """OLS of `y` on the treatment flag and `controls` (which include the intercept), with HC2
    standard errors and t-based intervals."""
    X = np.column_stack([treated.astype(float), controls])
    res = sm.OLS(y, X).fit(cov_type=COV_TYPE, use_t=True)
    lo, hi = res.conf_int(alpha=1 - confidence)[0]
    return Fit(float(res.params[0]), float(res.bse[0]), float(lo), float(hi), float(res.pvalues[0]))


def geo_fit(
    pre: np.ndarray, test: np.ndarray, treated: np.ndarray, confidence: float = 0.95
) -> Fit:
    """ANCOVA on per-geo mean daily sales before (`pre`) and during (`test`) the test."""
    x = np.log(pre)
    return fit_effect(np.log(test), treated, np.column_stack([np.ones_like(x), x]), confidence)


def switchback_fit(
    period_sales: np.ndarray,
    on: np.ndarray,
    first_weekday: int,
    period_days: int,
    confidence: float = 0.95,
) -> Fit:
    """OLS on log mean daily sales per period, with trend and (daily periods) day of week."""
    X = dow_trend_matrix(first_weekday, period_sales.size, period_days)
    return fit_effect(np.log(period_sales), on, X, confidence)


def _interval(lo: float, hi: float) -> tuple[float, float]:
    return (float(lo), float(hi))


def read_out(
    design: ExperimentDesign,
    panel: GeoPanel,
    *,
    test_spend: float | None = None,
    confidence: float = 0.95,
) -> LiftReadout:
    """Read out `design` from a geo panel that covers the pre-period and the test window.

    `test_spend` is what the test actually spent (default: the design's planned spend)."""
    if not 0.5 <= confidence < 1:
        raise ExperimentDesignError(f"confidence must be in [0.5, 1), got {confidence!r}")
    spend = design.test_spend if test_spend is None else float(test_spend)
    if spend < 0:
        raise ExperimentDesignError(f"test_spend must not be negative, got {spend!r}")
    if design.experiment_type == ExperimentType.GEO_HOLDOUT:
        fit, treated_sales, n_t, n_c, dropped, method = _geo(design, panel, confidence)
    else:
        fit, treated_sales, n_t, n_c, dropped, method = _switch(design, panel, confidence)

    lift = float(np.expm1(fit.beta))
    lift_ci = _interval(np.expm1(fit.lo), np.expm1(fit.hi))
    inc = float(treated_sales * -np.expm1(-fit.beta))
    inc_ci = _interval(treated_sales * -np.expm1(-fit.lo), treated_sales * -np.expm1(-fit.hi))
    iroas = inc / spend if spend > 0 else None
    iroas_ci = _interval(inc_ci[0] / spend, inc_ci[1] / spend) if spend > 0 else None
    significant = fit.p < 1 - confidence
    pct = f"{100 * confidence:.0f}%"
    summary = (
        f"Lift {100 * lift:+.2f}% ({pct} CI {100 * lift_ci[0]:+.2f}% to "
        f"{100 * lift_ci[1]:+.2f}%, p = {fit.p:.3g}); incremental revenue ${inc:,.0f} "
        f"(${inc_ci[0]:,.0f} to ${inc_ci[1]:,.0f})"
        + (
            f"; iROAS {iroas:.2f} ({iroas_ci[0]:.2f} to {iroas_ci[1]:.2f}) on ${spend:,.0f}."
            if iroas is not None and iroas_ci is not None
            else "; no spend given, so no iROAS."
        )
        + ("" if significant else f" Not significant at {pct} confidence.")
    )
    return LiftReadout(
        retailer=design.retailer,
        experiment_type=design.experiment_type,
        start=design.start,
        end=design.end,
        n_treatment=n_t,
        n_control=n_c,
        confidence=confidence,
        lift=lift,
        lift_ci=lift_ci,
        log_lift=fit.beta,
        se_log_lift=fit.se,
        p_value=fit.p,
        significant=significant,
        treated_sales=treated_sales,
        test_spend=spend,
        incremental_revenue=inc,
        incremental_revenue_ci=inc_ci,
        iroas=iroas,
        iroas_ci=iroas_ci,
        method=method,
        dropped_geos=dropped,
        summary=summary,
    )


def _geo(
    design: ExperimentDesign, panel: GeoPanel, confidence: float
) -> tuple[Fit, float, int, int, list[str], str]:
    pre_last = design.start - timedelta(days=1)
    if panel.start > pre_last:
        raise ExperimentDesignError(
            f"the geo panel starts {panel.start}, after the test starts {design.start}; the "
            "readout needs the pre-period too"
        )
    pre = panel.until(pre_last).daily().mean(axis=1)
    test_days = panel.slice_days(design.start, design.end)
    test = test_days.mean(axis=1)
    row = {g: i for i, g in enumerate(panel.geos)}
    group = {a.geo: a.group == "treatment" for a in design.geos}
    # A geo the clean room withheld (under k) or that sold nothing cannot enter a log model.
    keep = [g for g in group if g in row and pre[row[g]] > 0 and test[row[g]] > 0]
    dropped = sorted(set(group) - set(keep))
    idx = np.array([row[g] for g in keep], dtype=int)
    treated = np.array([group[g] for g in keep])
    n_t, n_c = int(treated.sum()), int((~treated).sum())
    if n_t < 2 or n_c < 2:
        raise ExperimentDesignError(
            f"the readout needs at least 2 treated and 2 control geos with sales; it has "
            f"{n_t} and {n_c} (dropped: {', '.join(dropped) or 'none'})",
            dropped=dropped,
        )
    fit = geo_fit(pre[idx], test[idx], treated, confidence)
    treated_sales = float(test_days[idx[treated]].sum())
    method = (
        f"OLS across {idx.size} geos of log test-period daily sales on treatment and log "
        f"pre-period daily sales ({COV_TYPE} standard errors)"
    )
    return fit, treated_sales, n_t, n_c, dropped, method


def _switch(
    design: ExperimentDesign, panel: GeoPanel, confidence: float
) -> tuple[Fit, float, int, int, list[str], str]:
    per_days = (design.period_hours or 24) // 24
    daily = panel.slice_days(design.start, design.end).sum(axis=0)
    n = len(design.periods)
    if daily.size != n * per_days:
        raise ExperimentDesignError(
            f"the test window holds {daily.size} days but the design has {n} periods of "
            f"{per_days} day(s)"
        )
    period_sales = daily.reshape(n, per_days).mean(axis=1)
    if (period_sales <= 0).any():
        raise ExperimentDesignError("a switchback period has no sales; cannot read out on logs")
    on = np.array([p.ads_on for p in design.periods])
    fit = switchback_fit(period_sales, on, design.start.weekday(), per_days, confidence)
    treated_sales = float(daily.reshape(n, per_days)[on].sum())
    terms = "trend and day of week" if per_days == 1 else "trend"
    method = (
        f"OLS across {n} periods of log daily sales on ads-on and {terms} "
        f"({COV_TYPE} standard errors)"
    )
    return fit, treated_sales, int(on.sum()), int((~on).sum()), [], method
