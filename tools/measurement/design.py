"""Experiment designs for a plan's measurement reserve: geo holdouts and switchbacks.

design = design_experiment("alpha", pre_panel, budget=250_000, expected_iroas=3.0)
design.geos          # which DMAs are held out, by stratum
design.mde_lift      # smallest lift the test detects at the target power
design.rationale     # why this design, and whether the reserve is enough

Geo holdout: DMAs are sorted by pre-period sales and cut into as many strata as there are
control geos; one geo per stratum is drawn (seeded) into control, the rest stay treated. Each
stratum then holds comparable markets, so control matches treatment on size (checked as a
standardized mean difference) and the readout's pre-period covariate does the rest.

Switchback (only where the retailer allows it): the whole site alternates between ads on and
ads off in periods of at least the retailer's minimum length. Off periods are drawn one per
block of consecutive periods, so they spread over the test rather than bunching in one week.

The reserve is spent at the plan's pace (`daily_spend`, by default the reserve over the
flight), so a longer test spends more, builds the same relative lift and sees less noise: the
design runs the shortest allowed test that reaches the target power, or says it cannot and
what it can detect. Every choice is checked against the retailer's measurement policy; a
request that breaks a rule is refused with the rule and the document section it comes from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np

from tools.errors import RMNError
from tools.measurement.assignment import assign_geos, balance, stratified_pick
from tools.measurement.models import (
    DurationOption,
    ExperimentDesign,
    ExperimentDesignError,
    GeoAssignment,
    SwitchbackPeriod,
)
from tools.measurement.panel import GeoPanel
from tools.measurement.power import (
    design_effect,
    detectable_effect_size,
    dow_trend_matrix,
    geo_noise_model,
    power_at,
    switchback_noise_sd,
)
from tools.measurement.rules import (
    DesignRequest,
    MeasurementRules,
    allowed_durations,
    candidate_types,
    holdout_count,
    pct,
    usd,
)
from tools.policy import ExperimentType, RetailerPolicy, load_retailer_policy
from tools.seeds import rng_for

# Treated baseline is the level of the weeks nearest the test, not the whole history's.
BASELINE_DAYS = 28


# --------------------------------------------------------------------------------- API


def design_experiment(
    retailer: str,
    pre: GeoPanel,
    budget: float,
    *,
    brand: str | None = None,
    experiment_type: ExperimentType | str | None = None,
    expected_iroas: float | None = None,
    daily_spend: float | None = None,
    flight_days: int = 28,
    duration_days: int | None = None,
    holdout_pct: float | None = None,
    period_hours: int | None = None,
    start: date | None = None,
    not_before: date | None = None,
    alpha: float = 0.05,
    target_power: float = 0.8,
    running_tests: int = 0,
    seed: int = 0,
    policy: RetailerPolicy | None = None,
) -> ExperimentDesign:
    """Design the experiment for a reserve of `budget` USD at `retailer`.

    `pre` holds geo sales before the test (the test starts the day after it, or on
    `not_before` when that is later, such as the flight's first day, unless `start` says
    otherwise). `daily_spend` is the test's pace (default: `budget / flight_days`);
    `expected_iroas` is the prior the power is judged at. Leave `experiment_type`,
    `duration_days`, `holdout_pct` and `period_hours` unset to let the design choose them
    within the retailer's rules; set them to have them checked against those rules."""
    pace = _check_numbers(budget, expected_iroas, alpha, target_power, flight_days, daily_spend)
    policy = policy or load_retailer_policy(retailer)
    m = policy.measurement
    rules = MeasurementRules(retailer, policy)
    weekly = pre.period_days == 7 or "date" not in policy.data_access.allowed_dimensions
    start = _test_start(retailer, pre, start, weekly, not_before)
    if running_tests >= m.max_concurrent_tests:
        raise rules.refuse(
            "max_concurrent_tests",
            f"the brand already runs {running_tests} test(s) at {retailer}; at most "
            f"{m.max_concurrent_tests} may run at once",
            running_tests,
            m.max_concurrent_tests,
        )
    rules.ok("max_concurrent_tests", f"at most {m.max_concurrent_tests} at once", running_tests + 1)
    candidates = candidate_types(rules, experiment_type, period_hours)

    req = DesignRequest(
        retailer=retailer,
        brand=brand,
        pre=pre,
        budget=budget,
        pace=pace,
        expected_iroas=expected_iroas,
        duration_days=duration_days,
        holdout_pct=holdout_pct,
        period_hours=period_hours,
        start=start,
        alpha=alpha,
        target_power=target_power,
        seed=seed,
        weekly=weekly,
        policy=policy,
        days_left=flight_days - (start - not_before).days if not_before else None,
        flight_days=flight_days,
    )
    return _best_design(req, rules, candidates)


