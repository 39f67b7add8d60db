"""governance: every text the plan will show or send (the brief, the retrieved policy text,
the copy, the experiment's rationale) scanned for PII, which is redacted in the plan; the plan
checked against the retailers' caps and category rules; every claim in the copy checked against
the claims the brand approves for that product; prompt-injection attempts flagged and never
obeyed (`tools.governance.review`). Copy violations go back to creative a bounded number
of times, then to the human with the reason. The copy that goes on gets a second opinion from
each retailer's adapter against that retailer's retrieved prohibited-content and disclaimer
passages (`tools.governance.second_opinion`): info findings with the passage cited; the
deterministic checks above still decide."""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from graph.context import Context
from graph.llm import node_model
from graph.state import State
from graph.steps import Update, context_of, curves_of, progress, step
from tools.creative.targets import copy_key
from tools.governance import PII_TYPES, GovernanceReview, review
from tools.governance.claims import copy_products
from tools.governance.second_opinion import SecondOpinions, second_opinions
from tools.governance.texts import apply_redactions, plan_texts
from tools.pipeline import product_names, sku_categories
from tools.plan import Plan
from tools.plan.labels import counted


@step("governance")
def governance(state: State, runtime: Runtime[Context]) -> Update:
    ctx = context_of(runtime)
    plan = Plan.model_validate(state.plan)
    retrieved = state.retrieved or []
    curves = curves_of(state, runtime)
    categories = sku_categories(curves)
    brand = plan.brief.brand_id
    names = product_names(ctx.data_path(), ctx.tenant, brand)
    result = review(
        plan_texts(plan, retrieved),
        plan.allocation,
        plan.brief.resolved_retailers(),
        ctx.tenant,
        categories=categories,
        flight_start=plan.brief.flight_start,
        flight_end=plan.brief.flight_end,
        flight_days=curves.flight_days,
        brand=brand,
        copy_products=copy_products(plan, names, categories),
    )
    # A finding keeps where the personal data was, not the data itself.
    plan.governance = [
        f.model_copy(update={"text": f"<{f.type}>"}) if f.type in PII_TYPES else f
        for f in result.findings
    ]
    loops = int(state.governance_loops or 0)
    rejected = _sent_back(plan, result, loops + 1) if result.route == "creative" else []
    docs = apply_redactions(plan, retrieved, dict(result.redacted))
    flags: list[str] = []
    next_step = "reflection"
    if result.route == "creative":
        if loops < ctx.max_governance_loops:
            next_step, loops = "creative", loops + 1
        else:
            flags.append(
                f"copy still breaks the rules after {counted(loops, 'rewrite')}: "
                + "; ".join(result.reasons)
            )
    elif result.route == "human":
        flags.extend(result.reasons)
    opinions = SecondOpinions()
    if next_step == "reflection":
        flags.extend(_unresolved(state, plan))
        plan.flags = flags  # the report names them beside the copy's findings
        if plan.copy_variants and ctx.model != "none":
            progress(runtime, "governance")("second opinion on the copy")
        opinions = second_opinions(
            node_model(ctx, "governance"),
            plan.copy_variants,
            docs,
            tenant=ctx.tenant,
            flagged=_flagged(result),
            use_adapters=ctx.use_adapters,
        )
        plan.governance = [*plan.governance, *opinions.findings]
    update: Update = {}
    if "brief" in result.redacted and result.redacted["brief"] != state.brief:
        update["brief"] = result.redacted["brief"]  # the thread shows no PII either
    return update | {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "retrieved": docs,
        "review": {"route": result.route, "reasons": list(result.reasons)},
        "governance_loops": loops,
        "rejected_copy": [*(state.rejected_copy or []), *rejected],
        "flags": flags,
        "next_step": next_step,
        "status": "reviewed" if next_step == "reflection" else "rewriting_copy",
        "adapters": {"governance": opinions.adapters},
    }


def _flagged(result: GovernanceReview) -> set[int]:
    """Indexes of the copy variants the deterministic checks found something in."""
    out = set()
    for f in result.findings:
        if f.where.startswith("copy[") and f.severity != "info":
            index = f.where[5:].split("]", 1)[0]
            if index.isdigit():
                out.add(int(index))
    return out


def _sent_back(plan: Plan, result: GovernanceReview, loop: int) -> list[dict[str, Any]]:
    """The flagged copy, remembered by digest ({retailer_id, digest, loop}) so creative does
    not write it again (run before redaction: the digest is of the copy as written)."""
    flagged = {f.where.split(".", 1)[0] for f in result.findings if f.where.startswith("copy[")}
    out: list[dict[str, Any]] = []
    for i, v in enumerate(plan.copy_variants):
        if f"copy[{i}]" in flagged:
            retailer, digest = copy_key(v.retailer_id, v.headline, v.body)
            out.append({"retailer_id": retailer, "digest": digest, "loop": loop})
    return out


def _unresolved(state: State, plan: Plan) -> list[str]:
    """Flags for what the plan goes to reflection without: compliant copy for a retailer (the
    dropped drafts were replaced where they could be; only a retailer left without any needs
    a human) and an experiment for its reserve."""
    flags = [f"{r}: no compliant copy" for r in state.copy_missing or []]
    expected = plan.expected_outcome
    if expected is not None and expected.reserve > 0 and not plan.experiment:
        notes = "; ".join(state.measurement_notes or []) or "no design"
        flags.append(f"no experiment could be designed for the reserve ({notes})")
    flags += (state.curves or {}).get("review_flags") or []  # e.g. retailers planned prior-only
    return flags
