"""Every prompt the model sees for the plan's words: the rationale's conversation
(`tools.plan.rationale`) and the reflection's (`tools.plan.reflection_words`). Each shows a
facts table (name: value, the values pre-formatted as a text may write them) and, for the
rationale, the retrieved passages numbered as they are cited; the answer is decoded under a
`SentenceGrammar` built from the same facts, so only their numbers can appear.

The rationale's conversation opens with a worked example (`worked_example`): a made-up plan at
"Shop A" and "Shop B" with the same kinds of sentence as the request (`SHAPES`), answered. Why:
without it SmolLM2-135M continued the code's openings with garbled words ("so it can be a test
of the test of the test often [1]."; 47 of 47 texts on 26 held-out plans); with one, on 8 of
those plans, it wrote sentences of the example's kind about the plan it was given.
"""

from __future__ import annotations

from dataclasses import dataclass

RATIONALE_SYSTEM = (
    "You explain a retail media plan to a marketing manager in plain, short sentences. "
    "You use only the numbers given in the facts, copied exactly, and follow the rules given."
)
REFLECTION_SYSTEM = (
    "You review a retail media plan before a manager approves it. You write plain, short "
    "sentences and use only the numbers given in the facts, copied exactly."
)


def _facts(facts: list[tuple[str, str]]) -> list[str]:
    return ["Facts:", *(f"- {name}: {value}" for name, value in facts)]


def _rationale_ask(facts: list[tuple[str, str]], passages: list[str], ask: str) -> str:
    lines = _facts(facts)
    if passages:
        lines += ["", "Rules:", *(f"[{i}] {text}" for i, text in enumerate(passages, start=1))]
    lines += ["", f"In one or two short sentences, say {ask}."]
    return "\n".join(lines)


def rationale_messages(
    facts: list[tuple[str, str]],
    passages: list[str],
    ask: str,
    example: WorkedExample | None = None,
) -> list[dict[str, str]]:
    """The rationale's conversation: the worked example asked and answered (if any), then the
    facts table, the passages numbered as they are cited ([1]..[n]), and what to say in one or
    two sentences."""
    turns = [{"role": "system", "content": RATIONALE_SYSTEM}]
    if example is not None:
        turns += [
            {"role": "user", "content": _rationale_ask(example.facts, example.passages, ask)},
            {"role": "assistant", "content": example.answer},
        ]
    return [*turns, {"role": "user", "content": _rationale_ask(facts, passages, ask)}]


# --- the rationale's worked example ---------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """One kind of rationale sentence in the example plan: the facts it states, its opening
    (as the code writes it for a real plan) and the example's ending. The code adds citation
    markers to the model's sentences, so the example's carry none."""

    facts: tuple[tuple[str, str], ...]
    opening: str
    ending: str


@dataclass(frozen=True)
class WorkedExample:
    facts: list[tuple[str, str]]
    passages: list[str]
    answer: str


_BUDGET = (("total budget", "$1.00M"), ("experiment reserve", "$100k"), ("planned spend", "$900k"))
_TEST = (
    ("experiment", "geo holdout"),
    ("retailer", "Shop A"),
    ("test length in days", "28"),
    ("share held out", "15%"),
    ("smallest lift it can detect", "4.0%"),
)
# The sentence kinds `tools.plan.rationale` writes, by name.
SHAPES: dict[str, _Shape] = {
    "split": _Shape(
        (
            *_BUDGET,
            ("Shop A spend", "$600k"),
            ("Shop A share", "67%"),
            ("Shop B spend", "$300k"),
            ("Shop B share", "33%"),
        ),
        "Shop A gets 67% and Shop B 33% of the $900k planned spend because",
        "each extra dollar now earns about as much at Shop A as at Shop B",
    ),
    "single": _Shape(
        (*_BUDGET, ("Shop A spend", "$900k"), ("Shop A share", "100%")),
        "Shop A gets 100% of the $900k planned spend because",
        "an extra dollar earns more there than anywhere else in the plan",
    ),
    "cap": _Shape(
        (
            ("binding limit", "Shop B sponsored products monthly cap"),
            ("Shop B sponsored products monthly cap, value of one more dollar", "$0.40"),
        ),
        "What binds is the Shop B sponsored products monthly cap, worth $0.40 of margin per "
        "extra dollar, as",
        "the retailer lets one brand spend only so much there each month",
    ),
    "brief_cap": _Shape(
        (
            ("binding limit", "Shop B cap in the brief"),
            ("Shop B cap in the brief, value of one more dollar", "$0.40"),
        ),
        "What binds is the Shop B cap in the brief, worth $0.40 of margin per extra dollar, as",
        "the brief itself limits what Shop B may get",
    ),
    "no_cap": _Shape(
        (
            ("expected incremental margin", "$410k"),
            ("margin, low end of the 90% range", "$380k"),
            ("margin, high end of the 90% range", "$440k"),
        ),
        "Expected margin is $410k, likely between $380k and $440k, and",
        "no retailer cap keeps the money from where it earns the most",
    ),
    "detect": _Shape(
        _TEST,
        "This geo holdout at Shop A can detect a sales lift of 4.0% in 28 days with 15% held "
        "out, so",
        "a smaller true lift would read as no effect",
    ),
    "underpowered": _Shape(
        (*_TEST, ("power", "40%"), ("target power", "80%")),
        "With 40% power against the 80% target, it cannot",
        "reliably confirm the expected lift, and it says nothing about other retailers",
    ),
    "limits": _Shape(_TEST, "It cannot", "tell how other retailers or later weeks would respond"),
}
_EXAMPLE_RULES = {
    "allocation": [
        "One brand may spend at most $300,000 a month on sponsored products at Shop B. Spend "
        "stops for the rest of the month when a cap is reached."
    ],
    "experiment": [
        "A test runs at least 14 days and at most 90 days.",
        "Between 5% and 20% of the stores are held out.",
    ],
}


def worked_example(kind: str, shapes: tuple[str, ...]) -> WorkedExample | None:
    """The example plan's facts, rules and answer for a text of `kind` made of sentences of
    `shapes` (in order), or None when a shape has no example. It depends on nothing else, so
    that the runtime keeps few of them computed (`adapters.decoding.PrefixCache`): 8 kinds
    of text in all."""
    if not shapes or any(s not in SHAPES for s in shapes) or kind not in _EXAMPLE_RULES:
        return None
    facts: dict[str, str] = {}
    for shape in shapes:
        facts.update(SHAPES[shape].facts)
    answer = " ".join(f"{SHAPES[s].opening} {SHAPES[s].ending}." for s in shapes)
    return WorkedExample(list(facts.items()), _EXAMPLE_RULES[kind], answer)


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
