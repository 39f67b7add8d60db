"""Every prompt the copy model sees. The system turn is the creative task's
(`adapters.prompts.SYSTEM_MESSAGES["creative"]`, which the runtime adds by the active task
adapter); the user turns are built here: the creative request the adapters are trained on
(`creative_request`: adapter training builds its rows with this very function, angle
included), and the re-ask: the same turn from the next angle (what the refused copy wrote is
banned in the re-ask's grammar, `tools.creative.avoid`).

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
from tools.policy.prompts import PLACEMENT_LABELS

ANGLE = "Angle: "
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
    """The conversation of a re-ask (after output that was not valid JSON, broke a rule, or
    repeated another variant): the same prompt would decode the same text, so the first turn
    again from another angle."""
    return [{"role": "user", "content": creative_request(facts, angle)}]
