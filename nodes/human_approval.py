"""human_approval: the plan shown for review (allocation, expected outcome with intervals,
experiment, copy, risks, confidence) and the reviewer's answer: approve, edit (back to the
optimizer with the changes) or reject (the plan ends rejected, the reason kept).

The auto-approve policy (off unless the context turns it on) skips the question only when the
plan's computed confidence reaches the threshold and nothing in it is flagged
(`tools.plan.approval`).
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import State
from graph.steps import (
    Update,
    approval_policy,
    ask_review,
    context_of,
    curves_of,
    decided,
    decision_entry,
    now,
    replan,
    reviewed,
    step,
)
from tools.pipeline import known_gtins
from tools.plan import Decision, Plan
from tools.plan.approval import AUTO_APPROVER, approval_summary, auto_approval


@step("human_approval")
def human_approval(state: State, runtime: Runtime[Context]) -> Update:
    ctx = context_of(runtime)
    policy = approval_policy(ctx)
    plan = Plan.model_validate(state.plan)
    flags = state.flags or []
    approved, why = auto_approval(plan, flags, policy)
    if approved:
        return decided(
            plan, Decision(action="auto_approve", reason=why, by=AUTO_APPROVER, at=now())
        )
    parsed = state.parsed or {}
    constraints = state.constraints or {}
    question = approval_summary(
        plan,
        policy,
        flags=flags,
        constraints=constraints,
        measurement_notes=state.measurement_notes or [],
    )
    gtins = known_gtins(curves_of(state, runtime))
    review, new_parsed, new_constraints = ask_review(question, parsed, constraints, gtins=gtins)
    decision = reviewed(review)
    if review.action != "edit" or new_parsed is None or new_constraints is None:
        return decided(plan, decision)
    return replan(new_parsed, new_constraints, ctx.tenant, state.curves) | {
        "decisions": [decision_entry(decision, plan)]
    }
