"""optimizer: the brief's budget allocated over the fitted curves, under its constraints and
the reviewer's (retailer caps, excluded SKUs). A brief that cannot be met goes to
`relax_constraints`, which shows the diagnosis and asks a human to relax a constraint or stop.
"""

from __future__ import annotations

from typing import Any

from nodes import (
    Update,
    ask_review,
    decision_entry,
    now,
    state_get,
    step,
)


def replan_target(old_parsed: dict[str, Any], new_parsed: dict[str, Any], curves: Any) -> str:
    """Where an edited brief goes: straight to the optimizer, or back to the clean room when
    it names a retailer no curves were fitted for or a flight of another length."""
    from nodes.planner import flight_days
    from tools.brief import StructuredBrief

    brief = StructuredBrief.model_validate(new_parsed)
    fitted = set((curves or {}).get("retailers") or [])
    same_flight = (curves or {}).get("flight_days") == flight_days(brief)
    return (
        "optimizer" if set(brief.resolved_retailers()) <= fitted and same_flight else "clean_room"
    )


def replanned_query(state: Any, new_parsed: dict[str, Any]) -> dict[str, Any]:
    """The clean-room query plan for an edited brief (its retailers and flight)."""
    from nodes.planner import query_plan
    from tools.brief import StructuredBrief

    return query_plan(StructuredBrief.model_validate(new_parsed), state_get(state, "tenant"))


@step("optimizer")
def optimizer(state: Any, runtime: Any) -> Update:
    from tools.brief import StructuredBrief
    from tools.pipeline import AllocationRequest, CurveSummary, plan_allocation
    from tools.plan import Plan

    brief = StructuredBrief.model_validate(state_get(state, "parsed"))
    constraints = state_get(state, "constraints") or {}
    curves = CurveSummary.model_validate(state_get(state, "curves"))
    result = plan_allocation(
        curves,
        AllocationRequest(
            brief=brief,
            retailer_caps=constraints.get("retailer_caps") or {},
            excluded_skus=constraints.get("excluded_skus") or [],
            min_spend_fraction=constraints.get("min_spend_fraction"),
        ),
    )
    plan = Plan.model_validate(state_get(state, "plan"))
    # A new allocation makes everything downstream of it stale.
    plan = plan.model_copy(
        update={
            "brief": brief,
            "allocation": result.rows,
            "expected_outcome": result.expected,
            "shadow_prices": result.shadow_prices,
            "solver_status": result.solver_status,
            "experiment": None,
            "copy_variants": [],
            "governance": [],
            "reflection": None,
            "decision": None,
            "status": "draft",
        }
    )
    update: Update = {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "creative_runs": 0,
        "governance_loops": 0,
        "copy_failures": [],
        "copy_missing": [],
        "rejected_copy": [],
        "flags": [],
        "review": None,
        "next_step": None,
    }
    if result.status == "infeasible":
        return update | {
            "status": "infeasible",
            "diagnosis": result.diagnosis,
            "allocation_notes": result.notes,
        }
    return update | {
        "status": "optimized",
        "diagnosis": None,
        "signals": {
            "curve_cv": result.revenue_cv,
            "coverage": result.coverage,
            "constraint_slack": result.constraint_slack,
        },
        "allocation_notes": result.notes,
    }


@step("relax_constraints")
def relax_constraints(state: Any, runtime: Any) -> Update:
    """Show why the brief cannot be met and what would work; resume with an edit that relaxes
    a constraint (e.g. {'action': 'edit', 'changes': {'roas_floor': 2.0}}) or a rejection."""
    from tools.pipeline import CurveSummary, known_gtins
    from tools.plan import Decision, Plan

    parsed = state_get(state, "parsed")
    constraints = state_get(state, "constraints") or {}
    diagnosis = state_get(state, "diagnosis") or {}
    gtins = known_gtins(CurveSummary.model_validate(state_get(state, "curves")))
    question = {
        "kind": "infeasible",
        "thread_id": state_get(state, "thread_id"),
        "tenant": state_get(state, "tenant"),
        "message": diagnosis.get("message"),
        "diagnosis": diagnosis,
        "suggestions": diagnosis.get("suggestions", []),
        "brief": {k: parsed[k] for k in parsed if k not in ("warnings", "parsed_by")},
        "constraints": constraints,
        "actions": {
            "edit": "relax a constraint, e.g. {'action': 'edit', 'changes': {'roas_floor': 2.0}}",
            "reject": "stop, with a reason",
        },
    }
    review, new_parsed, new_constraints = ask_review(
        question, parsed, constraints, allowed=("edit", "reject"), gtins=gtins
    )
    if review.action == "reject":
        plan = Plan.model_validate(state_get(state, "plan"))
        decision = Decision(action="reject", reason=review.reason, at=now())
        return {
            "status": "rejected",
            "next_step": "finalize",
            "decisions": [decision_entry(decision, plan)],
        }
    return {
        "parsed": new_parsed,
        "constraints": new_constraints,
        "query_plan": replanned_query(state, new_parsed),
        "status": "replanning",
        "next_step": replan_target(parsed, new_parsed, state_get(state, "curves")),
    }
