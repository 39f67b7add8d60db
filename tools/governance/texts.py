"""The texts of a plan that governance scans, by where they sit (`brief`, `retrieved[i]`,
`copy[i].headline`, `rationale`, ...), and the redacted texts written back to those places."""

from __future__ import annotations

from typing import Any

from tools.plan import Plan

COPY_FIELDS: tuple[str, ...] = ("headline", "body", "disclaimer")


def plan_texts(plan: Plan, retrieved: list[dict[str, Any]]) -> dict[str, str]:
    """Where -> text, for every text of the plan and its inputs."""
    texts = {"brief": plan.brief_text}
    for i, doc in enumerate(retrieved):
        texts[f"retrieved[{i}]"] = doc.get("text") or ""
    for i, variant in enumerate(plan.copy_variants):
        for name in COPY_FIELDS:
            value = getattr(variant, name)
            if value:
                texts[f"copy[{i}].{name}"] = value
    if plan.experiment and plan.experiment.get("rationale"):
        texts["rationale"] = plan.experiment["rationale"]
    return texts


def apply_redactions(
    plan: Plan, retrieved: list[dict[str, Any]], redacted: dict[str, str]
) -> list[dict[str, Any]]:
    """Write the redacted texts back where they came from (the plan is changed in place);
    returns the retrieved passages with theirs."""
    if "brief" in redacted:
        plan.brief_text = redacted["brief"]
    docs = [dict(d) for d in retrieved]
    for i, doc in enumerate(docs):
        if f"retrieved[{i}]" in redacted:
            doc["text"] = redacted[f"retrieved[{i}]"]
    for i, variant in enumerate(plan.copy_variants):
        for name in COPY_FIELDS:
            key = f"copy[{i}].{name}"
            if key in redacted:
                setattr(variant, name, redacted[key])
    if plan.experiment and "rationale" in redacted:
        plan.experiment = {**plan.experiment, "rationale": redacted["rationale"]}
    return docs
