"""Experiments for a plan's measurement reserve: design (geo holdout, switchback), power and
minimum detectable effect, lift readout with confidence intervals, and the clean-room SQL
that feeds it. Validation by simulation lives in `tools.measurement.bench`.

from tools.measurement import design_experiment, read_out
design = design_experiment("alpha", pre_panel, budget=250_000, expected_iroas=3.0, seed=1)
readout = read_out(design, full_panel, test_spend=actual_spend)
"""

from tools.measurement.assignment import assign_geos
from tools.measurement.design import design_experiment
from tools.measurement.models import (
    Balance,
    DurationOption,
    ExperimentDesign,
    ExperimentDesignError,
    GeoAssignment,
    MeasurementRuleError,
    RuleCheck,
    SwitchbackPeriod,
)
from tools.measurement.panel import GeoPanel
from tools.measurement.power import (
    InsufficientHistoryError,
    NoiseModel,
    detectable_effect_size,
    geo_noise_model,
    power_at,
)
from tools.measurement.readout import LiftReadout, read_out
from tools.measurement.sql import (
    GEO_SALES_COLUMNS,
    GeoPeriodResult,
    geo_period_params,
    geo_period_sql,
    run_geo_period_query,
)

__all__ = [
    "GEO_SALES_COLUMNS",
    "Balance",
    "DurationOption",
    "ExperimentDesign",
    "ExperimentDesignError",
    "GeoAssignment",
    "GeoPanel",
    "GeoPeriodResult",
    "InsufficientHistoryError",
    "LiftReadout",
    "MeasurementRuleError",
    "NoiseModel",
    "RuleCheck",
    "SwitchbackPeriod",
    "assign_geos",
    "design_experiment",
    "detectable_effect_size",
    "geo_noise_model",
    "geo_period_params",
    "geo_period_sql",
    "power_at",
    "read_out",
    "run_geo_period_query",
]