def _check_numbers(
    budget: float,
    expected_iroas: float | None,
    alpha: float,
    target_power: float,
    flight_days: int,
    daily_spend: float | None,
) -> float:
    """Refuse malformed numbers; returns the test's daily pace."""
    if not budget > 0 or not math.isfinite(budget):
        raise ExperimentDesignError(f"budget must be a positive amount, got {budget!r}")
    if expected_iroas is not None and not expected_iroas > 0:
        raise ExperimentDesignError(f"expected_iroas must be positive, got {expected_iroas!r}")
    if not 0 < alpha < 0.5:
        raise ExperimentDesignError(f"alpha must be in (0, 0.5), got {alpha!r}")
    if not 0.5 <= target_power < 1:
        raise ExperimentDesignError(f"target_power must be in [0.5, 1), got {target_power!r}")
    if flight_days < 1:
        raise ExperimentDesignError(f"flight_days must be at least 1, got {flight_days!r}")
    pace = budget / flight_days if daily_spend is None else float(daily_spend)
    if not pace > 0:
        raise ExperimentDesignError(f"daily_spend must be positive, got {daily_spend!r}")
    return pace


def _test_start(
    retailer: str, pre: GeoPanel, start: date | None, weekly: bool, not_before: date | None
) -> date:
    """The test's first day: the requested one (checked), else the day after the pre-period
    or `not_before` (the flight's first day), whichever is later (the next Monday where the
    clean room reports by week). Plans flighted in 2027 had tests dated the day after the
    sales data ended, in 2026, before the flight whose reserve pays for them."""
    if start is None:
        start = pre.end + timedelta(days=1)
        if not_before is not None and not_before > start:
            start = not_before
        if weekly:
            start += timedelta(days=-start.weekday() % 7)
    if start <= pre.end:
        raise ExperimentDesignError(
            f"the test must start after the pre-period, which ends {pre.end}; got {start}"
        )
    if weekly and start.weekday() != 0:
        raise ExperimentDesignError(
            f"{retailer}'s clean room reports sales by week, so the test must start on a Monday; "
            f"{start} is a {start:%A}",
            start=str(start),
        )
    return start


def _best_design(
    req: DesignRequest, rules: MeasurementRules, candidates: list[ExperimentType]
) -> ExperimentDesign:
    """Design every candidate type; where several designs are allowed, the one that detects
    the smallest iROAS wins. A lone candidate's refusal is raised as is."""
    names = ", ".join(t.value for t in req.policy.measurement.allowed_experiment_types)
    designs: list[ExperimentDesign] = []
    errors: list[RMNError] = []
    for t in candidates:
        r = MeasurementRules(req.retailer, req.policy, list(rules.checks))
        r.ok("allowed_experiment_types", f"one of {names}", t.value)
        build = _geo_holdout if t == ExperimentType.GEO_HOLDOUT else _switchback
        try:
            designs.append(build(req, r))
        except RMNError as err:
            if len(candidates) == 1:
                raise
            errors.append(err)
    if not designs:
        raise errors[0]
    return min(designs, key=lambda d: (d.mde_iroas, d.duration_days))


# --------------------------------------------------------------- shared by both designs


@dataclass(frozen=True)
class _Choice:
    """The allowed test lengths with what each costs and detects, and the one chosen."""

    durations: list[int]
    spend: np.ndarray
    mde_lift: np.ndarray
    mde_iroas: np.ndarray
    power: np.ndarray | None
    expected_lift: float | None
    baseline: float
    i: int

    @property
    def days(self) -> int:
        return self.durations[self.i]


