"""reflection: the reflection record of the plan. Its confidence is computed from measured
signals (curve uncertainty, data coverage, constraint slack, governance flags); the model, under
the brand and planning adapters, writes only the words (`tools.plan.reflection`). Memory references
come from the tenant's own past decisions."""

from __future__ import annotations

from typing import Any

from graph.llm import available_adapters, chat_model
from nodes import Update, context_of, state_get, step
from nodes.finalize import decisions_path
from nodes.human_approval import auto_approval


@step("reflection")
def reflection(state: Any, runtime: Any) -> Update:
    from tools.plan import Plan
    from tools.plan.decisions import DecisionStore
    from tools.plan.reflection import REFLECTION_TASK, reflect, signals_from

    ctx = context_of(runtime)
    plan = Plan.model_validate(state_get(state, "plan"))
    tenant = state_get(state, "tenant")
    flags = state_get(state, "flags") or []
    measured = state_get(state, "signals") or {}
    signals = signals_from(plan, measured.get("curve_cv"), measured.get("coverage"), len(flags))
    memory = DecisionStore(decisions_path(ctx.data_path())).similar(tenant, plan.brief, k=3)
    llm = chat_model(ctx) if ctx.reflect_with_model else None
    names: list[str] = []
    task = REFLECTION_TASK if ctx.use_adapters else None
    if llm is not None:
        # `reflect` binds its own task adapter (none by default: the words read better on the
        # base model); the brand adapter is not used for these words.
        if task is not None and available_adapters(llm, tenant=tenant, task=task)["task"]:
            names = [f"task/{task}"]
        else:
            task = None
        meta = {"tenant": tenant, "node": "reflection", "adapters": names}
        llm = llm.model_copy(
            update={"tags": [f"tenant:{tenant}", "node:reflection"], "metadata": meta}
        )
    plan.reflection = reflect(plan, signals, memory, llm, ctx.confidence_threshold, task=task)
    automatic, _ = auto_approval(plan, flags, ctx)
    return {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "memory": list(memory),
        "status": "approving" if automatic else "awaiting_approval",
        "adapters": {"reflection": names},
    }
