"""optimizer: the brief's budget allocated over the fitted curves, under its constraints and
the reviewer's (retailer caps, excluded SKUs). A brief that cannot be met goes to
`relax_constraints`, which shows the diagnosis and asks a human to relax a constraint or stop.
A plan losing money after its ad spend also gets the budget that keeps the most margin, for
the reflection to say (`tools.plan.whatif.margin_pays_back`). Why this split is written in
`measurement`, with the experiment's text, in one model call.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import State, stale_after_allocation
from graph.steps import Update, curves_of, step
from tools.brief import StructuredBrief
from tools.pipeline import AllocationRequest, plan_allocation
from tools.plan import Plan
from tools.plan.whatif import margin_pays_back


@step("optimizer")
def optimizer(state: State, runtime: Runtime[Context]) -> Update:
    brief = StructuredBrief.model_validate(state.parsed)
    constraints = state.constraints or {}
    curves = curves_of(state, runtime)
    result = plan_allocation(
        curves,
        AllocationRequest(
            brief=brief,
            retailer_caps=constraints.get("retailer_caps") or {},
            retailer_mins=constraints.get("retailer_mins") or {},
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
        unfunded=result.unfunded,
        split_cost=result.split_cost,
    )
    update: Update = {**stale_after_allocation(), "allocation_notes": result.notes}
    if result.status == "infeasible":
        return update | {
            "plan": plan.model_dump(mode="json", by_alias=True),
            "status": "infeasible",
            "diagnosis": result.diagnosis,
        }
    e = result.expected
    # A plan losing money after its ad spend: where it would keep the most margin, for the
    # reflection to say (a few more solves, on losing plans only).
    pays_back = None
    if e is not None and e.incremental_margin.mean < e.spend:
        net = e.incremental_margin.mean - e.spend
        pays_back = margin_pays_back(curves, brief, constraints, net).model_dump()
    return update | {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "status": "optimized",
        "diagnosis": None,
        "signals": {
            "curve_cv": result.revenue_cv,
            "coverage": result.coverage,
            "constraint_slack": result.constraint_slack,
            "pays_back": pays_back,
        },
    }
