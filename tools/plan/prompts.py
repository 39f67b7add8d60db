"""Every prompt the model sees for the plan's words: the rationale's conversation
(`tools.plan.rationale`) and the reflection's (`tools.plan.reflection_words`). Each shows a
facts table (name: value, the values pre-formatted as a text may write them) and, for the
rationale, the retrieved passages numbered as they are cited; the answer is decoded under a
`SentenceGrammar` built from the same facts, so only their numbers can appear.

The rationale's conversation opens with a worked example (`worked_example`): a made-up plan at
"Shop A" and "Shop B" with the same kinds of sentence as the request (`SHAPES`), answered. Why:
without it SmolLM2-135M continued the code's openings with garbled words ("so it can be a test
of the test of the test often [1]."; 47 of 47 texts on 26 held-out plans); with one, on 8 of
those plans, it wrote sentences of the example's kind about the plan it was given. The
reflection's conversations do the same (`reflection_examples`, by the kinds of main risk and
bias to check: `RISK_SHAPES`, `BIAS_SHAPES`); without it, on 16 held-out plans, 14 texts
passed the checks and all 14 were garbled ("A bias to check is that the plan is not a fair
way to make, there.").
"""

from __future__ import annotations

import re
from collections.abc import Callable
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
    return _conversation(
        RATIONALE_SYSTEM, lambda f, p: _rationale_ask(f, p, ask), facts, passages, example
    )


def _conversation(
    system: str,
    asked: Callable[[list[tuple[str, str]], list[str]], str],
    facts: list[tuple[str, str]],
    shown: list[str],
    example: WorkedExample | None,
) -> list[dict[str, str]]:
    """The system message, the worked example's facts and passages `asked` and answered (if
    any), then the real ones `asked`."""
    turns = [{"role": "system", "content": system}]
    if example is not None:
        turns += [
            {"role": "user", "content": asked(example.facts, example.passages)},
            {"role": "assistant", "content": example.answer},
        ]
    return [*turns, {"role": "user", "content": asked(facts, shown)}]


# --- the rationale's worked example ---------------------------------------------------------


@dataclass(frozen=True)
class _Shape:
    """One kind of rationale sentence in the example plan: the facts it states, its opening
    (as the code writes it for a real plan) and the example's ending. The code adds citation
    markers to the model's sentences, so the example's carry none."""

    facts: tuple[tuple[str, str], ...]
    opening: str
    ending: str


# The example plans' retailers. A text about a real plan that names one (the model copying the
# example's ending word for word) is refused unless the plan's own facts name it too.
EXAMPLE_NAMES = ("Shop A", "Shop B")


