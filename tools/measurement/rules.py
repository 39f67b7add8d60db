"""A retailer's measurement rules as the designer applies them: which design types it may
build, the test lengths and holdout shares it may choose, and how it refuses a request that
breaks a rule (naming the rule and the policy section it comes from)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from tools.measurement.models import ExperimentDesignError, MeasurementRuleError, RuleCheck
from tools.measurement.panel import GeoPanel
from tools.policy import ExperimentType, RetailerPolicy

SUPPORTED_TYPES = (ExperimentType.GEO_HOLDOUT, ExperimentType.SWITCHBACK)


def pct(x: float) -> str:
    return f"{100 * x:.4g}%"


def usd(x: float) -> str:
    return f"${x:,.0f}"


@dataclass
class MeasurementRules:
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
            plain=message,  # for a person: the rule's name and its file are for logs
        )

    def check_range(self, name: str, value: float, lo: float, hi: float, message: str) -> None:
        """Refuse a requested `value` outside [lo, hi] under rule min_<name> or max_<name>."""
        if not lo <= value <= hi:
            rule = f"min_{name}" if value < lo else f"max_{name}"
            raise self.refuse(rule, message, value, [lo, hi])

    def ok(self, rule: str, requirement: str, value: Any) -> None:
        self.checks.append(
            RuleCheck(
                rule=rule, requirement=requirement, value=str(value), source=self.source(rule)
            )
        )


@dataclass(frozen=True)
class DesignRequest:
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
    days_left: int | None = None  # of the flight from the test's first day (None: undated)
    flight_days: int | None = None  # the flight the reserve's pace spreads over


def candidate_types(
    rules: MeasurementRules,
    experiment_type: ExperimentType | str | None,
    period_hours: int | None,
) -> list[ExperimentType]:
    """The design types to try: the requested one (checked), a switchback where only a period
    length was given, else every supported type the retailer accepts."""
    allowed = list(rules.policy.measurement.allowed_experiment_types)
    names = ", ".join(t.value for t in allowed)
    retailer = rules.retailer
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
        return [wanted]
    if period_hours is not None:
        # A period length only means something for a switchback: design that or refuse.
        if ExperimentType.SWITCHBACK not in allowed:
            raise rules.refuse(
                "allowed_experiment_types",
                f"{retailer} does not accept switchback tests (asked for by the period length); "
                f"it accepts {names}",
                ExperimentType.SWITCHBACK.value,
                [t.value for t in allowed],
            )
        return [ExperimentType.SWITCHBACK]
    candidates = [t for t in SUPPORTED_TYPES if t in allowed]
    if not candidates:
        raise rules.refuse(
            "allowed_experiment_types",
            f"{retailer} accepts only {names}, none of which is a geo holdout or switchback",
            None,
            [t.value for t in allowed],
        )
    return candidates


def allowed_durations(
    rules: MeasurementRules, weekly: bool, requested: int | None, unit_days: int
) -> list[int]:
    """Test lengths the rules allow (whole weeks where the clean room reports by week, whole
    periods for a switchback), or the requested one after checking it."""
    m = rules.policy.measurement
    step = math.lcm(7 if weekly else 1, unit_days)
    if requested is not None:
        rules.check_range(
            "test_days",
            requested,
            m.min_test_days,
            m.max_test_days,
            f"a {requested}-day test is outside the allowed {m.min_test_days}-"
            f"{m.max_test_days} days",
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


def holdout_count(rules: MeasurementRules, n_units: int, requested: float | None, what: str) -> int:
    """Units held out: the requested share (checked) or the largest the rules allow, since a
    larger control group always lowers the detectable effect below a 50% split."""
    m = rules.policy.measurement
    lo_n = max(2, math.ceil(m.min_holdout_pct * n_units - 1e-9))
    hi_n = min(n_units - 2, math.floor(m.max_holdout_pct * n_units + 1e-9))
    if requested is not None:
        rules.check_range(
            "holdout_pct",
            requested,
            m.min_holdout_pct,
            m.max_holdout_pct,
            f"a holdout of {pct(requested)} of {what} is outside the allowed "
            f"{pct(m.min_holdout_pct)}-{pct(m.max_holdout_pct)}",
        )
    if lo_n > hi_n:
        raise rules.refuse(
            "max_holdout_pct",
            f"with {n_units} {what}, no holdout of at least 2 lies within "
            f"{pct(m.min_holdout_pct)}-{pct(m.max_holdout_pct)}",
            n_units,
            [m.min_holdout_pct, m.max_holdout_pct],
        )
    if requested is None:
        return hi_n
    return int(np.clip(round(requested * n_units), lo_n, hi_n))
