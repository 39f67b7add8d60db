"""planner: the brief, parsed; the rules that apply to it, retrieved; what to ask the clean room.

The numbers come from the brief alone through the brief parser (the model's reading checked
field by field against the rules, or the rules alone on the test models): retrieved policy
text is read by later steps, never parsed for budgets or constraints, so instructions hidden in
it cannot move money. A parse with warnings goes to `confirm_brief`, which asks a human.
"""

from __future__ import annotations

import uuid
from typing import Any

from graph.context import Context
from graph.llm import bind_for_node, chat_model
from nodes import (
    Update,
    ask_review,
    context_of,
    decision_entry,
    failed,
    now,
    state_get,
    step,
)
from tools.errors import RMNError

DEFAULT_FLIGHT_DAYS = 28
MAX_FLIGHT_DAYS = 366
# (name, question, document types, whether retailer documents are searched)
QUESTIONS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    (
        "copy_rules",
        "ad copy rules for {brand}: required disclaimers, prohibited claims and content, "
        "headline and body limits",
        ("creative_specs", "disclaimers", "prohibited_content"),
        True,
    ),
    ("brand_guide", "{brand} brand voice and approved claims", ("voice", "claims"), False),
    (
        "measurement_rules",
        "allowed experiment types, test length and holdout share",
        ("measurement",),
        True,
    ),
)


# Every per-plan field, as a new plan starts.
FRESH: dict[str, Any] = {
    "error": None,
    "parsed": None,
    "constraints": {},
    "retrieved": [],
    "query_plan": None,
    "curves": None,
    "diagnosis": None,
    "allocation_notes": [],
    "measurement_notes": [],
    "plan": None,
    "copy_failures": [],
    "copy_missing": [],
    "creative_runs": 0,
    "governance_loops": 0,
    "rejected_copy": [],
    "flags": [],
    "review": None,
    "memory": [],
    "next_step": None,
    "report": None,
}


def flight_days(brief: Any) -> int:
    """Flight length from the brief's dates, else the standard four weeks."""
    if brief.flight_start and brief.flight_end:
        return max(1, min((brief.flight_end - brief.flight_start).days + 1, MAX_FLIGHT_DAYS))
    return DEFAULT_FLIGHT_DAYS


def parse(text: str, brand: str, ctx: Context, tenant: str) -> tuple[Any, list[str]]:
    """(structured brief, adapters active). The bundled model reads the brief under its
    planning and brand adapters and the rules check it; the test models leave it to the rules,
    whose reading is what would count anyway."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from tools.brief import parse_brief

    if ctx.model != "smollm2":
        return parse_brief(text, brand, path="rules"), []
    llm, names = bind_for_node(
        chat_model(ctx),
        node="planner",
        tenant=tenant,
        use_adapters=ctx.use_adapters,
        brand=brand,
        task="planning",
        max_new_tokens=128,
    )
    assert llm is not None

    def generate_json(system: str, user: str, schema: dict[str, Any]) -> dict[str, Any] | None:
        out = llm.with_structured_output(schema).invoke([SystemMessage(system), HumanMessage(user)])
        return out if isinstance(out, dict) else None

    return parse_brief(text, brand, path="production", generate_json=generate_json), names


def retrieve(ctx: Context, tenant: str, brand: str, retailers: list[str]) -> list[dict[str, Any]]:
    """Passages of the retailers' rules and the tenant's own brand guide, scoped so that no
    other retailer's or tenant's documents can come back."""
    from tools.rag.retriever import PolicyRetriever
    from tools.world.catalog import BRANDS

    name = BRANDS[brand].name if brand in BRANDS else brand
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for purpose, question, doc_types, of_retailers in QUESTIONS:
        retriever = PolicyRetriever(
            retailers=retailers if of_retailers else [],
            tenant=tenant,
            doc_types=list(doc_types),
            k=ctx.retrieval_k,
            cache=ctx.cache_path(),
        )
        for doc in retriever.invoke(question.format(brand=name)):
            source = doc.metadata["source"]
            if source in seen:
                continue
            seen.add(source)
            out.append(
                {
                    "purpose": purpose,
                    "source": source,
                    "retailer": doc.metadata.get("retailer"),
                    "brand": doc.metadata.get("brand"),
                    "doc_type": doc.metadata.get("doc_type"),
                    "score": round(float(doc.metadata.get("score", 0.0)), 4),
                    "text": doc.page_content,
                }
            )
    return out


def query_plan(brief: Any, tenant: str) -> dict[str, Any]:
    """What the clean room will be asked: the brand's line items at the brief's retailers
    (spend and attributed sales by SKU x placement over days, weeks and the whole history),
    joined on the brand's side with its first-party data."""
    return {
        "tenant": tenant,
        "brand": brief.brand_id,
        "retailers": brief.resolved_retailers(),
        "flight_days": flight_days(brief),
        "views": ["cleanroom", "full"],
        "group_by": ["sku", "placement", "week|date"],
        "metrics": ["spend", "attributed_sales"],
    }


