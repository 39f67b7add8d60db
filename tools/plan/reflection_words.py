"""The reflection's sentences: the main risk, a bias to check and another way to read the plan,
written from the computed signals (`tools.plan.reflection` computes them; nothing here changes
a number).

    words = write_words(plan, signals, found_risks, memory, llm)
    words.risk, words.bias_checkpoint, words.alternate_frames, words.written_by, words.reason

The model sees the signals as a facts table (`reflection_facts`: confidence, the main risks'
numbers, the plan's concentration, all pre-formatted) and writes three sentences under a
grammar (`adapters.structured.SentenceGrammar`) that opens each one for it ("The main risk
is", "A bias to check is", "Another way to read this plan is"), admits only the facts' number
strings and no spelled-out numbers, and only general words (`tools.plan.vocabulary`) and those
of the facts, the memory and the template's sentences. The text is checked like the rationale's
(`tools.plan.rationale.check_text`); when it fails, or without a model, the template sentences
below are written from the same facts, and `written_by`/`reason` say so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from adapters.structured import SchemaUnsupportedError, SentenceGrammar, StructuredOutputError
from tools.plan.facts import FactsTable, check_text, money, ratio, share
from tools.plan.labels import cap_label
from tools.plan.numbers import NUMBER_WORDS
from tools.plan.plan import Plan, Risk
from tools.plan.prompts import reflection_messages
from tools.plan.vocabulary import GENERAL_WORDS, name_joins, words_of

if TYPE_CHECKING:
    from adapters.chat_model import RMNChatModel
    from tools.plan.reflection import ReflectionSignals

# The adapter task the sentences are written under: none (the base model; the bundled task
# adapters were trained for JSON and ad copy).
REFLECTION_TASK: str | None = None
OPENINGS: tuple[str, str, str] = (
    "The main risk is",
    "A bias to check is",
    "Another way to read this plan is",
)
# Three code-written openings (about 10-25 tokens each) and at most 11 words of the model's
# after each fit in 120 tokens.
WORD_TOKENS = 120
MAX_WORDS = 12


class ReflectionWords(BaseModel):
    """The reflection's sentences and who wrote them."""

    risk: str = Field(description="the main risk in one sentence")
    bias_checkpoint: str
    alternate_frames: list[str] = Field(min_length=1, max_length=2)
    written_by: Literal["llm", "template"] = "template"
    reason: str | None = Field(None, description="why the model's sentences were not used")


def reflection_facts(
    plan: Plan, signals: ReflectionSignals, found: list[Risk], memory: list[str]
) -> FactsTable:
    """The signals as a text may state them: the confidence's inputs that cost something,
    the main risks by name, where the money is concentrated."""
    from tools.plan.reflection import confidence

    facts = FactsTable()
    facts.add("confidence", share(confidence(signals).value))
    for i, risk in enumerate(found[:3]):
        facts.add("main risk" if i == 0 else "another risk", risk.factor)
    s = signals
    if s.curve_uncertainty is not None:
        facts.add("curve uncertainty (CV)", f"{s.curve_uncertainty:.2f}")
    if s.coverage is not None:
        facts.add("spend on lines without enough data", share(1 - s.coverage))
    if s.iroas is not None:
        facts.add("expected iROAS", ratio(s.iroas))
    if s.roas_floor:
        facts.add("ROAS floor", ratio(s.roas_floor))
    if s.binding_caps:
        # In words, as an opening states them ("Alpha Mart sponsored search"), not the keys
        # ("alpha/sponsored_search", which no sentence grammar admits).
        caps = (cap_label(c).replace(",", "") for c in sorted(s.binding_caps))
        facts.add("retailers at their cap", " and ".join(caps))
    if s.governance_flags:
        facts.add("governance findings", str(s.governance_flags))
    if s.experiment_power is not None:
        facts.add("experiment power", share(s.experiment_power))
        facts.add("target power", share(s.experiment_target_power))
    if s.experiment_budget_for_target and s.experiment_adequate is False:
        facts.add("test spend that reaches the target", money(s.experiment_budget_for_target))
    if s.top_retailer and s.top_retailer_share is not None:
        facts.add("retailer with the most spend", s.top_retailer)
        facts.add("its share of spend", share(s.top_retailer_share))
    facts.add("objective", plan.brief.objective.replace("_", " "))
    if memory:
        facts.add("similar past plans", str(len(memory[:3])))
    return facts


# --- sentences --------------------------------------------------------------------------------

# Per risk factor: how its opening states the signal (from the facts), and the template's
# ending (no numbers: they are in the opening).
_RISK_DETAIL: dict[str, tuple[str, str]] = {
    "response curve uncertainty": (
        "the fitted curves vary with a CV of {curve uncertainty (CV)}",
        "the expected outcome could move a lot",
    ),
    "thin data coverage": (
        "{spend on lines without enough data} of spend is on lines without enough data",
        "those lines are closer to tests than to proven spend",
    ),
    "little room above the ROAS floor": (
        "the expected iROAS of {expected iROAS} sits close to the {ROAS floor} floor",
        "a small miss could breach the floor",
    ),
    "binding caps": (
        "caps bind at {retailers at their cap}",
        "more spend there is not possible this month",
    ),
    "governance findings": (
        "{governance findings} governance finding(s) are open",
        "the plan needs a human review before launch",
    ),
    "solver result": (
        "the optimizer did not report a clean optimum",
        "the allocation should be run again before approval",
    ),
    "underpowered experiment": (
        "the experiment has {experiment power} power against the {target power} target",
        "a flat result would not prove there is no lift",
    ),
}


