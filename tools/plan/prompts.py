"""Every prompt the model sees for the plan's words: the rationale's conversation
(`tools.plan.rationale`) and the reflection's (`tools.plan.reflection_words`). Each shows a
facts table (name: value, the values pre-formatted as a text may write them) and, for the
rationale, the retrieved passages numbered as they are cited; the answer is decoded under a
`SentenceGrammar` built from the same facts, so only their numbers can appear."""

from __future__ import annotations

RATIONALE_SYSTEM = (
    "You explain a retail media plan to a marketing manager in plain, short sentences. "
    "You use only the numbers given in the facts, copied exactly, and end every sentence with "
    "the number of the rule it rests on, like [1]."
)
REFLECTION_SYSTEM = (
    "You review a retail media plan before a manager approves it. You write plain, short "
    "sentences and use only the numbers given in the facts, copied exactly."
)


def _facts(facts: list[tuple[str, str]]) -> list[str]:
    return ["Facts:", *(f"- {name}: {value}" for name, value in facts)]


def rationale_messages(
    facts: list[tuple[str, str]], passages: list[str], ask: str
) -> list[dict[str, str]]:
    """The rationale's conversation: the facts table, the passages numbered as they are cited
    ([1]..[n]), and what to say in one or two sentences."""
    lines = _facts(facts)
    if passages:
        lines += ["", "Rules:", *(f"[{i}] {text}" for i, text in enumerate(passages, start=1))]
    lines += ["", f"In one or two short sentences, say {ask}."]
    return [
        {"role": "system", "content": RATIONALE_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]


def reflection_messages(facts: list[tuple[str, str]], memory: list[str]) -> list[dict[str, str]]:
    """The reflection's conversation: the signals as facts, the most similar past plan, and
    the three sentences to write (the grammar opens each one)."""
    lines = _facts(facts)
    if memory:
        lines += ["", f"A similar past plan: {memory[0]}"]
    lines += [
        "",
        "Write three short sentences: the main risk of this plan, a bias the planner should "
        "check, and another way to read this plan.",
    ]
    return [
        {"role": "system", "content": REFLECTION_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]