def _choose_duration(
    req: DesignRequest,
    rules: MeasurementRules,
    durations: list[int],
    mde_lift: np.ndarray,
    spend: np.ndarray,
    baseline: float,
    too_short: str,
    power: Callable[[float], np.ndarray],
) -> _Choice:
    """Shortest affordable length reaching the target power (else the most powerful
    affordable one); refused with `too_short` when the reserve affords none. `power` gives
    the power of every length at an expected lift."""
    m = req.policy.measurement
    affordable = spend <= req.budget * (1 + 1e-9)
    if req.days_left is not None:
        # A test that starts after the flight's first day (the next Monday, where the clean
        # room reports by week) ends by the flight's last: a 42-day test from 11 January ran a
        # day past a flight ending 20 February (va19 of unseen41).
        within = np.asarray(durations) <= req.days_left
        if affordable.any() and not (affordable & within).any():
            raise rules.refuse(
                "min_test_days",
                f"the test can start on {req.start} at the earliest, which leaves "
                f"{req.days_left} days of the flight, fewer than the shortest test allowed",
                req.days_left,
                m.min_test_days,
            )
        affordable &= within
    if not affordable.any():
        lasts = req.budget / req.pace
        if req.flight_days is not None and lasts >= req.flight_days - 1e-6:
            # The reserve spread over the whole flight "lasts 14.0 days" because the flight is
            # 14 days: the flight is what is short, not the reserve (xa22 of unseen43).
            too_short = (f"the flight is {req.flight_days} days, shorter than the shortest "
                         f"test allowed ({m.min_test_days} days)")  # fmt: skip
        raise rules.refuse("min_test_days", too_short, round(lasts, 2), m.min_test_days)
    exp_lift = req.pace * req.expected_iroas / baseline if req.expected_iroas else None
    pw = power(exp_lift) if exp_lift is not None else None
    idx = np.flatnonzero(affordable)
    if pw is None:
        i = int(idx[-1])
    else:
        good = idx[pw[idx] >= req.target_power]
        i = int(good[0]) if good.size else int(idx[np.argmax(pw[idx])])
    rules.ok("min_test_days", f"at least {m.min_test_days} days", durations[i])
    rules.ok("max_test_days", f"at most {m.max_test_days} days", durations[i])
    return _Choice(
        durations=durations,
        spend=spend,
        mde_lift=mde_lift,
        mde_iroas=mde_lift * baseline / req.pace,
        power=pw,
        expected_lift=exp_lift,
        baseline=baseline,
        i=i,
    )


def _options(c: _Choice) -> list[DurationOption]:
    """A handful of test lengths (every week, and the chosen one) for the power curve."""
    keep = [j for j, d in enumerate(c.durations) if d % 7 == 0 or d == c.days or j == 0]
    return [
        DurationOption(
            duration_days=c.durations[j],
            test_spend=float(c.spend[j]),
            mde_lift=float(c.mde_lift[j]),
            mde_iroas=float(c.mde_iroas[j]),
            power=float(c.power[j]) if c.power is not None else None,
        )
        for j in keep
    ]


def _assemble(
    req: DesignRequest,
    rules: MeasurementRules,
    experiment_type: ExperimentType,
    c: _Choice,
    mde_incremental_revenue: float,
    **specific: Any,
) -> ExperimentDesign:
    """The design both types share: dates, spend, the chosen length's MDE and power, the
    spend that would reach the target power, the options and the rules checked. `specific`
    holds the type's own fields (units, noise, assignment or periods); the caller writes
    the rationale."""
    i, pw = c.i, c.power
    need = mde_incremental_revenue / req.expected_iroas if req.expected_iroas else None
    return ExperimentDesign(
        retailer=req.retailer,
        brand=req.brand,
        experiment_type=experiment_type,
        seed=req.seed,
        start=req.start,
        end=req.start + timedelta(days=c.days - 1),
        duration_days=c.days,
        budget=req.budget,
        daily_spend=req.pace,
        test_spend=min(float(c.spend[i]), req.budget),
        alpha=req.alpha,
        target_power=req.target_power,
        baseline_daily_sales=c.baseline,
        mde_lift=float(c.mde_lift[i]),
        mde_incremental_revenue=mde_incremental_revenue,
        mde_iroas=float(c.mde_iroas[i]),
        expected_iroas=req.expected_iroas,
        expected_lift=c.expected_lift,
        power=float(pw[i]) if pw is not None else None,
        adequate=bool(pw[i] >= req.target_power) if pw is not None else None,
        budget_for_target_power=need,
        options=_options(c),
        rules=rules.checks,
        rationale="",
        **specific,
    )


def _budget_line(
    d: ExperimentDesign, unit: str, expected_lift: float | None, pw: float | None
) -> str:
    if d.expected_iroas is None or expected_lift is None or pw is None:
        return (
            f"No expected iROAS was given: the test detects an iROAS of {d.mde_iroas:.2f} "
            f"(a {pct(d.mde_lift)} lift) with {pct(d.target_power)} power."
        )
    head = (
        f"At an expected iROAS of {d.expected_iroas:.2f} the test spend of {usd(d.test_spend)} "
        f"should lift treated {unit} sales by {pct(expected_lift)}; power is {pct(pw)}."
    )
    if pw >= d.target_power:
        return head + f" The smallest detectable iROAS is {d.mde_iroas:.2f}."
    need = (
        f" About {usd(d.budget_for_target_power)} of test spend would reach it."
        if d.budget_for_target_power
        else ""
    )
    return (
        head + f" The reserve cannot reach {pct(d.target_power)} power: at this budget the test "
        f"detects only an iROAS of {d.mde_iroas:.2f} (a {pct(d.mde_lift)} lift)." + need
    )


