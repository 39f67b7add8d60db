"""What an experiment design is made of: the refusals it can raise and the typed result it
returns (`ExperimentDesign`, with its geo assignment or switchback periods, balance, power
curve and the retailer rules it was checked against)."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from tools.errors import RMNError
from tools.measurement.power import power_at
from tools.policy import ExperimentType


class MeasurementRuleError(RMNError):
    """A requested experiment that breaks the retailer's measurement policy."""

    kind = "measurement_rule"


class ExperimentDesignError(RMNError):
    """A request the designer cannot turn into an experiment (bad input, unsupported design)."""

    kind = "experiment_design_error"


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
