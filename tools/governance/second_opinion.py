"""A second opinion on ad copy from the retailer's own adapter: does the copy break one of the
retailer's retrieved prohibited-content or disclaimer passages?

    result = second_opinions(llm, plan.copy_variants, retrieved, tenant="acme")
    result.findings[0].type, .severity, .citation  # SECOND_OPINION, info, Citation(id=2, ...)
    result.adapters                                 # ["retailer/alpha", "retailer/beta"]

The model (retailer/<id> adapter where installed) sees up to three of that retailer's passages
numbered [1]..[n] and the copy, and answers JSON constrained to {"verdict": "ok" | "breaks",
"passage": 1..n, "why": the words of the copy that break it}. Each answer becomes an `info`
finding citing the passage it names, with whether the deterministic checks (the policy
compliance, claims and injection checks in `tools.governance.review`) flagged the same copy.
Only those deterministic checks decide what happens to the copy: an info finding never blocks,
routes or flags a plan. A `why` that quotes words not in the copy, or a number the copy does not
carry, is not shown (the finding says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from adapters.structured import StructuredOutputError
from tools.governance.prompts import opinion_messages
from tools.plan import Citation, CopyVariant, Finding
from tools.plan.citations import cite
from tools.plan.numbers import check_numbers, numbers_in

if TYPE_CHECKING:
    from adapters.chat_model import RMNChatModel

FINDING_TYPE = "SECOND_OPINION"
DOC_TYPES: tuple[str, ...] = ("prohibited_content", "disclaimers")
MAX_PASSAGES = 3
WHY_CHARS = 80
# {"verdict":"breaks","passage":1,"why":"<80 chars>"} is under 40 tokens.
OPINION_TOKENS = 40


class SecondOpinions(BaseModel):
    """The findings, and the adapters the model judged with."""

    findings: list[Finding] = Field(default_factory=list)
    adapters: list[str] = Field(default_factory=list)


class SecondOpinion(BaseModel):
    """The model's answer on one copy variant."""

    verdict: Literal["ok", "breaks"]
    passage: int = Field(ge=1)
    why: str = Field("", max_length=WHY_CHARS)


def opinion_schema(passages: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "verdict": {"enum": ["ok", "breaks"]},
            "passage": {"type": "integer", "minimum": 1, "maximum": max(passages, 1)},
            "why": {"type": "string", "maxLength": WHY_CHARS},
        },
        "required": ["verdict", "passage", "why"],
    }


def copy_text(variant: CopyVariant) -> str:
    parts = [variant.headline, variant.body, variant.disclaimer or ""]
    return " ".join(p for p in parts if p)


def second_opinions(
    llm: RMNChatModel | None,
    variants: list[CopyVariant],
    retrieved: list[dict[str, Any]],
    *,
    tenant: str,
    flagged: set[int] | None = None,
    use_adapters: bool = True,
) -> SecondOpinions:
    """One info finding per copy variant the model could judge (none without a model, or for
    a retailer with no passage retrieved). `flagged`: indexes of the variants the
    deterministic checks flagged, recorded next to the model's verdict. All variants go to the
    model as one batch."""
    if llm is None or not variants:
        return SecondOpinions()
    from adapters.chat_model import ChatCall, generate_many, generation_of

    jobs: list[tuple[int, list[Citation]]] = []
    calls = []
    for i, variant in enumerate(variants):
        citations, passages = cite(retrieved, DOC_TYPES, [variant.retailer_id], limit=MAX_PASSAGES)
        if not citations:
            continue
        retailer = variant.retailer_id if use_adapters else None
        writer = _bind(llm, retailer, tenant)
        calls.append(
            ChatCall(
                writer,
                opinion_messages(variant, passages),
                opinion_schema(len(citations)),
                max_new_tokens=OPINION_TOKENS,
            )
        )
        jobs.append((i, citations))
    if not calls:
        return SecondOpinions()
    try:
        answers = generate_many(calls)
    except StructuredOutputError:
        return SecondOpinions()
    out = SecondOpinions()
    for (i, citations), answer in zip(jobs, answers, strict=True):
        gen = generation_of(answer)
        out.adapters = sorted({*out.adapters, *gen.adapters_active})
        if gen.parsed is None:
            continue
        opinion = SecondOpinion.model_validate(gen.parsed)
        out.findings.append(_finding(i, variants[i], opinion, citations, flagged or set(), gen))
    return out


def _bind(llm: RMNChatModel, retailer: str | None, tenant: str) -> RMNChatModel:
    """The model bound to the retailer's adapter when it is installed, else the base model."""
    if retailer is not None:
        have = {(e.metadata.kind, e.metadata.id) for e in llm.runtime.registry.entries()}
        if ("retailer", retailer) in have:
            return llm.bind_adapters(retailer=retailer, tenant=tenant)
    return llm.bind_adapters(tenant=tenant)


def _finding(
    index: int,
    variant: CopyVariant,
    opinion: SecondOpinion,
    citations: list[Citation],
    flagged: set[int],
    gen: Any,
) -> Finding:
    cited = citations[min(opinion.passage, len(citations)) - 1]
    text = copy_text(variant)
    why = opinion.why.strip()
    note = ""
    if why and why.lower() not in text.lower():
        why, note = "", "; its quote is not in the copy, not shown"
    elif why and not check_numbers(why, numbers_in(text)).ok:
        why, note = "", "; its quote carries a number the copy does not, not shown"
    adapters = "+".join(gen.adapters_active) or "base model"
    checks = "flagged it" if index in flagged else "passed it"
    return Finding(
        agrees=(opinion.verdict == "ok") == (index not in flagged),
        type=FINDING_TYPE,
        where=f"copy[{index}]",
        text=why,
        severity="info",
        action=(
            f"second opinion ({adapters}): {opinion.verdict}, citing [{cited.id}] "
            f"{cited.source}{note}; the rule checks {checks}, and they decide"
        ),
        citation=cited,
    )
