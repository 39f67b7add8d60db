"""measurement: the experiment for the plan's reserve (geo holdout or switchback; assignment,
duration, power and minimum detectable effect) within the retailer's measurement rules, and
the rationale a manager reads on it (what the experiment can and cannot tell), written by the
model from the design's facts and the retailer's retrieved measurement rules, citing them
(`tools.plan.rationale`)."""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.llm import node_model
from graph.state import State
from graph.steps import Update, context_of, progress, step
from tools.pipeline import MeasurementRequest, design_measurement
from tools.pipeline.query import DEFAULT_FLIGHT_DAYS
from tools.plan import Plan
from tools.plan.rationale import experiment_request, write_texts


@step("measurement")
def measurement(state: State, runtime: Runtime[Context]) -> Update:
    ctx = context_of(runtime)
    plan = Plan.model_validate(state.plan)
    expected = plan.expected_outcome
    iroas = expected.iroas.mean if expected is not None and expected.iroas.mean > 0 else None
    result = design_measurement(
        MeasurementRequest(
            data_dir=ctx.data_path(),
            tenant=plan.tenant,
            brand=plan.brief.brand_id,
            allocation=plan.allocation,
            reserve=expected.reserve if expected is not None else 0.0,
            flight_days=(state.query_plan or {}).get("flight_days", DEFAULT_FLIGHT_DAYS),
            expected_iroas=iroas,
            seed=ctx.seed,
        )
    )
    plan.experiment = result.experiment
    plan.rationale = [t for t in plan.rationale if t.kind != "experiment"]
    adapters: list[str] = []
    request = experiment_request(plan, state.retrieved or [], tenant=ctx.tenant)
    if request is not None:
        progress(runtime, "measurement")("writing what the experiment can tell")
        [text] = write_texts(node_model(ctx, "measurement"), [request])
        plan, adapters = plan.with_text(text), text.adapters
    return {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "measurement_notes": result.notes,
        "status": "measured",
        "adapters": {"measurement": adapters},
    }
