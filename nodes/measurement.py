"""measurement: the experiment for the plan's reserve (geo holdout or switchback; assignment,
duration, power and minimum detectable effect) within the retailer's measurement rules."""

from __future__ import annotations

from typing import Any

from nodes import Update, context_of, state_get, step


@step("measurement")
def measurement(state: Any, runtime: Any) -> Update:
    from tools.pipeline import MeasurementRequest, design_measurement
    from tools.plan import Plan

    ctx = context_of(runtime)
    plan = Plan.model_validate(state_get(state, "plan"))
    expected = plan.expected_outcome
    iroas = expected.iroas.mean if expected is not None and expected.iroas.mean > 0 else None
    result = design_measurement(
        MeasurementRequest(
            data_dir=ctx.data_path(),
            tenant=plan.tenant,
            brand=plan.brief.brand_id,
            allocation=plan.allocation,
            reserve=expected.reserve if expected is not None else 0.0,
            flight_days=(state_get(state, "query_plan") or {}).get("flight_days", 28),
            expected_iroas=iroas,
            seed=ctx.seed,
        )
    )
    plan.experiment = result.experiment
    return {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "measurement_notes": result.notes,
        "status": "measured",
    }
