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
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from tools.errors import RMNError
from tools.measurement.power import (
    design_effect,
    detectable_effect_size,
    dow_trend_matrix,
    geo_noise_model,
    power_at,
    switchback_noise_sd,
)
from tools.policy import ExperimentType, RetailerPolicy, load_retailer_policy

SUPPORTED_TYPES = (ExperimentType.GEO_HOLDOUT, ExperimentType.SWITCHBACK)
# Treated baseline is the level of the weeks nearest the test, not the whole history's.
BASELINE_DAYS = 28
# |standardized mean difference| of log pre-period sales under which groups count as balanced.
BALANCE_SMD = 0.2


class MeasurementRuleError(RMNError):
    """A requested experiment that breaks the retailer's measurement policy."""

    kind = "measurement_rule"


class ExperimentDesignError(RMNError):
    """A request the designer cannot turn into an experiment (bad input, unsupported design)."""

    kind = "experiment_design_error"


# --------------------------------------------------------------------------------- data


@dataclass(frozen=True)
class GeoPanel:
    """Sales per geo and period: `sales[g, t]` is geo `geos[g]`'s total over the `period_days`
    days starting `start + t * period_days` (daily, or weekly cells starting on Mondays)."""

    geos: tuple[str, ...]
    start: date
    sales: np.ndarray
    period_days: int = 1

    def __post_init__(self) -> None:
        s = np.asarray(self.sales, dtype=float)
        if s.ndim != 2 or s.shape[0] != len(self.geos):
            raise ExperimentDesignError(
                f"geo panel sales must be (geos, periods) = ({len(self.geos)}, ...), "
                f"got shape {s.shape}"
            )
        if self.period_days not in (1, 7):
            raise ExperimentDesignError(f"period_days must be 1 or 7, got {self.period_days}")
        if self.period_days == 7 and self.start.weekday() != 0:
            raise ExperimentDesignError(f"weekly cells start on Mondays; {self.start} is not one")
        if len(set(self.geos)) != len(self.geos):
            raise ExperimentDesignError("geo panel lists a geo twice")
        if not np.isfinite(s).all() or (s < 0).any():
            raise ExperimentDesignError("geo panel sales must be finite and non-negative")
        object.__setattr__(self, "sales", s)

    @property
    def days(self) -> int:
        return self.sales.shape[1] * self.period_days

    @property
    def end(self) -> date:
        """Last day covered (inclusive)."""
        return self.start + timedelta(days=self.days - 1)

    def daily(self) -> np.ndarray:
        """(geos, days) daily sales; a weekly cell is spread evenly over its seven days, which
        keeps every whole-week window's mean exact."""
        if self.period_days == 1:
            return self.sales
        return np.repeat(self.sales / self.period_days, self.period_days, axis=1)

    def slice_days(self, first: date, last: date) -> np.ndarray:
        """(geos, days) daily sales for days first..last (inclusive), which must be covered
        by whole cells of the panel."""
        i0, i1 = (first - self.start).days, (last - self.start).days + 1
        if i0 < 0 or i1 > self.days or i0 >= i1:
            raise ExperimentDesignError(
                f"the geo panel covers {self.start}..{self.end}, not {first}..{last}"
            )
        if i0 % self.period_days or i1 % self.period_days:
            raise ExperimentDesignError(
                f"{first}..{last} does not fall on whole {self.period_days}-day cells of the panel"
            )
        return self.daily()[:, i0:i1]

    def until(self, last: date) -> GeoPanel:
        """The panel's cells that end on or before `last`."""
        n = ((last - self.start).days + 1) // self.period_days
        if n <= 0:
            raise ExperimentDesignError(f"the geo panel starts after {last}")
        return GeoPanel(self.geos, self.start, self.sales[:, :n], self.period_days)

    @classmethod
    def from_frame(
        cls,
        frame: Any,
        geo: str = "geo_id",
        period: str = "period",
        value: str = "sales",
        period_days: int | None = None,
    ) -> GeoPanel:
        """A panel from long rows (geo, period start date, value), e.g. the clean-room geo x
        period query. Missing cells are zero; `period_days` is inferred from the dates."""
        import pandas as pd

        df = pd.DataFrame(frame)[[geo, period, value]].copy()
        df[period] = pd.to_datetime(df[period]).dt.normalize()
        if df.empty:
            raise ExperimentDesignError("no geo x period rows to build a panel from")
        dates = np.sort(df[period].unique())
        if period_days is None:
            gaps = np.diff(dates).astype("timedelta64[D]").astype(int)
            period_days = 7 if gaps.size and gaps.min() == 7 else 1
        wide = df.pivot_table(index=geo, columns=period, values=value, aggfunc="sum")
        full = pd.date_range(dates[0], dates[-1], freq=f"{period_days}D")
        wide = wide.reindex(columns=full, fill_value=0.0).fillna(0.0).sort_index()
        return cls(
            geos=tuple(str(g) for g in wide.index),
            start=pd.Timestamp(full[0]).date(),
            sales=wide.to_numpy(dtype=float),
            period_days=period_days,
        )