# --------------------------------------------------------------------------- geo holdout


def _geo_holdout(req: DesignRequest, rules: MeasurementRules) -> ExperimentDesign:
    pre, m = req.pre, req.policy.measurement
    G = len(pre.geos)
    durations = allowed_durations(rules, req.weekly, req.duration_days, 1)
    n_c = holdout_count(rules, G, req.holdout_pct, "geos")
    n_t = G - n_c

    daily = pre.daily()
    level = daily[:, -min(BASELINE_DAYS, daily.shape[1]) :].mean(axis=1)
    pre_mean = daily.mean(axis=1)
    control, stratum = assign_geos(pre.geos, pre_mean, n_c, req.seed)
    bal = balance(pre_mean, control)
    baseline = float(level[~control].sum())

    # The readout's regression: intercept and log pre-period level besides the treatment flag.
    covariates = np.column_stack([np.ones(G), np.log(np.maximum(pre_mean, 1e-9))])
    deff = design_effect(~control, covariates)
    df = G - 1 - covariates.shape[1]
    model = geo_noise_model(daily)
    es = detectable_effect_size(n_t, n_c, req.alpha, req.target_power, df)
    days = np.array(durations)
    sd = np.sqrt(model.variance(days))
    sd_eff = sd * math.sqrt(deff)
    c = _choose_duration(
        req,
        rules,
        durations,
        mde_lift=np.expm1(es * sd_eff),
        spend=req.pace * days,
        baseline=baseline,
        too_short=f"the reserve of {usd(req.budget)} at {usd(req.pace)} a day lasts "
        f"{req.budget / req.pace:.1f} days, shorter than the shortest allowed test "
        f"({durations[0]} days)",
        power=lambda lift: power_at(np.log1p(lift) / sd_eff, n_t, n_c, req.alpha, df),
    )
    d = c.days
    share = n_c / G
    rules.ok("min_holdout_pct", f"at least {pct(m.min_holdout_pct)} of geos held out", pct(share))
    rules.ok("max_holdout_pct", f"at most {pct(m.max_holdout_pct)} of geos held out", pct(share))
    geos = [
        GeoAssignment(
            geo=g,
            group="control" if control[j] else "treatment",
            stratum=int(stratum[j]),
            pre_daily_sales=round(float(daily[j].mean()), 2),
        )
        for j, g in enumerate(pre.geos)
    ]
    design = _assemble(
        req,
        rules,
        ExperimentType.GEO_HOLDOUT,
        c,
        mde_incremental_revenue=float(c.mde_lift[c.i] * baseline * d),
        holdout_pct=share,
        n_treatment=n_t,
        n_control=n_c,
        geos=geos,
        balance=bal,
        noise_sd=float(sd[c.i]),
        design_effect=deff,
        residual_df=df,
        pre_correlation=model.correlation(d),
    )
    pop = float(level[control].sum() / level.sum())
    design.rationale = (
        f"Geo holdout at {req.retailer}: {n_c} of {G} DMAs ({pct(share)}, {pct(pop)} of sales) "
        f"held out for {d} days from {req.start}, one drawn at random from each of {n_c} strata "
        f"of DMAs ranked by pre-period sales (seed {req.seed}); control and treatment differ by "
        f"{bal.smd_log_sales:+.2f} sd in log sales. The readout regresses each DMA's test-period "
        f"log sales on its pre-period level (placebo pre/test correlation "
        f"{design.pre_correlation:.3f}); residual noise {design.noise_sd:.3f} on the log scale. "
        + _budget_line(design, "DMA", c.expected_lift, design.power)
    )
    return design


# ---------------------------------------------------------------------------- switchback


