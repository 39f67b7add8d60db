"""governance: every text the plan will show or send (the brief, the retrieved policy text,
the copy, the experiment's rationale) scanned for PII, which is redacted in the plan; the plan
checked against the retailers' caps and category rules; prompt-injection attempts flagged and
never obeyed (`tools.governance.review`). Copy violations go back to creative a bounded number
of times, then to the human with the reason."""

from __future__ import annotations

from typing import Any

from nodes import Update, context_of, state_get, step
from nodes.creative import copy_key

_COPY_FIELDS = ("headline", "body", "disclaimer")


def plan_texts(plan: Any, retrieved: list[dict[str, Any]]) -> dict[str, str]:
    """Where -> text, for every text of the plan and its inputs."""
    texts = {"brief": plan.brief_text}
    for i, doc in enumerate(retrieved):
        texts[f"retrieved[{i}]"] = doc.get("text") or ""
    for i, variant in enumerate(plan.copy_variants):
        for name in _COPY_FIELDS:
            value = getattr(variant, name)
            if value:
                texts[f"copy[{i}].{name}"] = value
    if plan.experiment and plan.experiment.get("rationale"):
        texts["rationale"] = plan.experiment["rationale"]
    return texts


def apply_redactions(
    plan: Any, retrieved: list[dict[str, Any]], redacted: dict[str, str]
) -> list[dict[str, Any]]:
    """Write the redacted texts back where they came from; returns the retrieved passages."""
    if "brief" in redacted:
        plan.brief_text = redacted["brief"]
    docs = [dict(d) for d in retrieved]
    for i, doc in enumerate(docs):
        if f"retrieved[{i}]" in redacted:
            doc["text"] = redacted[f"retrieved[{i}]"]
    for i, variant in enumerate(plan.copy_variants):
        for name in _COPY_FIELDS:
            key = f"copy[{i}].{name}"
            if key in redacted:
                setattr(variant, name, redacted[key])
    if plan.experiment and "rationale" in redacted:
        plan.experiment = {**plan.experiment, "rationale": redacted["rationale"]}
    return docs


@step("governance")
def governance(state: Any, runtime: Any) -> Update:
    from tools.governance import PII_TYPES, review
    from tools.pipeline import CurveSummary, sku_categories
    from tools.plan import Plan

    ctx = context_of(runtime)
    plan = Plan.model_validate(state_get(state, "plan"))
    retrieved = state_get(state, "retrieved") or []
    curves = CurveSummary.model_validate(state_get(state, "curves"))
    result = review(
        plan_texts(plan, retrieved),
        plan.allocation,
        plan.brief.resolved_retailers(),
        state_get(state, "tenant"),
        categories=sku_categories(curves),
        flight_start=plan.brief.flight_start,
        flight_end=plan.brief.flight_end,
        flight_days=curves.flight_days,
    )
    # A finding keeps where the personal data was, not the data itself.
    plan.governance = [
        f.model_copy(update={"text": f"<{f.type}>"}) if f.type in PII_TYPES else f
        for f in result.findings
    ]
    loops = int(state_get(state, "governance_loops") or 0)
    rejected: list[dict[str, Any]] = []
    if result.route == "creative":
        flagged = {f.where.split(".", 1)[0] for f in result.findings if f.where.startswith("copy[")}
        for i, v in enumerate(plan.copy_variants):
            if f"copy[{i}]" in flagged:
                retailer, digest = copy_key(v.retailer_id, v.headline, v.body)
                rejected.append({"retailer_id": retailer, "digest": digest, "loop": loops + 1})
    docs = apply_redactions(plan, retrieved, dict(result.redacted))
    flags: list[str] = []
    next_step = "reflection"
    if result.route == "creative":
        if loops < ctx.max_governance_loops:
            next_step, loops = "creative", loops + 1
        else:
            flags.append(
                f"copy still breaks the rules after {loops} rewrite(s): "
                + "; ".join(result.reasons)
            )
    elif result.route == "human":
        flags.extend(result.reasons)
    if next_step == "reflection":
        # Dropped drafts were replaced by compliant copy; only a retailer left without any
        # needs a human.
        flags.extend(f"{r}: no compliant copy" for r in state_get(state, "copy_missing") or [])
        expected = plan.expected_outcome
        if expected is not None and expected.reserve > 0 and not plan.experiment:
            notes = "; ".join(state_get(state, "measurement_notes") or []) or "no design"
            flags.append(f"no experiment could be designed for the reserve ({notes})")
    update: Update = {}
    if "brief" in result.redacted and result.redacted["brief"] != state_get(state, "brief"):
        update["brief"] = result.redacted["brief"]  # the thread shows no PII either
    return update | {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "retrieved": docs,
        "review": {"route": result.route, "reasons": list(result.reasons)},
        "governance_loops": loops,
        "rejected_copy": [*(state_get(state, "rejected_copy") or []), *rejected],
        "flags": flags,
        "next_step": next_step,
        "status": "reviewed" if next_step == "reflection" else "rewriting_copy",
    }