# ------------------------------------------------------------------------------ results


class RuleCheck(BaseModel):
    """One retailer rule the design satisfies, with the document section it comes from."""

    rule: str
    requirement: str
    value: str
    source: str


class GeoAssignment(BaseModel):
    geo: str
    group: Literal["treatment", "control"]
    stratum: int
    pre_daily_sales: float


class SwitchbackPeriod(BaseModel):
    index: int
    start: datetime
    hours: int
    ads_on: bool


class Balance(BaseModel):
    """How alike treatment and control were before the test."""

    smd_log_sales: float = Field(description="standardized mean difference of log daily sales")
    control_sales_share: float = Field(description="control's share of pre-period sales")
    balanced: bool


class DurationOption(BaseModel):
    duration_days: int
    test_spend: float
    mde_lift: float
    mde_iroas: float
    power: float | None


class ExperimentDesign(BaseModel):
    retailer: str
    brand: str | None
    experiment_type: ExperimentType
    seed: int
    start: date
    end: date
    duration_days: int
    budget: float = Field(description="reserve available to the test (USD)")
    daily_spend: float = Field(description="pace of test spend on days the ads run (USD)")
    test_spend: float = Field(description="spend the test needs at that pace (USD)")
    holdout_pct: float = Field(description="share of geos (or periods) held out")
    n_treatment: int = Field(description="treated geos (or ads-on periods)")
    n_control: int = Field(description="control geos (or ads-off periods)")
    geos: list[GeoAssignment] = Field(default_factory=list)
    periods: list[SwitchbackPeriod] = Field(default_factory=list)
    period_hours: int | None = None
    balance: Balance | None = None
    alpha: float
    target_power: float
    noise_sd: float = Field(description="residual sd of a unit's log sales over the test")
    design_effect: float = Field(
        description="variance of the readout's estimate relative to a plain two-group contrast"
    )
    residual_df: int = Field(description="residual degrees of freedom of the readout")
    pre_correlation: float | None = Field(
        default=None, description="placebo correlation of a geo's pre-period and test level"
    )
    baseline_daily_sales: float = Field(description="treated units' daily sales before the test")
    mde_lift: float = Field(description="relative lift detectable at the target power")
    mde_incremental_revenue: float
    mde_iroas: float = Field(description="iROAS detectable at the target power")
    expected_iroas: float | None
    expected_lift: float | None
    power: float | None = Field(description="power at the expected iROAS")
    adequate: bool | None = Field(description="whether the reserve reaches the target power")
    budget_for_target_power: float | None = Field(
        description="test spend that would reach the target power at the expected iROAS"
    )
    options: list[DurationOption]
    rules: list[RuleCheck]
    rationale: str

    def power_at_lift(self, lift: float) -> float:
        """Power of this design's readout against a true relative lift of `lift`."""
        es = math.log1p(lift) / (self.noise_sd * math.sqrt(self.design_effect))
        return float(
            power_at(es, self.n_treatment, self.n_control, self.alpha, self.residual_df).item()
        )

    def control_geos(self) -> list[str]:
        return [a.geo for a in self.geos if a.group == "control"]

    def treated_geos(self) -> list[str]:
        return [a.geo for a in self.geos if a.group == "treatment"]

    def on_days(self) -> np.ndarray:
        """Switchback: boolean per test day, True where the ads run."""
        if not self.periods or self.period_hours is None:
            raise ExperimentDesignError("on_days() applies to switchback designs")
        per = self.period_hours // 24
        return np.repeat([p.ads_on for p in self.periods], per)