def _period_hours(req: DesignRequest, rules: MeasurementRules) -> int:
    """Switchback period length: the requested one (checked) or the shortest whole days the
    retailer's minimum allows."""
    min_h = req.policy.measurement.switchback_min_period_hours or 24
    period_hours = req.period_hours
    if period_hours is not None and period_hours < min_h:
        raise rules.refuse(
            "switchback_min_period_hours",
            f"switchback periods of {period_hours} h are shorter than the minimum {min_h} h",
            period_hours,
            min_h,
        )
    hours = period_hours if period_hours is not None else -(-min_h // 24) * 24
    if hours % 24:
        raise ExperimentDesignError(
            f"switchback periods of {hours} h do not cover whole days; sales are read by day, "
            "so use a multiple of 24 h",
            period_hours=hours,
        )
    if req.weekly and hours % (7 * 24):
        raise ExperimentDesignError(
            f"{req.retailer}'s clean room reports by week, so switchback periods must be "
            "whole weeks"
        )
    return hours


@dataclass(frozen=True)
class _Schedule:
    """One switchback length: periods, ads-on and ads-off counts, the off periods drawn, the
    noise of the readout's contrast and its detectable effect size."""

    n: int
    n_on: int
    n_off: int
    sd: float
    es: float
    off: np.ndarray
    deff: float
    df: int


def _schedule(
    req: DesignRequest, rules: MeasurementRules, national: np.ndarray, days: int, per_days: int
) -> _Schedule:
    n = days // per_days
    n_off = holdout_count(rules, n, req.holdout_pct, "periods")
    off, _ = stratified_pick(n, n_off, rng_for(req.seed, "switchback", req.retailer, str(n)))
    X = dow_trend_matrix(req.start.weekday(), n, per_days)
    deff = design_effect(~off, X)
    df = n - 1 - X.shape[1]
    sd = switchback_noise_sd(national, req.pre.start.weekday(), n, per_days) * math.sqrt(deff)
    es = detectable_effect_size(n - n_off, n_off, req.alpha, req.target_power, df)
    return _Schedule(n, n - n_off, n_off, sd, es, off, deff, df)


def _switchback(req: DesignRequest, rules: MeasurementRules) -> ExperimentDesign:
    m = req.policy.measurement
    hours = _period_hours(req, rules)
    per_days = hours // 24
    durations = allowed_durations(rules, req.weekly, req.duration_days, per_days)

    national = req.pre.daily().sum(axis=0)
    baseline = float(national[-min(BASELINE_DAYS, national.size) :].mean())
    rows = [_schedule(req, rules, national, d, per_days) for d in durations]
    sd = np.array([r.sd for r in rows])
    n_on = np.array([r.n_on for r in rows])
    es = np.array([r.es for r in rows])
    min_h = m.switchback_min_period_hours or 24
    rules.ok("switchback_min_period_hours", f"periods of at least {min_h} h", f"{hours} h")
    c = _choose_duration(
        req,
        rules,
        durations,
        mde_lift=np.expm1(es * sd),
        spend=req.pace * n_on * per_days,
        baseline=baseline,
        too_short=f"the reserve of {usd(req.budget)} at {usd(req.pace)} a day lasts "
        f"{req.budget / req.pace:.1f} ads-on days, fewer than the shortest allowed test needs",
        power=lambda lift: np.array(
            [power_at(np.log1p(lift) / r.sd, r.n_on, r.n_off, req.alpha, r.df).item() for r in rows]
        ),
    )
    s = rows[c.i]
    share = s.n_off / s.n
    held = f"{pct(share)} of periods"
    rules.ok("min_holdout_pct", f"at least {pct(m.min_holdout_pct)} held out", held)
    rules.ok("max_holdout_pct", f"at most {pct(m.max_holdout_pct)} held out", held)

    t0 = datetime.combine(req.start, time(0))
    periods = [
        SwitchbackPeriod(
            index=j, start=t0 + timedelta(hours=j * hours), hours=hours, ads_on=not bool(s.off[j])
        )
        for j in range(s.n)
    ]
    design = _assemble(
        req,
        rules,
        ExperimentType.SWITCHBACK,
        c,
        mde_incremental_revenue=float(c.mde_lift[c.i] * baseline * s.n_on * per_days),
        holdout_pct=share,
        n_treatment=s.n_on,
        n_control=s.n_off,
        periods=periods,
        period_hours=hours,
        noise_sd=float(s.sd / math.sqrt(s.deff)),
        design_effect=s.deff,
        residual_df=s.df,
    )
    design.rationale = (
        f"Switchback at {req.retailer}: {s.n} periods of {hours} h from {req.start}, ads off in "
        f"{s.n_off} ({pct(share)}), one drawn at random from each of {s.n_off} blocks of "
        f"consecutive periods (seed {req.seed}). The readout compares log daily sales in on and "
        f"off periods after trend and day-of-week terms; residual noise {design.noise_sd:.3f} on "
        f"the log scale. It measures the same-period effect: sales that ads cause in later "
        f"periods (the attribution window is {m.click_attribution_days} days after a click) "
        f"spill into off periods and pull the estimate toward zero. "
        + _budget_line(design, "site", c.expected_lift, design.power)
    )
    return design
