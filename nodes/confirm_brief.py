"""confirm_brief: a brief the parser had doubts about, shown to a human, who approves it as
read, edits its fields, or rejects it. An invalid answer is explained and asked again."""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import State
from graph.steps import Update, ask_review, context_of, decided, reviewed, step
from tools.brief import StructuredBrief
from tools.pipeline import query_plan, retrieve_rules
from tools.plan import Plan


@step("confirm_brief")
def confirm_brief(state: State, runtime: Runtime[Context]) -> Update:
    ctx = context_of(runtime)
    parsed = state.parsed or {}
    brief = StructuredBrief.model_validate(parsed)
    question = {
        "kind": "confirm_brief",
        "thread_id": state.thread_id,
        "tenant": state.tenant,
        "brief": brief.shown(),
        "defaults": brief.defaults,
        "parsed_by": brief.parsed_by,
        "warnings": brief.warnings,
        "actions": {
            "approve": "plan the brief as read",
            "edit": "correct fields, e.g. {'action': 'edit', 'changes': {'roas_floor': 3.0}}",
            "reject": "stop, with a reason",
        },
    }
    review, new_parsed, constraints = ask_review(question, parsed, state.constraints or {})
    if review.action == "reject":
        return decided(Plan.model_validate(state.plan), reviewed(review))
    if review.action == "approve" or new_parsed is None:
        return {"status": "planned", "next_step": "clean_room"}
    edited = StructuredBrief.model_validate(new_parsed)
    thread_id = state.thread_id or ""
    plan = Plan(thread_id=thread_id, tenant=ctx.tenant, brief_text=state.brief, brief=edited)
    update: Update = {
        "parsed": new_parsed,
        "constraints": constraints,
        "query_plan": query_plan(edited, ctx.tenant),
        "plan": plan.model_dump(mode="json", by_alias=True),
        "status": "planned",
        "next_step": "clean_room",
    }
    if edited.resolved_retailers() != brief.resolved_retailers():
        update["retrieved"] = retrieve_rules(
            ctx.tenant,
            edited.brand_id,
            edited.resolved_retailers(),
            k=ctx.retrieval_k,
            cache=ctx.cache_path(),
        )
    return update
