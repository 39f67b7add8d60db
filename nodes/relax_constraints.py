"""relax_constraints: why the brief cannot be met and what would work, shown to a human, who
answers with an edit that relaxes a constraint (e.g. {'action': 'edit', 'changes':
{'roas_floor': 2.0}}) or a rejection. The edit goes back to the optimizer, or to the clean
room when it needs curves that were not fitted."""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import State
from graph.steps import (
    Update,
    ask_review,
    context_of,
    curves_of,
    decided,
    replan,
    reviewed,
    step,
)
from tools.pipeline import known_gtins
from tools.plan import Plan


@step("relax_constraints")
def relax_constraints(state: State, runtime: Runtime[Context]) -> Update:
    parsed = state.parsed or {}
    constraints = state.constraints or {}
    diagnosis = state.diagnosis or {}
    gtins = known_gtins(curves_of(state, runtime))
    question = {
        "kind": "infeasible",
        "thread_id": state.thread_id,
        "tenant": state.tenant,
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
    if review.action == "reject" or new_parsed is None or new_constraints is None:
        return decided(Plan.model_validate(state.plan), reviewed(review))
    return replan(new_parsed, new_constraints, context_of(runtime).tenant, state.curves)