def _fill(template: str, facts: FactsTable) -> str | None:
    names = re.findall(r"\{([^}]+)\}", template)
    values = {n: facts.get(n) for n in names}
    if any(v is None for v in values.values()):
        return None
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def word_sentences(
    plan: Plan, signals: ReflectionSignals, found: list[Risk], memory: list[str]
) -> tuple[FactsTable, list[tuple[str, str]]]:
    """The facts and (opening, template ending) of the three sentences: the main risk with
    its signal, a bias to check, another way to read the plan."""
    facts = reflection_facts(plan, signals, found, memory)
    risk = ("The main risk is low", "no signal costs the plan much confidence")
    if found:
        detail, ending = _RISK_DETAIL.get(found[0].factor, ("", "it deserves a look"))
        stated = _fill(detail, facts) if detail else None
        opening = f"The main risk is {found[0].factor}"
        risk = (f"{opening}, as {stated}, so" if stated else f"{opening}, so", ending)
    if memory:
        count = facts.get("similar past plans")
        plans = "plan" if count == "1" else "plans"
        bias_end = (
            f"anchoring on past plans, as {count} similar decided {plans} may pull the split "
            "toward what was approved before"
        )
    elif signals.curve_uncertainty is not None and signals.curve_uncertainty > 0.2:
        bias_end = "overconfidence in the fitted curves, as a tidy optimum can hide a wide range"
    else:
        bias_end = "availability bias, as recent history shapes the curves more than the season"
    objective = plan.brief.objective.replace("_", " ")
    other = "incremental revenue" if objective != "incremental revenue" else "incremental margin"
    frame_end = f"to judge it on {other} instead of {objective}, which could reorder the lines"
    return facts, [risk, (OPENINGS[1], bias_end), (OPENINGS[2], frame_end)]


def template_words(
    plan: Plan, signals: ReflectionSignals, found: list[Risk], memory: list[str]
) -> ReflectionWords:
    """The three sentences written by code (the openings and their template endings), and a
    second frame on concentration."""
    facts, sentences = word_sentences(plan, signals, found, memory)
    risk, bias, frame = (f"{o} {e}." for o, e in sentences)
    frames = [frame]
    if signals.top_retailer and signals.top_retailer_share is not None:
        frames.append(
            f"Concentration: {facts.get('its share of spend')} of spend goes to "
            f"{signals.top_retailer}; is one network's curve worth that much of the flight?"
        )
    return ReflectionWords(risk=risk, bias_checkpoint=bias, alternate_frames=frames)


# --- the model --------------------------------------------------------------------------------


def words_grammar(
    facts: FactsTable, sentences: Sequence[tuple[str, str]], memory: Sequence[str] = ()
) -> SentenceGrammar:
    """The grammar of the three sentences: `sentences` gives each one's opening and the
    template's ending, whose words (with the facts', the memory's and `GENERAL_WORDS`) are
    the words the model may use."""
    openings = tuple(o for o, _ in sentences)
    shown = [*(f"{n} {v}" for n, v in facts.pairs()), *openings, *memory]
    return SentenceGrammar(
        numbers=facts.numbers(),
        citations=0,
        min_words=4,
        max_words=MAX_WORDS,
        banned_words=NUMBER_WORDS,
        banned_prefixes=name_joins(shown),
        openings=openings,
        free_numbers=False,
        lexicon=GENERAL_WORDS,
        known_words=words_of([*shown, *(e for _, e in sentences)]),
    )


def split_words(text: str) -> tuple[str, str, str] | None:
    """The model's text cut at its three openings, or None when one is missing."""
    starts = [text.find(o) for o in OPENINGS]
    if any(s < 0 for s in starts) or starts != sorted(starts):
        return None
    ends = [*starts[1:], len(text)]
    risk, bias, frame = (text[a:b].strip() for a, b in zip(starts, ends, strict=True))
    return risk, bias, frame


def write_words(
    plan: Plan,
    signals: ReflectionSignals,
    found: list[Risk],
    memory: list[str],
    llm: RMNChatModel | None,
    task: str | None = REFLECTION_TASK,
) -> ReflectionWords:
    """The model's sentences when they pass `check_text` against the facts, else the
    template's with the reason."""
    template = template_words(plan, signals, found, memory)
    if llm is None:
        return template.model_copy(update={"reason": "no model"})
    facts, sentences = word_sentences(plan, signals, found, memory)
    try:
        grammar = words_grammar(facts, sentences, memory)
    except SchemaUnsupportedError as err:  # the template's words still serve
        return template.model_copy(update={"reason": f"no grammar: {err.message}"})
    writer = llm.bind_adapters(task=task, tenant=plan.tenant, max_new_tokens=WORD_TOKENS)
    try:
        out = writer.with_structured_output(grammar, include_raw=True).invoke(
            reflection_messages(facts.pairs(), memory)
        )
    except StructuredOutputError as err:
        return template.model_copy(update={"reason": f"model error: {err.message}"})
    text = out.get("parsed")
    if not isinstance(text, str):
        error = out["raw"].response_metadata.get("error") or "no text"
        return template.model_copy(update={"reason": f"model text unusable: {error}"})
    problem = check_text(text, facts, 0, need_number=False, known=memory)
    parts = split_words(text)
    if problem is None and parts is None:
        problem = "a sentence is missing"
    if problem is not None or parts is None:
        return template.model_copy(update={"reason": problem})
    risk, bias, frame = parts
    if re.sub(r"\W", "", frame.lower()) == re.sub(r"\W", "", bias.lower()):
        return template.model_copy(update={"reason": "repeats a sentence"})
    return ReflectionWords(
        risk=risk, bias_checkpoint=bias, alternate_frames=[frame], written_by="llm"
    )