def borrowed_names(text: str, shown: list[str]) -> list[str]:
    """The example's retailer names in `text` that nothing in `shown` names."""
    return [n for n in EXAMPLE_NAMES if n in text and not any(n in s for s in shown)]


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
        # True of any split: "each extra dollar now earns about as much at Shop A as at Shop
        # B", which the model copied, is false where caps bind (reviewers saw $1.06-$3.92 of
        # cap value per dollar at one retailer against $0.01 at the other). On the 20 plans
        # of the review's finding set, "that is where the curves promise the most return per
        # extra dollar" left 1 cap sentence garbled after it; this ending, none. "Within the
        # caps": a retailer that gets money only because another's caps are full
        # (34% to Delta Home at $0.55 a dollar beside Alpha Mart's $3.80) was said to get it
        # for the most return (ua25, round 5's measure, wrong).
        "each extra dollar now goes where the curves promise the most return within the caps",
    ),
    # Money a retailer gets only because the caps elsewhere are full, where it brings back
    # less than it costs: "because that is where the curves promise the most revenue per
    # extra dollar within the caps" read as wrong of 57% at $0.74 a dollar (va37 of unseen41).
    "spill": _Shape(
        (
            *_BUDGET,
            ("Shop A spend", "$600k"),
            ("Shop A share", "67%"),
            ("Shop B spend", "$300k"),
            ("Shop B share", "33%"),
        ),
        "Shop A gets 67% and Shop B 33% of the $900k planned spend because caps hold spend at "
        "Shop B, so",
        "the rest of the budget goes where each dollar brings back less than it costs",
    ),
    # A brief that fixes the split itself: "because that is where the curves promise the
    # most" of $180k/$135k the brief asked for read as the optimizer's choice.
    "brief_split": _Shape(
        (
            *_BUDGET,
            ("Shop A spend", "$600k"),
            ("Shop A share", "67%"),
            ("Shop B spend", "$300k"),
            ("Shop B share", "33%"),
        ),
        "Shop A gets 67% and Shop B 33% of the $900k planned spend because",
        "the brief itself divides the budget that way",
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
        "The cap that binds is the Shop B sponsored products monthly cap, worth $0.40 of margin "
        "per extra dollar, as",
        "the retailer lets one brand spend only so much there each month",
    ),
    "brief_cap": _Shape(
        (
            ("binding limit", "Shop B cap in the brief"),
            ("Shop B cap in the brief, value of one more dollar", "$0.40"),
        ),
        "The cap that binds is the Shop B cap in the brief, worth $0.40 of margin per extra "
        "dollar, as",
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
        "This geo holdout at Shop A can detect a sales lift of 4.0% in 28 days with 15% of the "
        "areas held out, so",
        "a smaller true lift would read as no effect",
    ),
    "underpowered": _Shape(
        (*_TEST, ("chance of detecting the lift", "40%"), ("chance needed", "80%")),
        "With a 40% chance of detecting the lift, where 80% is needed, it cannot",
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
    that the runtime keeps few of them computed (`adapters.prefixes.PrefixCache`): 8 kinds
    of text in all."""
    if not shapes or any(s not in SHAPES for s in shapes) or kind not in _EXAMPLE_RULES:
        return None
    facts: dict[str, str] = {}
    for shape in shapes:
        facts.update(SHAPES[shape].facts)
    answer = " ".join(f"{SHAPES[s].opening} {SHAPES[s].ending}." for s in shapes)
    return WorkedExample(list(facts.items()), _EXAMPLE_RULES[kind], answer)


# --- the reflection's worked example -------------------------------------------------------

# The main risk's sentence per risk factor (`tools.plan.reflection.risks`), "low" without one:
# the facts it states, how its opening states them (`{name}` is the fact's value) and the
# example's ending, which the template writes too. The openings are the ones
# `tools.plan.reflection_words` writes for a real plan; the model writes only the ending, and
# mostly copies the example's. So each ending must be true of any plan of its kind and name no
# retailer. Found on held-out plans: "the Shop B lines" became "the Alpha Mart lines are closer
# to the Alpha Mart lines"; "Shop B cannot take more money" was wrong where one placement of a
# retailer was capped; "rests on very few weeks of sales" was wrong, a line without enough data
# has none of its own (`tools.curves.fit`). No ending stops on a word the grammar may not end on
# (`adapters.structured.DANGLING_WORDS`): with "approved before" the model wrote on past the
# example's ending, and none has a comma (after "similar lines, not their own sales" it wrote
# ", there.").
RISK_SHAPES: dict[str, _Shape] = {
    "response curve uncertainty": _Shape(
        (("curve uncertainty (CV)", "0.45"),),
        "the fitted curves vary with a CV of {curve uncertainty (CV)}",
        "the outcome could land well below the forecast",
    ),
    "thin data coverage": _Shape(
        (("spend on lines without enough data", "30%"),),
        "{spend on lines without enough data} of spend is on lines without enough data",
        "the forecast for those lines is borrowed from similar lines",
    ),
    "little room above the ROAS floor": _Shape(
        (("expected revenue per ad dollar", "$3.20"), ("minimum revenue per ad dollar", "$3.00")),
        "the expected {expected revenue per ad dollar} of revenue per ad dollar sits close to the "
        "{minimum revenue per ad dollar} minimum",
        "a small miss on the forecast could fall below the minimum",
    ),
    "binding caps": _Shape(
        (("caps that bind", "Shop B sponsored products"),),
        "caps bind at {caps that bind}",
        "those caps leave no room for more spend even where it would earn well",
    ),
    "governance findings": _Shape(
        (("governance findings", "2"),),
        "governance has {governance findings} open finding(s)",
        "a person should review the findings before launch",
    ),
    # "Solver result" was jargon beside a report that says "optimizer" (va14 of unseen41).
    "optimizer result": _Shape(
        (),
        "the optimizer did not report a clean optimum",
        "the split should be run again before anyone approves it",
    ),
    "underpowered experiment": _Shape(
        (("chance the experiment detects the lift", "40%"), ("chance needed", "80%")),
        "the experiment has a {chance the experiment detects the lift} chance of detecting the "
        "lift, where {chance needed} is needed",
        "a flat result would not prove there is no lift",
    ),
    "a net loss after ad spend": _Shape(
        (("expected extra margin", "$410k"), ("planned spend", "$900k")),
        "the expected extra margin of {expected extra margin} is below the {planned spend} of "
        "ad spend",
        "the plan loses money after paying for its ads",
    ),
    # A retailer whose spend brings back less revenue than it costs (va37 of unseen41).
    "spend that brings back less than it costs": _Shape(
        (("retailers where spend loses money", "Shop B"),),
        "the spend at {retailers where spend loses money} brings back less extra revenue than "
        "it costs",
        "each dollar placed there loses money before any margin is counted",
    ),
    # The gain after ad spend below what the test spends (va36 of unseen41).
    "a net loss once the test is paid": _Shape(
        (),
        "the gain left after ad spend is smaller than what the test spends",
        "the whole budget loses money unless the lift from the test covers it",
    ),
    "an unmeasured lift": _Shape(
        (), "no experiment is planned", "a weaker lift than forecast would go unnoticed"
    ),
    # "The main risk is low, as no signal costs this plan much confidence" read as garbled
    # jargon that names no risk (ua38 of round 5's measure).
    "low": _Shape((), "", "every measure in the table above scores close to full confidence"),
}
# The bias to check, by which signal suggests it: past decisions of the tenant (anchoring),
# uncertain curves (overconfidence), else recent history (availability).
BIAS_SHAPES: dict[str, _Shape] = {
    "anchoring": _Shape(
        (("similar past plans", "2"),),
        "A bias to check is anchoring on the {similar past plans} similar decided plan(s), as",
        "the split may drift toward what was decided last time",
    ),
    "overconfidence": _Shape(
        (),
        "A bias to check is overconfidence in the fitted curves, as",
        "a tidy optimum can hide a wide range of outcomes",
    ),
    "availability": _Shape(
        (),
        "A bias to check is availability bias, as",
        "recent weeks shape the curves more than the whole season",
    ),
}
FRAME_OPENING = (
    "Another way to read this plan is to judge it on {other} instead of {objective}, which"
)
FRAME_ENDING = "could change which lines get the money"
# The example plan's own facts, whatever its shapes.
_REFLECTION_BASE = (
    ("confidence", "62%"),
    ("retailer with the most spend", "Shop A"),
    ("its share of spend", "70%"),
    ("objective", "incremental margin"),
)
_EXAMPLE_MEMORY = "2026-09-14 t-0: approved $900,000 over Shop A+Shop B"


# "The main risk is underpowered experiment" read as broken English.
_ARTICLE = {"underpowered experiment": "an ", "optimizer result": "the "}


def reflection_openings(risk: str, bias: str, values: dict[str, str]) -> tuple[str, str, str]:
    """The three openings the code writes, for a real plan or the example: the main risk of
    kind `risk` stating its signal, the bias of kind `bias`, the other frame. `values` holds
    the facts by name, and `other` and `objective` for the frame. A risk kind without a shape
    opens with its name alone."""
    shape = RISK_SHAPES.get(risk)
    stated = _fill(shape.opening, values) if shape and shape.opening else None
    if risk == "low":
        risk_text = "The main risk is small, as"
    elif stated:
        # "1 open finding", "2 open findings": the grammar refuses "finding(s)" in an opening,
        # so such a plan's words all went to the template ("no grammar").
        stated = _plural(stated, values.get("governance findings"))
        risk_text = f"The main risk is {_ARTICLE.get(risk, '')}{risk}, as {stated}, so"
    else:
        risk_text = f"The main risk is {_ARTICLE.get(risk, '')}{risk}, so"
    bias_text = _plural(
        _fill(BIAS_SHAPES[bias].opening, values) or "", values.get("similar past plans")
    )
    return risk_text, bias_text, _fill(FRAME_OPENING, values) or ""


def _fill(template: str, values: dict[str, str]) -> str | None:
    """`template` with each `{name}` replaced by its value, or None when one has none."""
    out = template
    for name in re.findall(r"\{([^}]+)\}", template):
        if values.get(name) is None:
            return None
        out = out.replace("{" + name + "}", values[name])
    return out


def _plural(text: str, count: str | None) -> str:
    """`text` with "plan(s)" written "plan" for a count of "1", else "plans"."""
    return re.sub(r"\((s)\)", "" if count == "1" else r"\1", text)


# What each of the reflection's three sentences is asked to say.
REFLECTION_ASKS = (
    "the main risk of this plan",
    "a bias the planner should check",
    "another way to read this plan",
)


def reflection_examples(risk: str, bias: str) -> list[WorkedExample] | None:
    """The example plan's facts, memory and one-sentence answer for each of the reflection's
    three sentences (`REFLECTION_ASKS`), for a main risk of kind `risk` and a bias of kind
    `bias`, or None when either has no example. Each example holds only the facts its
    sentence states, so that the runtime keeps few of them computed: 10 + 3 + 1 in all."""
    if risk not in RISK_SHAPES or bias not in BIAS_SHAPES:
        return None
    r, b = RISK_SHAPES[risk], BIAS_SHAPES[bias]
    risk_facts = dict(_REFLECTION_BASE) | ({"main risk": risk} if risk != "low" else {})
    risk_facts.update(r.facts)
    bias_facts = dict(_REFLECTION_BASE) | dict(b.facts)
    frame = {"other": "incremental revenue", "objective": "incremental margin"}
    openings = reflection_openings(risk, bias, risk_facts | bias_facts | frame)
    return [
        WorkedExample(list(risk_facts.items()), [], f"{openings[0]} {r.ending}."),
        WorkedExample(
            list(bias_facts.items()),
            [_EXAMPLE_MEMORY] if bias == "anchoring" else [],
            f"{openings[1]} {b.ending}.",
        ),
        WorkedExample(list(_REFLECTION_BASE), [], f"{openings[2]} {FRAME_ENDING}."),
    ]


def _reflection_ask(facts: list[tuple[str, str]], memory: list[str], ask: str) -> str:
    lines = _facts(facts)
    if memory:
        lines += ["", f"A similar past plan: {memory[0]}"]
    lines += ["", f"In one short sentence, say {ask}."]
    return "\n".join(lines)


def reflection_messages(
    facts: list[tuple[str, str]],
    memory: list[str],
    ask: str,
    example: WorkedExample | None = None,
) -> list[dict[str, str]]:
    """One reflection sentence's conversation: the worked example asked and answered (if any;
    its `passages` are its memory), then the signals as facts, the most similar past plan,
    and what to say in one sentence (the grammar opens it)."""
    return _conversation(
        REFLECTION_SYSTEM, lambda f, m: _reflection_ask(f, m, ask), facts, memory, example
    )
