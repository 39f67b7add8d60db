"""reflection: the reflection record of the plan. Its confidence, risks and mitigations are
computed from measured signals (curve uncertainty, data coverage, constraint slack, governance
flags); the model writes only the sentences (the main risk, a bias to check, another way to
read the plan) from those signals when the context lets it (`reflect_with_model`), each after a
worked example of its kind, under a grammar that admits only the signals' numbers
(`tools.plan.reflection_words`). Memory references come from the tenant's own past
decisions."""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.llm import node_model
from graph.state import State
from graph.steps import Update, approval_policy, context_of, progress, step
from tools.pipeline import product_names
from tools.plan import Plan
from tools.plan.approval import auto_approval
from tools.plan.decisions import DecisionStore, decisions_path
from tools.plan.reflection import reflect, signals_from


@step("reflection")
def reflection(state: State, runtime: Runtime[Context]) -> Update:
    ctx = context_of(runtime)
    plan = Plan.model_validate(state.plan)
    flags = state.flags or []
    measured = state.signals or {}
    names = product_names(ctx.data_path(), ctx.tenant, plan.brief.brand_id)
    signals = signals_from(
        plan, measured.get("curve_cv"), measured.get("coverage"), len(flags), names, flags,
        measured.get("pays_back"),
    )
    memory = DecisionStore(decisions_path(ctx.data_path())).similar(ctx.tenant, plan.brief, k=3)
    llm = node_model(ctx, "reflection") if ctx.reflect_with_model else None
    if llm is not None:
        progress(runtime, "reflection")("writing the risk, bias and alternative sentences")
    plan.reflection = reflect(plan, signals, memory, llm, ctx.confidence_threshold)
    automatic, _ = auto_approval(plan, flags, approval_policy(ctx))
    # The sentences are written on the base model (no adapters; `REFLECTION_TASK`).
    return {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "memory": list(memory),
        "status": "approving" if automatic else "awaiting_approval",
        "adapters": {"reflection": []},
    }
