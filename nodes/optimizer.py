"""optimizer: the brief's budget allocated over the fitted curves, under its constraints and
the reviewer's (retailer caps, excluded SKUs), and the rationale a manager reads (why this
split, what binds), written by the model from the allocation's facts and the retailers'
retrieved spend rules, citing them (`tools.plan.rationale`). A brief that cannot be met goes
to `relax_constraints`, which shows the diagnosis and asks a human to relax a constraint or
stop.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.llm import node_model
from graph.state import State, stale_after_allocation
from graph.steps import Update, context_of, curves_of, progress, step
from tools.brief import StructuredBrief
from tools.pipeline import AllocationRequest, plan_allocation
from tools.plan import Plan
from tools.plan.rationale import allocation_request, write_texts


@step("optimizer")
def optimizer(state: State, runtime: Runtime[Context]) -> Update:
    ctx = context_of(runtime)
    brief = StructuredBrief.model_validate(state.parsed)
    constraints = state.constraints or {}
    result = plan_allocation(
        curves_of(state, runtime),
        AllocationRequest(
            brief=brief,
            retailer_caps=constraints.get("retailer_caps") or {},
            excluded_skus=constraints.get("excluded_skus") or [],
            min_spend_fraction=constraints.get("min_spend_fraction"),
        ),
    )
    # A new allocation makes everything downstream of it stale, in the plan and in the state.
    plan = Plan.model_validate(state.plan).with_allocation(
        brief=brief,
        allocation=result.rows,
        expected_outcome=result.expected,
        shadow_prices=result.shadow_prices,
        solver_status=result.solver_status,
    )
    update: Update = {**stale_after_allocation(), "allocation_notes": result.notes}
    if result.status == "infeasible":
        return update | {
            "plan": plan.model_dump(mode="json", by_alias=True),
            "status": "infeasible",
            "diagnosis": result.diagnosis,
        }
    progress(runtime, "optimizer")("writing why this split")
    request = allocation_request(plan, state.retrieved or [], tenant=ctx.tenant)
    [text] = write_texts(node_model(ctx, "optimizer"), [request])
    plan = plan.with_text(text)
    return update | {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "status": "optimized",
        "diagnosis": None,
        "signals": {
            "curve_cv": result.revenue_cv,
            "coverage": result.coverage,
            "constraint_slack": result.constraint_slack,
        },
        "adapters": {"optimizer": text.adapters},
    }