# ------------------------------------------------------------------------------ helpers


def _rng(seed: int, *labels: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(x.encode()) for x in labels)])


def stratified_pick(
    n_units: int, n_pick: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cut positions 0..n_units-1 into `n_pick` contiguous, near-equal strata and draw one
    position per stratum. Returns (picked mask, stratum of each position)."""
    strata = np.empty(n_units, dtype=int)
    picked = np.zeros(n_units, dtype=bool)
    for s, block in enumerate(np.array_split(np.arange(n_units), n_pick)):
        strata[block] = s
        picked[rng.choice(block)] = True
    return picked, strata


def assign_geos(
    geos: tuple[str, ...], pre_daily: np.ndarray, n_control: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified geo assignment: (control mask, stratum) in the order of `geos`."""
    order = np.lexsort((np.array(geos), -pre_daily))  # by sales, ties by geo id
    picked, strata = stratified_pick(len(geos), n_control, _rng(seed, "geo-assign"))
    control = np.zeros(len(geos), dtype=bool)
    stratum = np.empty(len(geos), dtype=int)
    control[order] = picked
    stratum[order] = strata
    return control, stratum


def balance(pre_daily: np.ndarray, control: np.ndarray) -> Balance:
    x = np.log(np.maximum(pre_daily, 1e-9))
    xt, xc = x[~control], x[control]
    pooled = math.sqrt((xt.var(ddof=1) + xc.var(ddof=1)) / 2) if min(xt.size, xc.size) > 1 else 0
    smd = float((xt.mean() - xc.mean()) / pooled) if pooled > 0 else 0.0
    return Balance(
        smd_log_sales=round(smd, 4),
        control_sales_share=round(float(pre_daily[control].sum() / pre_daily.sum()), 4),
        balanced=abs(smd) < BALANCE_SMD,
    )


@dataclass
class _Rules:
    """The retailer's measurement rules with their sources, and how to refuse a request."""

    retailer: str
    policy: RetailerPolicy
    checks: list[RuleCheck] = field(default_factory=list)

    def source(self, rule: str) -> str:
        return self.policy.source_for("measurement", rule) or f"{self.retailer} measurement policy"

    def refuse(self, rule: str, message: str, value: Any, limit: Any) -> MeasurementRuleError:
        src = self.source(rule)
        return MeasurementRuleError(
            f"{message} ({self.retailer}'s measurement policy, rule {rule}; source: {src})",
            retailer=self.retailer,
            rule=rule,
            value=value,
            limit=limit,
            source=src,
        )

    def ok(self, rule: str, requirement: str, value: Any) -> None:
        self.checks.append(
            RuleCheck(
                rule=rule, requirement=requirement, value=str(value), source=self.source(rule)
            )
        )


@dataclass(frozen=True)
class _Request:
    """What was asked of one design, after the checks common to every design type."""

    retailer: str
    brand: str | None
    pre: GeoPanel
    budget: float
    pace: float
    expected_iroas: float | None
    duration_days: int | None
    holdout_pct: float | None
    period_hours: int | None
    start: date
    alpha: float
    target_power: float
    seed: int
    weekly: bool
    policy: RetailerPolicy


def _pct(x: float) -> str:
    return f"{100 * x:.4g}%"


def _usd(x: float) -> str:
    return f"${x:,.0f}"


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
    alpha: float = 0.05,
    target_power: float = 0.8,
    running_tests: int = 0,
    seed: int = 0,
    policy: RetailerPolicy | None = None,
) -> ExperimentDesign:
    """Design the experiment for a reserve of `budget` USD at `retailer`.

    `pre` holds geo sales before the test (the test starts the day after it unless `start`
    says otherwise). `daily_spend` is the test's pace (default: `budget / flight_days`);
    `expected_iroas` is the prior the power is judged at. Leave `experiment_type`,
    `duration_days`, `holdout_pct` and `period_hours` unset to let the design choose them
    within the retailer's rules; set them to have them checked against those rules."""
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
    policy = policy or load_retailer_policy(retailer)
    m = policy.measurement
    rules = _Rules(retailer, policy)
    weekly = pre.period_days == 7 or "date" not in policy.data_access.allowed_dimensions
    if start is None:
        start = pre.end + timedelta(days=1)
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

    if running_tests >= m.max_concurrent_tests:
        raise rules.refuse(
            "max_concurrent_tests",
            f"the brand already runs {running_tests} test(s) at {retailer}; at most "
            f"{m.max_concurrent_tests} may run at once",
            running_tests,
            m.max_concurrent_tests,
        )
    rules.ok("max_concurrent_tests", f"at most {m.max_concurrent_tests} at once", running_tests + 1)

    allowed = list(m.allowed_experiment_types)
    names = ", ".join(t.value for t in allowed)
    if experiment_type is not None:
        try:
            wanted = ExperimentType(experiment_type)
        except ValueError:
            raise ExperimentDesignError(
                f"unknown experiment type {experiment_type!r}; types: "
                + ", ".join(t.value for t in ExperimentType)
            ) from None
        if wanted not in allowed:
            raise rules.refuse(
                "allowed_experiment_types",
                f"{retailer} does not accept {wanted.value} tests; it accepts {names}",
                wanted.value,
                [t.value for t in allowed],
            )
        if wanted not in SUPPORTED_TYPES:
            raise ExperimentDesignError(
                f"{wanted.value} tests are set up by the retailer on its own audience or data; "
                f"this designer builds {', '.join(t.value for t in SUPPORTED_TYPES)}",
                experiment_type=wanted.value,
            )
        candidates = [wanted]
    elif period_hours is not None:
        # A period length only means something for a switchback: design that or refuse.
        if ExperimentType.SWITCHBACK not in allowed:
            raise rules.refuse(
                "allowed_experiment_types",
                f"{retailer} does not accept switchback tests (asked for by the period length); "
                f"it accepts {names}",
                ExperimentType.SWITCHBACK.value,
                [t.value for t in allowed],
            )
        candidates = [ExperimentType.SWITCHBACK]
    else:
        candidates = [t for t in SUPPORTED_TYPES if t in allowed]
        if not candidates:
            raise rules.refuse(
                "allowed_experiment_types",
                f"{retailer} accepts only {names}, none of which is a geo holdout or switchback",
                None,
                [t.value for t in allowed],
            )

    req = _Request(
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
    )
    designs: list[ExperimentDesign] = []
    errors: list[RMNError] = []
    for t in candidates:
        r = _Rules(retailer, policy, list(rules.checks))
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
    # Where several designs are allowed, the one that detects the smallest iROAS wins.
    return min(designs, key=lambda d: (d.mde_iroas, d.duration_days))


