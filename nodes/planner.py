"""planner: the brief, parsed; the rules that apply to it, retrieved; what to ask the clean room.

The numbers come from the brief alone through the brief parser (the model's reading checked
field by field against the rules, or the rules alone on the test models): retrieved policy
text is read by later steps, never parsed for budgets or constraints, so instructions hidden in
it cannot move money. A parse with warnings goes to `confirm_brief`, which asks a human; so
does a budget far beyond what the brand's history at its retailers can absorb
(`tools.pipeline.capacity`). The brief arrives with its PII already redacted (`graph.state`).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from graph.context import Context
from graph.llm import bind_for_node, chat_model
from graph.state import State, per_plan_defaults
from graph.steps import Update, context_of, failed, step
from tools.brief import EMPTY_BRIEF, BriefError, StructuredBrief, brief_constraints, parse_brief
from tools.brief.llm import settled
from tools.errors import RMNError
from tools.pipeline import query_plan, retrieve_rules
from tools.pipeline.capacity import check_budget
from tools.plan import Plan
from tools.policy.ownership import check_brand_access, tenant_brands

if TYPE_CHECKING:
    from adapters.structured import OutputSchema


def parse(text: str, brand: str, ctx: Context) -> tuple[StructuredBrief, list[str]]:
    """(structured brief, adapters active). The bundled model points at the brief's spans under
    its planning adapter, code converts them, and the rules check the result; the test models
    leave it to the rules, whose reading is what would count anyway."""
    if ctx.model != "smollm2":
        return parse_brief(text, brand, path="rules"), []
    # The planning adapter alone: the brand adapters were trained on copy, and composed with
    # it they broke the span answers (model-only field accuracy on the unseen briefs 0.90
    # without them, 0.52 with them for the two brands that have one).
    llm, names = bind_for_node(
        chat_model(ctx),
        node="planner",
        tenant=ctx.tenant,
        use_adapters=ctx.use_adapters,
        task="planning",
        max_new_tokens=96,
    )
    assert llm is not None

    def generate_json(system: str, user: str, schema: OutputSchema) -> dict[str, Any] | None:
        out = llm.with_structured_output(schema).invoke([SystemMessage(system), HumanMessage(user)])
        return out if isinstance(out, dict) else None

    return parse_brief(text, brand, path="production", generate_json=generate_json), names


def with_capacity_warning(brief: StructuredBrief, ctx: Context) -> StructuredBrief:
    """The brief, with a warning (which asks a person at `confirm_brief`) when its budget is
    far beyond what the brand's history at its retailers can absorb (`check_budget`)."""
    check = check_budget(brief, data_dir=ctx.data_path())
    if check.warning is None:
        return brief
    return brief.model_copy(update={"warnings": [*brief.warnings, check.warning]})


@step("planner")
def planner(state: State, runtime: Runtime[Context]) -> Update:
    ctx = context_of(runtime)
    tenant = ctx.tenant
    info = runtime.execution_info
    thread_id = (
        (info.thread_id if info is not None else None) or state.thread_id or uuid.uuid4().hex
    )
    # A new brief on a thread that planned one starts the plan over; the earlier decisions
    # stay in `decisions` (and in the decision store).
    base = {"tenant": tenant, "thread_id": thread_id, **per_plan_defaults()}
    try:
        if not isinstance(state.brief, str):
            raise BriefError(f"the brief must be text, got {type(state.brief).__name__}")
        text = state.brief.strip()
        if not text:
            raise BriefError(EMPTY_BRIEF)
        # Ownership comes from the brand corpus; a tenant plans for its own brands only.
        brand = check_brand_access(tenant, state.brand_id, tenant_brands(tenant))
        brief, names = parse(text, brand, ctx)
        brief = with_capacity_warning(brief, ctx)
        retrieved = retrieve_rules(
            tenant, brand, brief.resolved_retailers(), k=ctx.retrieval_k, cache=ctx.cache_path()
        )
    except RMNError as err:
        return base | failed(err)
    plan = Plan(thread_id=thread_id, tenant=tenant, brief_text=state.brief, brief=brief)
    # Disagreements the text settled stay on the brief as notes; only real doubts ask a human.
    waiting = any(not settled(w) for w in brief.warnings)
    return base | {
        "brand_id": brand,
        "parsed": brief.model_dump(mode="json"),
        "retrieved": retrieved,
        "query_plan": query_plan(brief, tenant),
        # The brief's caps and minimums at retailers are the plan's, where a reviewer changes or
        # lifts them.
        "constraints": brief_constraints(brief),
        "plan": plan.model_dump(mode="json", by_alias=True),
        "status": "awaiting_brief_confirmation" if waiting else "planned",
        "adapters": {"planner": names},
    }
