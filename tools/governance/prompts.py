"""The prompts governance's model sees: the second opinion on ad copy
(`tools.governance.second_opinion`)."""

from __future__ import annotations

from tools.plan import CopyVariant

OPINION_SYSTEM = (
    "You check retail ad copy against the retailer's rules. Say whether the copy breaks one "
    "of the rules shown, which one, and quote the words of the copy that break it."
)


def opinion_messages(variant: CopyVariant, passages: list[str]) -> list[dict[str, str]]:
    lines = ["Rules:", *(f"[{i}] {text}" for i, text in enumerate(passages, start=1))]
    lines += ["", "Ad copy:", f"Headline: {variant.headline}", f"Body: {variant.body}"]
    if variant.disclaimer:
        lines.append(f"Disclaimer: {variant.disclaimer}")
    lines += ["", "Does this copy break one of the rules?"]
    return [
        {"role": "system", "content": OPINION_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]