def _durations(rules: _Rules, weekly: bool, requested: int | None, unit_days: int) -> list[int]:
    """Test lengths the rules allow (whole weeks where the clean room reports by week, whole
    periods for a switchback), or the requested one after checking it."""
    m = rules.policy.measurement
    step = math.lcm(7 if weekly else 1, unit_days)
    if requested is not None:
        if not m.min_test_days <= requested <= m.max_test_days:
            rule = "min_test_days" if requested < m.min_test_days else "max_test_days"
            raise rules.refuse(
                rule,
                f"a {requested}-day test is outside the allowed {m.min_test_days}-"
                f"{m.max_test_days} days",
                requested,
                [m.min_test_days, m.max_test_days],
            )
        if requested % step:
            why = (
                "whole weeks (the clean room reports this retailer by week)"
                if weekly
                else (f"whole {unit_days}-day switchback periods")
            )
            raise ExperimentDesignError(
                f"a {requested}-day test does not divide into {why}; use a multiple of {step}",
                duration_days=requested,
            )
        return [requested]
    lo = -(-m.min_test_days // step) * step
    out = list(range(lo, m.max_test_days + 1, step))
    if not out:
        raise ExperimentDesignError(
            f"no test length between {m.min_test_days} and {m.max_test_days} days is a multiple "
            f"of {step} days"
        )
    return out


def _holdout_count(rules: _Rules, n_units: int, requested: float | None, what: str) -> int:
    """Units held out: the requested share (checked) or the largest the rules allow, since a
    larger control group always lowers the detectable effect below a 50% split."""
    m = rules.policy.measurement
    lo_n = max(2, math.ceil(m.min_holdout_pct * n_units - 1e-9))
    hi_n = min(n_units - 2, math.floor(m.max_holdout_pct * n_units + 1e-9))
    if requested is not None and not m.min_holdout_pct <= requested <= m.max_holdout_pct:
        rule = "min_holdout_pct" if requested < m.min_holdout_pct else "max_holdout_pct"
        raise rules.refuse(
            rule,
            f"a holdout of {_pct(requested)} of {what} is outside the allowed "
            f"{_pct(m.min_holdout_pct)}-{_pct(m.max_holdout_pct)}",
            requested,
            [m.min_holdout_pct, m.max_holdout_pct],
        )
    if lo_n > hi_n:
        raise rules.refuse(
            "max_holdout_pct",
            f"with {n_units} {what}, no holdout of at least 2 lies within "
            f"{_pct(m.min_holdout_pct)}-{_pct(m.max_holdout_pct)}",
            n_units,
            [m.min_holdout_pct, m.max_holdout_pct],
        )
    if requested is None:
        return hi_n
    return int(np.clip(round(requested * n_units), lo_n, hi_n))


def _choose(
    durations: list[int],
    power: np.ndarray | None,
    affordable: np.ndarray,
    target: float,
) -> int:
    """Shortest affordable test reaching the target power; else the most powerful affordable."""
    idx = np.flatnonzero(affordable)
    if power is not None:
        good = idx[power[idx] >= target]
        if good.size:
            return int(good[0])
        return int(idx[np.argmax(power[idx])])
    return int(idx[-1])


def _budget_line(
    d: ExperimentDesign, unit: str, expected_lift: float | None, pw: float | None
) -> str:
    if d.expected_iroas is None or expected_lift is None or pw is None:
        return (
            f"No expected iROAS was given: the test detects an iROAS of {d.mde_iroas:.2f} "
            f"(a {_pct(d.mde_lift)} lift) with {_pct(d.target_power)} power."
        )
    head = (
        f"At an expected iROAS of {d.expected_iroas:.2f} the test spend of {_usd(d.test_spend)} "
        f"should lift treated {unit} sales by {_pct(expected_lift)}; power is {_pct(pw)}."
    )
    if pw >= d.target_power:
        return head + f" The smallest detectable iROAS is {d.mde_iroas:.2f}."
    need = (
        f" About {_usd(d.budget_for_target_power)} of test spend would reach it."
        if d.budget_for_target_power
        else ""
    )
    return (
        head + f" The reserve cannot reach {_pct(d.target_power)} power: at this budget the test "
        f"detects only an iROAS of {d.mde_iroas:.2f} (a {_pct(d.mde_lift)} lift)." + need
    )


def _geo_holdout(req: _Request, rules: _Rules) -> ExperimentDesign:
    retailer, brand, pre, budget, pace = req.retailer, req.brand, req.pre, req.budget, req.pace
    expected_iroas, start, alpha, seed = req.expected_iroas, req.start, req.alpha, req.seed
    target_power, policy, weekly = req.target_power, req.policy, req.weekly
    m = policy.measurement
    G = len(pre.geos)
    durations = _durations(rules, weekly, req.duration_days, 1)
    n_c = _holdout_count(rules, G, req.holdout_pct, "geos")
    n_t = G - n_c

    daily = pre.daily()
    level = daily[:, -min(BASELINE_DAYS, daily.shape[1]) :].mean(axis=1)
    pre_mean = daily.mean(axis=1)
    control, stratum = assign_geos(pre.geos, pre_mean, n_c, seed)
    bal = balance(pre_mean, control)
    baseline = float(level[~control].sum())

    # The readout's regression: intercept and log pre-period level besides the treatment flag.
    covariates = np.column_stack([np.ones(G), np.log(np.maximum(pre_mean, 1e-9))])
    deff = design_effect(~control, covariates)
    df = G - 1 - covariates.shape[1]
    model = geo_noise_model(daily)
    es = detectable_effect_size(n_t, n_c, alpha, target_power, df)
    days = np.array(durations)
    sd = np.sqrt(model.variance(days))
    sd_eff = sd * math.sqrt(deff)
    mde_lift = np.expm1(es * sd_eff)
    mde_iroas = mde_lift * baseline / pace
    spend = pace * days
    affordable = spend <= budget * (1 + 1e-9)
    if not affordable.any():
        raise rules.refuse(
            "min_test_days",
            f"the reserve of {_usd(budget)} at {_usd(pace)} a day lasts "
            f"{budget / pace:.1f} days, shorter than the shortest allowed test "
            f"({durations[0]} days)",
            round(budget / pace, 2),
            m.min_test_days,
        )
    exp_lift = pace * expected_iroas / baseline if expected_iroas else None
    pw = None
    if exp_lift is not None:
        pw = power_at(np.log1p(exp_lift) / sd_eff, n_t, n_c, alpha, df)
    i = _choose(durations, pw, affordable, target_power)
    d = durations[i]
    rules.ok("min_test_days", f"at least {m.min_test_days} days", d)
    rules.ok("max_test_days", f"at most {m.max_test_days} days", d)
    share = n_c / G
    rules.ok("min_holdout_pct", f"at least {_pct(m.min_holdout_pct)} of geos held out", _pct(share))
    rules.ok("max_holdout_pct", f"at most {_pct(m.max_holdout_pct)} of geos held out", _pct(share))

    need = None
    if expected_iroas:
        # Spend whose lift equals the MDE at this length: lift = pace * iROAS / baseline.
        need = float(mde_lift[i] * baseline * d / expected_iroas)
    geos = [
        GeoAssignment(
            geo=g,
            group="control" if control[j] else "treatment",
            stratum=int(stratum[j]),
            pre_daily_sales=round(float(daily[j].mean()), 2),
        )
        for j, g in enumerate(pre.geos)
    ]
    design = ExperimentDesign(
        retailer=retailer,
        brand=brand,
        experiment_type=ExperimentType.GEO_HOLDOUT,
        seed=seed,
        start=start,
        end=start + timedelta(days=d - 1),
        duration_days=d,
        budget=budget,
        daily_spend=pace,
        test_spend=min(float(spend[i]), budget),
        holdout_pct=share,
        n_treatment=n_t,
        n_control=n_c,
        geos=geos,
        balance=bal,
        alpha=alpha,
        target_power=target_power,
        noise_sd=float(sd[i]),
        design_effect=deff,
        residual_df=df,
        pre_correlation=model.correlation(d),
        baseline_daily_sales=baseline,
        mde_lift=float(mde_lift[i]),
        mde_incremental_revenue=float(mde_lift[i] * baseline * d),
        mde_iroas=float(mde_iroas[i]),
        expected_iroas=expected_iroas,
        expected_lift=exp_lift,
        power=float(pw[i]) if pw is not None else None,
        adequate=bool(pw[i] >= target_power) if pw is not None else None,
        budget_for_target_power=need,
        options=_options(durations, spend, mde_lift, mde_iroas, pw, d),
        rules=rules.checks,
        rationale="",
    )
    pop = float(level[control].sum() / level.sum())
    design.rationale = (
        f"Geo holdout at {retailer}: {n_c} of {G} DMAs ({_pct(share)}, {_pct(pop)} of sales) "
        f"held out for {d} days from {start}, one drawn at random from each of {n_c} strata of "
        f"DMAs ranked by pre-period sales (seed {seed}); control and treatment differ by "
        f"{bal.smd_log_sales:+.2f} sd in log sales. The readout regresses each DMA's test-period "
        f"log sales on its pre-period level (placebo pre/test correlation "
        f"{design.pre_correlation:.3f}); residual noise {design.noise_sd:.3f} on the log scale. "
        + _budget_line(design, "DMA", exp_lift, design.power)
    )
    return design


def _options(
    durations: list[int],
    spend: np.ndarray,
    mde_lift: np.ndarray,
    mde_iroas: np.ndarray,
    power: np.ndarray | None,
    chosen: int,
) -> list[DurationOption]:
    """A handful of test lengths (every week, and the chosen one) for the power curve."""
    keep = [j for j, d in enumerate(durations) if d % 7 == 0 or d == chosen or j == 0]
    return [
        DurationOption(
            duration_days=durations[j],
            test_spend=float(spend[j]),
            mde_lift=float(mde_lift[j]),
            mde_iroas=float(mde_iroas[j]),
            power=float(power[j]) if power is not None else None,
        )
        for j in keep
    ]


def _switchback(req: _Request, rules: _Rules) -> ExperimentDesign:
    retailer, brand, pre, budget, pace = req.retailer, req.brand, req.pre, req.budget, req.pace
    expected_iroas, start, alpha, seed = req.expected_iroas, req.start, req.alpha, req.seed
    target_power, policy, weekly = req.target_power, req.policy, req.weekly
    m = policy.measurement
    min_h = m.switchback_min_period_hours or 24
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
    if weekly and hours % (7 * 24):
        raise ExperimentDesignError(
            f"{retailer}'s clean room reports by week, so switchback periods must be whole weeks"
        )
    per_days = hours // 24
    durations = _durations(rules, weekly, req.duration_days, per_days)

    national = pre.daily().sum(axis=0)
    baseline = float(national[-min(BASELINE_DAYS, national.size) :].mean())
    rng_labels = ("switchback", retailer)
    rows = []
    for d in durations:
        n = d // per_days
        n_off = _holdout_count(rules, n, req.holdout_pct, "periods")
        off, _ = stratified_pick(n, n_off, _rng(seed, *rng_labels, str(n)))
        X = dow_trend_matrix(start.weekday(), n, per_days)
        deff = design_effect(~off, X)
        df = n - 1 - X.shape[1]
        sd = switchback_noise_sd(national, pre.start.weekday(), n, per_days) * math.sqrt(deff)
        es = detectable_effect_size(n - n_off, n_off, alpha, target_power, df)
        rows.append((n, n - n_off, n_off, sd, es, off, deff, df))
    sd = np.array([r[3] for r in rows])
    n_on = np.array([r[1] for r in rows])
    es = np.array([r[4] for r in rows])
    mde_lift = np.expm1(es * sd)
    mde_iroas = mde_lift * baseline / pace
    spend = pace * n_on * per_days
    affordable = spend <= budget * (1 + 1e-9)
    if not affordable.any():
        raise rules.refuse(
            "min_test_days",
            f"the reserve of {_usd(budget)} at {_usd(pace)} a day lasts "
            f"{budget / pace:.1f} ads-on days, fewer than the shortest allowed test needs",
            round(budget / pace, 2),
            m.min_test_days,
        )
    exp_lift = pace * expected_iroas / baseline if expected_iroas else None
    pw = None
    if exp_lift is not None:
        pw = np.array(
            [power_at(np.log1p(exp_lift) / r[3], r[1], r[2], alpha, r[7]).item() for r in rows]
        )
    i = _choose(durations, pw, affordable, target_power)
    d = durations[i]
    n, k_on, k_off, _, _, off, deff, df = rows[i]
    share = k_off / n
    rules.ok("switchback_min_period_hours", f"periods of at least {min_h} h", f"{hours} h")
    rules.ok("min_test_days", f"at least {m.min_test_days} days", d)
    rules.ok("max_test_days", f"at most {m.max_test_days} days", d)
    rules.ok(
        "min_holdout_pct",
        f"at least {_pct(m.min_holdout_pct)} held out",
        f"{_pct(share)} of periods",
    )
    rules.ok(
        "max_holdout_pct",
        f"at most {_pct(m.max_holdout_pct)} held out",
        f"{_pct(share)} of periods",
    )

    t0 = datetime.combine(start, time(0))
    periods = [
        SwitchbackPeriod(
            index=j, start=t0 + timedelta(hours=j * hours), hours=hours, ads_on=not bool(off[j])
        )
        for j in range(n)
    ]
    need = (
        float(mde_lift[i] * baseline * k_on * per_days / expected_iroas) if expected_iroas else None
    )
    design = ExperimentDesign(
        retailer=retailer,
        brand=brand,
        experiment_type=ExperimentType.SWITCHBACK,
        seed=seed,
        start=start,
        end=start + timedelta(days=d - 1),
        duration_days=d,
        budget=budget,
        daily_spend=pace,
        test_spend=min(float(spend[i]), budget),
        holdout_pct=share,
        n_treatment=k_on,
        n_control=k_off,
        periods=periods,
        period_hours=hours,
        alpha=alpha,
        target_power=target_power,
        noise_sd=float(sd[i] / math.sqrt(deff)),
        design_effect=deff,
        residual_df=df,
        baseline_daily_sales=baseline,
        mde_lift=float(mde_lift[i]),
        mde_incremental_revenue=float(mde_lift[i] * baseline * k_on * per_days),
        mde_iroas=float(mde_iroas[i]),
        expected_iroas=expected_iroas,
        expected_lift=exp_lift,
        power=float(pw[i]) if pw is not None else None,
        adequate=bool(pw[i] >= target_power) if pw is not None else None,
        budget_for_target_power=need,
        options=_options(durations, spend, mde_lift, mde_iroas, pw, d),
        rules=rules.checks,
        rationale="",
    )
    design.rationale = (
        f"Switchback at {retailer}: {n} periods of {hours} h from {start}, ads off in {k_off} "
        f"({_pct(share)}), one drawn at random from each of {k_off} blocks of consecutive "
        f"periods (seed {seed}). The readout compares log daily sales in on and off periods "
        f"after trend and day-of-week terms; residual noise {design.noise_sd:.3f} on the log "
        f"scale. It measures the same-period effect: sales that ads cause in later periods "
        f"(the attribution window is {m.click_attribution_days} days after a click) spill into "
        f"off periods and pull the estimate toward zero. "
        + _budget_line(design, "site", exp_lift, design.power)
    )
    return design
