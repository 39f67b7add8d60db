"""Every prompt the copy model sees. The system turn is the creative task's
(`adapters.prompts.SYSTEM_MESSAGES["creative"]`, which the runtime adds by the active task
adapter); the user turns are built here: the creative request the adapters are trained on
(`creative_request`: adapter training builds its rows with this very function, angle
included), the re-ask after output that was not JSON, the feedback after copy that broke a
rule, and the ask for different copy after a duplicate.

The request carries what copy is written from (`CopyFacts`): the retailer, the placement and
its limits, the product, its benefits, the claims approved for it (from the brand's claims
document) or the instruction to make none, the brand's voice passage (its voice guide's "how
we sound" section), the style rules, the variant's angle, and the answer's schema line. The
brand's banned words are not listed: the decode grammar makes them impossible to write, and
naming them to a small model primes it to write them.
"""

from __future__ import annotations

import json

from adapters.prompts import Message, schema_instruction
from tools.creative.facts import CopyFacts
from tools.policy import RetailerPolicy
from tools.policy.prompts import PLACEMENT_LABELS

ANGLE = "Angle: "
DIFFERENT_COPY = "Write a different headline and body than that one."
NO_CLAIMS = "none, so make no claims"


def creative_request(facts: CopyFacts, angle: str | None = None) -> str:
    """The user turn of a creative request. Training and serving both build it here."""
    policy, guide = facts.policy, facts.guide
    head, body = facts.limits
    creative = policy.creative
    case = creative.capitalization.value
    style = ["any case" if case == "any" else case.replace("_", " ")]
    style.append("no emoji")
    marks = creative.max_exclamation_marks
    style.append("no exclamation marks" if marks == 0 else f"at most {marks} exclamation mark(s)")
    claims = "; ".join(json.dumps(c) for c in facts.claims) or NO_CLAIMS
    lines = [
        f"Retailer: {policy.name}",
        f"Placement: {PLACEMENT_LABELS.get(facts.placement, facts.placement)} (headline max "
        f"{head} characters, body max {body} characters)",
        f"Product: {facts.product} ({facts.category.replace('_', ' ')})",
    ]
    if facts.benefits:
        lines.append(f"Benefits: {'; '.join(facts.benefits)}")
    lines += [
        f"Approved claims: {claims}",
        f"Brand: {guide.name}. Voice: {facts.voice}",
        f"Style: {', '.join(style)}",
    ]
    if angle:
        lines.append(f"{ANGLE}{angle}")
    lines.append(schema_instruction(facts.schema.json_schema))
    return "\n".join(lines)


def copy_prompts(facts: CopyFacts, angles: list[str]) -> list[list[Message]]:
    """One conversation per angle (one per variant)."""
    return [[{"role": "user", "content": creative_request(facts, a)}] for a in angles]


def reask_prompt(facts: CopyFacts, angle: str) -> list[Message]:
    """The conversation after output that was not valid JSON: the same prompt would decode the
    same text, so the first turn again from another angle."""
    return [{"role": "user", "content": creative_request(facts, angle)}]


def feedback_prompt(
    first: list[Message],
    answer: str,
    violations: list[str],
    policy: RetailerPolicy,
    placement: str,
) -> list[Message]:
    """The conversation after copy that broke rules no fix could mend: the first turn, the
    answer, and the broken rules in plain words."""
    return [
        first[0],
        {"role": "assistant", "content": answer},
        {"role": "user", "content": feedback(violations, policy, placement)},
    ]


def different_prompt(first: list[Message], answer: str) -> list[Message]:
    """The conversation after copy another variant already wrote (or a sentence of it)."""
    return [
        first[0],
        {"role": "assistant", "content": answer},
        {"role": "user", "content": DIFFERENT_COPY},
    ]


def feedback(violations: list[str], policy: RetailerPolicy, placement: str) -> str:
    """The broken rules (`review_copy` codes) as one instruction to write the copy again."""
    spec = policy.creative.limits(placement)
    head, body = spec.max_headline_chars, spec.max_body_chars
    said = {
        "headline_too_long": f"the headline must be at most {head} characters",
        "body_too_long": f"the body must be at most {body} characters",
        "empty_field": "the headline and the body must not be empty",
        "capitalization": f"the headline must be in {policy.creative.capitalization.value}",
        "emoji": "no emoji",
        "all_caps": "no words in all capitals",
        "too_many_exclamation_marks": "fewer exclamation marks",
        "price_claim_not_allowed": "no price or discount claims",
        "discount_too_deep": "no discount that large",
        "repeated_sentence": "no sentence twice",
        "repetitive": "do not repeat words",
    }
    parts = []
    for v in violations:
        code, _, arg = v.partition(":")
        if v in said:
            parts.append(said[v])
        elif code in ("prohibited", "brand_banned", "price_phrase", "unapproved_claim"):
            parts.append(f'do not say "{arg}"')
        elif code == "unsupported_number":
            parts.append(f"do not use the number {arg}")
        elif code == "unknown_word":
            parts.append(f'"{arg}" is not a word')
        elif code == "cut_phrase":
            parts.append(f'write "{arg}" whole or not at all')
        elif code == "dangling_headline":
            parts.append('the headline must not end on a word like "or" or "the"')
        else:
            parts.append(v.replace("_", " "))
    return "That copy breaks the rules: " + "; ".join(dict.fromkeys(parts)) + ". Write it again."
