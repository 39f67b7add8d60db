"""Plan comparison on simulated worlds: the oracle, our plans on the full and the
clean-room-only views, and two naive splits, all scored against the simulator's truth.

summary = evaluate_plans(EvalSettings(worlds=20, events=300_000))
"""

from tools.evaluate.plans import (
    METRICS,
    PLANS,
    SHARE_TARGET,
    EvalSettings,
    PlanOutcome,
    WorldResult,
    evaluate_plans,
    evaluate_world,
    interval,
    oracle_curves,
    roas_proportional,
    summarize,
)

__all__ = [
    "METRICS",
    "PLANS",
    "SHARE_TARGET",
    "EvalSettings",
    "PlanOutcome",
    "WorldResult",
    "evaluate_plans",
    "evaluate_world",
    "interval",
    "oracle_curves",
    "roas_proportional",
    "summarize",
]
