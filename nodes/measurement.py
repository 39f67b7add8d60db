"""measurement: the experiment for the plan's reserve (geo holdout or switchback; assignment,
duration, power and minimum detectable effect) within the retailer's measurement rules, then
the rationale a manager reads on the plan, written from facts tables and the retailers'
retrieved rules, citing them (`tools.plan.rationale`): why this split (the allocation's facts,
spend and bidding rules) and what the experiment can and cannot tell (the design's facts,
measurement rules). The model writes them after a worked example, the template where the
checks refuse its text or the context says so (`rationale_with_model`, see `graph.context`).

Both texts are written here, in one batched call, rather than one in `optimizer` and one here:
decoding on CPU is bound by reading the weights, so two rows of one batch cost about one row
(measured with `rmn bench e2e`: optimizer 7.5 s + measurement 6.5 s of mostly these texts,
one after the other)."""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.llm import node_model
from graph.state import State
from graph.steps import Update, context_of, progress, step
from tools.pipeline import MeasurementRequest, design_measurement
from tools.pipeline.query import DEFAULT_FLIGHT_DAYS
from tools.plan import Plan
from tools.plan.rationale import allocation_request, experiment_request, write_texts


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
            flight_start=plan.brief.flight_start,
            expected_iroas=iroas,
            seed=ctx.seed,
        )
    )
    plan.experiment = result.experiment
    plan.experiment_notes = result.reasons
    plan.rationale = [t for t in plan.rationale if t.kind not in ("allocation", "experiment")]
    retrieved = state.retrieved or []
    requests = [allocation_request(plan, retrieved, tenant=ctx.tenant)]
    experiment = experiment_request(plan, retrieved, tenant=ctx.tenant)
    if experiment is not None:
        requests.append(experiment)
    llm = node_model(ctx, "measurement")
    why = "no model" if llm is None else "rationale_with_model is off"
    llm = llm if ctx.rationale_with_model else None
    if llm is not None:
        progress(runtime, "measurement")(
            "writing why this split" + (" and what the experiment can tell" if experiment else "")
        )
    texts = write_texts(llm, requests, without_model=why)
    for text in texts:
        plan = plan.with_text(text)
    adapters = list(dict.fromkeys(a for t in texts for a in t.adapters))  # one task, one set
    return {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "measurement_notes": result.notes,
        "status": "measured",
        "adapters": {"measurement": adapters},
    }