def draft_plan(state: Any, brief: Any, tenant: str, thread_id: str) -> dict[str, Any]:
    from tools.plan import Plan

    plan = Plan(thread_id=thread_id, tenant=tenant, brief_text=state_get(state, "brief"),
                brief=brief)  # fmt: skip
    return plan.model_dump(mode="json", by_alias=True)


@step("planner")
def planner(state: Any, runtime: Any) -> Update:
    from tools.brief import BriefError
    from tools.brief.llm import settled
    from tools.policy.ownership import check_brand_access, tenant_brands

    ctx = context_of(runtime)
    tenant = ctx.tenant
    info = getattr(runtime, "execution_info", None)
    thread_id = (
        (info.thread_id if info is not None else None)
        or state_get(state, "thread_id")
        or uuid.uuid4().hex
    )
    # A new brief on a thread that planned one starts the plan over; the earlier decisions
    # stay in `decisions` (and in the decision store).
    base = {"tenant": tenant, "thread_id": thread_id, **FRESH}
    text = (state_get(state, "brief") or "").strip()
    try:
        if not text:
            raise BriefError("the brief is empty: say how much to spend, and where")
        # Ownership comes from the brand corpus; a tenant plans for its own brands only.
        brand = check_brand_access(tenant, state_get(state, "brand_id"), tenant_brands(tenant))
        brief, names = parse(text, brand, ctx, tenant)
        retrieved = retrieve(ctx, tenant, brand, brief.resolved_retailers())
    except RMNError as err:
        return base | failed(err)
    # Disagreements the text settled stay on the brief as notes; only real doubts ask a human.
    waiting = any(not settled(w) for w in brief.warnings)
    return base | {
        "brand_id": brand,
        "parsed": brief.model_dump(mode="json"),
        "retrieved": retrieved,
        "query_plan": query_plan(brief, tenant),
        "plan": draft_plan(state, brief, tenant, thread_id),
        "status": "awaiting_brief_confirmation" if waiting else "planned",
        "adapters": {"planner": names},
    }


@step("confirm_brief")
def confirm_brief(state: Any, runtime: Any) -> Update:
    """Ask a human to confirm a brief the parser had doubts about: approve it as read, edit
    its fields, or reject it. An invalid answer is explained and asked again."""
    from tools.brief import StructuredBrief
    from tools.plan import Decision, Plan

    ctx = context_of(runtime)
    parsed = state_get(state, "parsed")
    brief = StructuredBrief.model_validate(parsed)
    question = {
        "kind": "confirm_brief",
        "thread_id": state_get(state, "thread_id"),
        "tenant": state_get(state, "tenant"),
        "brief": brief.fields(),
        "parsed_by": brief.parsed_by,
        "warnings": brief.warnings,
        "actions": {
            "approve": "plan the brief as read",
            "edit": "correct fields, e.g. {'action': 'edit', 'changes': {'roas_floor': 3.0}}",
            "reject": "stop, with a reason",
        },
    }
    review, new_parsed, constraints = ask_review(
        question, parsed, state_get(state, "constraints") or {}
    )
    if review.action == "reject":
        decision = Decision(action="reject", reason=review.reason, at=now())
        plan = Plan.model_validate(state_get(state, "plan"))
        return {
            "status": "rejected",
            "next_step": "finalize",
            "decisions": [decision_entry(decision, plan)],
        }
    if review.action == "approve":
        return {"status": "planned", "next_step": "clean_room"}
    edited = StructuredBrief.model_validate(new_parsed)
    tenant = state_get(state, "tenant")
    update: Update = {
        "parsed": new_parsed,
        "constraints": constraints,
        "query_plan": query_plan(edited, tenant),
        "plan": draft_plan(state, edited, tenant, state_get(state, "thread_id")),
        "status": "planned",
        "next_step": "clean_room",
    }
    if edited.resolved_retailers() != brief.resolved_retailers():
        update["retrieved"] = retrieve(ctx, tenant, edited.brand_id, edited.resolved_retailers())
    return update
