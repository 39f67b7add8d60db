"""The rationale a manager reads on a plan: why this split and what binds (`allocation`), what
the experiment can and cannot tell (`experiment`), written from a facts table the tools
produced and the retrieved policy passages, citing them.

    requests = [allocation_request(plan, retrieved), experiment_request(plan, retrieved)]
    texts = write_texts(llm, [r for r in requests if r is not None])
    texts[0].text, texts[0].path, texts[0].citations  # "... [1].", "model", [Citation(...)]

A facts table (`FactsTable`) holds every number a text may use, pre-formatted as it may appear
("$1.08M", "73%", "4.2"). The model sees a worked example of the same kinds of sentence
(`tools.plan.prompts.worked_example`), then the table and up to three passages numbered
[1]..[n] (`tools.plan.prompts.rationale_messages`), and ends the code's openings (one per
`Sentence`, stating the numbers) under a grammar (`adapters.structured.SentenceGrammar`) that
admits general words and those of what it was shown only (`tools.plan.vocabulary`) and no
number of its own. The code puts each sentence's citation marker before its period
(`_with_markers`), then checks the text (`check_text`: every number one of the facts',
`tools.plan.numbers`; the markers name passages shown; at least one fact used; English words;
no loop or doubled word); a text that fails, or no model, gets the template sentences written
here from the same facts, and `path`/`reason` say so. Every call of one node goes to the
model as one batch.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from adapters.structured import SentenceGrammar, StructuredOutputError
from tools.catalog import current
from tools.errors import RMNError
from tools.plan.citations import cite, marker
from tools.plan.facts import (
    MIN_WORDS,
    FactsTable,
    check_text,
    money,
    per_dollar,
    ratio,
    share,
)
from tools.plan.guardrails import binding_caps, losing_retailers
from tools.plan.labels import and_list
from tools.plan.numbers import NUMBER_WORDS
from tools.plan.plan import Citation, GroundedText, Plan
from tools.plan.prompts import (
    WorkedExample,
    borrowed_names,
    rationale_messages,
    worked_example,
)
from tools.plan.vocabulary import GENERAL_WORDS, name_joins, words_of
from tools.policy.compliance import retailer_policy

if TYPE_CHECKING:
    from adapters.chat_model import RMNChatModel

# The adapter task the rationale is written under: none (the base model). The bundled task
# adapters were trained for JSON (planning) and ad copy (creative); sentences about a plan
# read better on the base model.
RATIONALE_TASK: str | None = None
# Two sentences, each a code-written opening (about 12-25 tokens) and at most 17 words of the
# model's (`SentenceGrammar` admits `max_words` - 1 after an opening), fit in 128 tokens; the
# grammar ends the text there. The worked example's longest ending is 15 words
# with two two-word names: with 15 allowed, the grammar cut "at Beta Grocers" to "at Beta".
TEXT_TOKENS = 128
MAX_WORDS = 18


# How the approval summary and the report title each kind of text.
TITLES = {"allocation": "Why this split", "experiment": "What the experiment can tell"}


@dataclass
class TextRequest:
    """One text to write: its facts, the passages it may cite (`citations[i]` is `[i+1]`,
    `passages[i]` its text) and the template written from the same facts."""

    kind: str
    facts: FactsTable
    citations: list[Citation]
    passages: list[str]
    ask: str  # what the model is asked to say
    template: str
    openings: tuple[str, ...] = ()
    # Each sentence's kind (`tools.plan.prompts.SHAPES`): they pick the worked example the
    # model is shown.
    shapes: tuple[str, ...] = ()
    # Each sentence's citation marker (" [2]", or "" with nothing to cite), as the template
    # places it: by the passage that states its rule.
    markers: tuple[str, ...] = ()
    need_number: bool = True
    tenant: str | None = None
    adapters: list[str] = field(default_factory=list)
    # The code's first sentence, in place of the model's (on the brief's one retailer: "it
    # is the only brand to have a minimum budget of at least in a month", 6 of 8 such plans
    # when asked for it; asked for the cap sentence alone, that garbled, 2 of 5).
    lead: str = ""

    def shown(self) -> list[str]:
        """The texts the model is shown: the facts and the passages."""
        return [*(f"{n} {v}" for n, v in self.facts.pairs()), *self.passages]

    def example(self) -> WorkedExample | None:
        return worked_example(self.kind, self.shapes)

    def grammar(self) -> SentenceGrammar:
        example = self.example()
        return SentenceGrammar(
            numbers=self.facts.numbers(),
            citations=0,  # the code adds each sentence's marker (`_with_markers`)
            min_sentences=1,
            max_sentences=2,
            min_words=MIN_WORDS,
            max_words=MAX_WORDS,
            banned_words=NUMBER_WORDS,
            banned_prefixes=name_joins([*self.shown(), *self.openings]),
            openings=self.openings,
            free_numbers=False,
            lexicon=GENERAL_WORDS,
            known_words=words_of(
                [*self.shown(), *self.openings, self.template, example.answer if example else ""]
            ),
        )


def _name(retailer: str) -> str:
    info = current().retailers.get(retailer)
    return info.name if info else retailer.replace("_", " ")


def _words(text: str) -> str:
    return re.sub(r"[^A-Za-z' ]+", " ", text.replace("_", " ")).strip()


# --- allocation -------------------------------------------------------------------------------

GOAL_WORD = {"incremental_margin": "margin", "incremental_revenue": "revenue", "roas": "return"}


# A plan is one brand's, and its test measures that brand's ads: "it says nothing about other
# brands new to the network" (3 reports of unseen38, lifted from a passage on pre/post tests for
# brands new to the network) is a claim about no one in the plan.
_OTHER_BRANDS = re.compile(r"\b(?:other|new|another|competing)\s+brands?\b|\bbrands?\s+new\b", re.I)


class Sentence(NamedTuple):
    """One sentence of a rationale: the code's opening (it states the facts' numbers), the
    template's ending, a word of the passage it cites, and its kind
    (`tools.plan.prompts.SHAPES`)."""

    opening: str
    ending: str
    hint: str
    shape: str


def allocation_facts(plan: Plan) -> FactsTable:
    """Budget, reserve, spend and share per retailer, expected margin with its interval,
    iROAS, the ROAS floor, and what binds with its shadow price."""
    facts = FactsTable()
    b, o = plan.brief, plan.expected_outcome
    spend = sum(r.spend for r in plan.allocation)
    facts.add("total budget", money(b.total_budget))
    if o is not None:
        facts.add("experiment reserve", money(o.reserve))
    facts.add("planned spend", money(spend))
    for retailer, amount in _by_retailer(plan):
        facts.add(f"{_name(retailer)} spend", money(amount))
        if spend > 0:
            facts.add(f"{_name(retailer)} share", share(amount / spend))
    if o is not None:
        m = o.incremental_margin
        facts.add("expected incremental margin", money(m.mean))
        facts.add("margin, low end of the 90% range", money(m.low))
        facts.add("margin, high end of the 90% range", money(m.high))
        facts.add("expected iROAS", ratio(o.iroas.mean))
    if b.roas_floor:
        facts.add("ROAS floor", ratio(b.roas_floor))
    for label, (what, price, cap) in zip(
        ("binding limit", "next binding limit"), _binding(plan)[:2], strict=False
    ):
        facts.add(label, what)
        if cap is not None:  # written as the retailer's policy writes it: "$300,000"
            facts.add(f"{what} in the policy, per month", f"${cap:,.0f}")
        facts.add(f"{what}, value of one more dollar", per_dollar(price))
    return facts


def _by_retailer(plan: Plan) -> list[tuple[str, float]]:
    totals: dict[str, float] = {}
    for row in plan.allocation:
        totals[row.retailer_id] = totals.get(row.retailer_id, 0.0) + row.spend
    return sorted(((r, s) for r, s in totals.items() if s > 0), key=lambda kv: (-kv[1], kv[0]))


def _binding(plan: Plan) -> list[tuple[str, float, float | None]]:
    """(what binds in words, its shadow price per dollar, the policy's monthly cap), largest
    price first: the retailers' monthly placement caps and the brief's retailer caps."""
    out: list[tuple[str, float, float | None]] = []
    # The caps guardrails call binding, in the goal's dollars (a ROAS plan's scaled).
    for key, value in binding_caps(plan).items():
        retailer, _, placement = key.partition("/")
        if placement:
            what = " ".join(w for w in (_name(retailer), _words(placement), "monthly cap") if w)
            out.append((what, value, _monthly_cap(retailer, placement)))
        else:
            out.append((f"{_name(retailer)} cap in the brief", value, None))
    return sorted(out, key=lambda kv: (-kv[1], kv[0]))


def _monthly_cap(retailer: str, placement: str) -> float | None:
    try:
        rule = retailer_policy(retailer).bidding.placements.get(placement)  # type: ignore[call-overload]
    except RMNError:
        return None
    return float(rule.max_monthly_spend_usd) if rule is not None else None


def _capped_elsewhere(plan: Plan) -> list[str]:
    """The retailers, by name, whose caps bind while another retailer of the plan gets money
    that brings back less revenue than it costs: that money is there because the caps are
    full, not for its return (va37 of unseen41). Empty otherwise."""
    losing = {rid for rid, _, _ in losing_retailers(plan)}
    if not losing:
        return []
    capped = {key.partition("/")[0] for key in binding_caps(plan)} - losing
    return [_name(r) for r in sorted(capped)]


def allocation_sentences(plan: Plan, facts: FactsTable) -> list[Sentence]:
    """The openings state the split and what binds with the facts' numbers; the model (or
    the template) says why."""
    goal = GOAL_WORD.get(plan.brief.objective, "return")
    ranked = _by_retailer(plan)
    if not ranked:
        return []
    # Every retailer with spend (a three-retailer split named only the first two).
    names = [_name(r) for r, _ in ranked]
    parts = [f"{n}{' gets' if i == 0 else ''} {facts.get(f'{n} share')}"
             for i, n in enumerate(names)]  # fmt: skip
    split = and_list(parts)
    capped = _capped_elsewhere(plan)
    out = [
        Sentence(f"{split} of the {facts.get('planned spend')} planned spend because",
                 "the brief itself divides the budget that way", "", "brief_split")
        if plan.brief.retailer_split and len(ranked) > 1
        else Sentence(
            f"{split} of the {facts.get('planned spend')} planned spend because caps hold spend "
            f"at {and_list(capped)}, so",
            "the rest of the budget goes where each dollar brings back less than it costs",
            "",
            "spill",
        )
        if capped
        else Sentence(
            f"{split} of the {facts.get('planned spend')} planned spend because",
            # "within the caps": money that goes to a retailer because another's caps are full
            # does not go where the curves promise the most (ua25, round 5's measure).
            f"that is where the curves promise the most {goal} per extra dollar within the caps",
            "",  # no marker: the split rests on the curves, which no passage states
            "split" if len(ranked) > 1 else "single",
        )
    ]
    binding = _binding(plan)
    if binding:
        what = binding[0][0]
        price = facts.get(f"{what}, value of one more dollar")
        why = (
            "the brief caps spend there"
            if what.endswith("in the brief")
            else "the retailer limits what one brand may spend there each month"
        )
        out.append(
            Sentence(
                # "most" where several bind: "What binds is the X cap" beside a table of
                # four binding caps read as a contradiction.
                # A ROAS plan's cap is worth revenue (`price_scale`), not "return".
                # "What binds most" beside a budget worth more read as wrong (sa23 of
                # unseen38): it is the cap that binds most.
                f"The cap that binds {'most ' if len(binding) > 1 else ''}is the {what}, worth "
                f"{price} of {'revenue' if goal == 'return' else goal} per extra dollar, as",
                why,
                "cap",
                "brief_cap" if what.endswith("in the brief") else "cap",
            )
        )
    elif facts.get("expected incremental margin") is not None and not plan.brief.retailer_split:
        # Not under the brief's split: "no retailer cap keeps the money from where it earns the
        # most" beside the split's own cost read as wrong (12 reports of unseen48's measure).
        out.append(
            Sentence(
                f"Expected margin is {facts.get('expected incremental margin')}, likely between "
                f"{facts.get('margin, low end of the 90% range')} and "
                f"{facts.get('margin, high end of the 90% range')}, and",
                "no retailer cap limits the split",
                "cap",
                "no_cap",
            )
        )
    return out


def _markers(sentences: list[Sentence], citations: list[Citation]) -> tuple[str, ...]:
    """Each sentence's citation marker: the passage that states its rule (none without a
    hint: the split's "spend" matched "Monthly spend caps", read as claiming the split)."""
    return tuple(marker(citations, s.hint) if s.hint else "" for s in sentences)


def _template(sentences: list[Sentence], markers: tuple[str, ...]) -> str:
    return " ".join(f"{s.opening} {s.ending}{m}." for s, m in zip(sentences, markers, strict=True))


def allocation_request(
    plan: Plan, retrieved: list[dict[str, Any]], tenant: str | None = None
) -> TextRequest:
    """What the allocation rationale is written from: its facts and the retailers'
    placement and spend rules (caps first, at the retailers that bind first)."""
    facts = allocation_facts(plan)
    binding = [what for what, _, _ in _binding(plan)]

    def first_binding(retailer: str) -> int:
        hits = [i for i, what in enumerate(binding) if what.startswith(_name(retailer) + " ")]
        return hits[0] if hits else len(binding)

    order = sorted([r for r, _ in _by_retailer(plan)], key=first_binding)
    citations, passages = cite(
        retrieved, ("placements_bidding",), order, prefer=("cap", "spend-caps")
    )
    sentences = allocation_sentences(plan, facts)
    funded = [r for r, _ in _by_retailer(plan)]
    only = len(funded) == 1 and plan.brief.retailers == funded
    # "asks for": a brief naming a paused retailer too names two ("the only retailer the brief
    # names" was read as wrong there).
    lead = f"{sentences[0].opening} it is the only retailer the brief asks for." if only else ""
    if sentences[0].shape == "brief_split":  # the model's: "the brief itself is split into
        lead = f"{sentences[0].opening} {sentences[0].ending}."  # onsite display" (unseen48)
    if plan.solver_inaccurate:
        # "... because each extra dollar now goes where the curves promise the most return"
        # above a reflection asking to run the split again (ta05 of unseen39, misleading).
        lead = (f"{sentences[0].opening} it is the optimizer's best answer, but the optimizer "
                "stopped before proving it the best, so run it again before approving.")
    markers = _markers(sentences, citations)
    return TextRequest(
        lead=lead,
        kind="allocation",
        facts=facts,
        citations=citations,
        passages=passages,
        ask="why the money is split this way and what limits it",
        template=_template(sentences, markers) or f"No spend was placed{marker(citations)}.",
        openings=tuple(s.opening for s in sentences),
        markers=markers,
        shapes=tuple(s.shape for s in sentences),
        tenant=tenant,
    )


# --- experiment -------------------------------------------------------------------------------


def experiment_facts(plan: Plan) -> FactsTable | None:
    """The experiment's design, power and what it can detect; None without an experiment."""
    e = plan.experiment or {}
    if not e.get("experiment_type"):
        return None
    facts = FactsTable()
    facts.add("experiment", _words(str(e["experiment_type"])))
    facts.add("retailer", _name(str(e.get("retailer") or "")))
    _number_fact(facts, "test length in days", e.get("duration_days"), lambda v: f"{v:.0f}")
    _number_fact(facts, "share held out", e.get("holdout_pct"), share)
    _number_fact(facts, "test spend", e.get("test_spend"), money)
    _number_fact(facts, "smallest lift it can detect", e.get("mde_lift"), lambda v: f"{v:.1%}")
    _number_fact(facts, "smallest iROAS it can detect", e.get("mde_iroas"), ratio)
    _number_fact(facts, "expected iROAS", e.get("expected_iroas"), ratio)
    _number_fact(facts, "chance of detecting the lift", e.get("power"), share)
    _number_fact(facts, "chance needed", e.get("target_power"), share)
    if e.get("adequate") is False:
        _number_fact(
            facts, "test spend that reaches the target", e.get("budget_for_target_power"), money
        )
    try:  # the retailer's limits, written as its measurement policy writes them
        rules = retailer_policy(str(e.get("retailer") or "")).measurement
    except RMNError:
        return facts
    facts.add("shortest test allowed in days", str(rules.min_test_days))
    facts.add("longest test allowed in days", str(rules.max_test_days))
    facts.add("smallest holdout allowed", share(rules.min_holdout_pct))
    facts.add("largest holdout allowed", share(rules.max_holdout_pct))
    return facts


def _number_fact(facts: FactsTable, name: str, value: Any, fmt: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        facts.add(name, fmt(float(value)))


def experiment_sentences(plan: Plan, facts: FactsTable) -> list[Sentence]:
    """What the test can detect and how sure it is, with the facts' numbers; the model (or
    the template) says what follows."""
    e = plan.experiment or {}
    first = f"This {facts.get('experiment')} at {facts.get('retailer')} can detect"
    mde, days, held = (
        facts.get("smallest lift it can detect"),
        facts.get("test length in days"),
        facts.get("share held out"),
    )
    first += f" a sales lift of {mde}" if mde else " incremental sales"
    first += f" in {days} days" if days else ""
    # "with 20% held out" read as a share of the budget (an approver of unseen38).
    if held:
        geo = "geo" in str(e.get("experiment_type") or "")
        what = f"{held} of the areas held out" if geo else f"the ads off {held} of the time"
        first += f" with {what}"
    out = [
        Sentence(f"{first}, so", "a smaller true lift will read as no effect", "holdout", "detect")
    ]
    power, target = facts.get("chance of detecting the lift"), facts.get("chance needed")
    if power and target and e.get("adequate") is False:
        out.append(
            Sentence(
                # "power" is the statistician's word: "With 48% power against the 80% target"
                # was unclear in 8 reports of unseen38, whose table says "chance of detecting".
                f"With a {power} chance of detecting the lift, where {target} is needed, it cannot",
                "reliably confirm the expected lift, and it says nothing about other retailers",
                "design",
                "underpowered",
            )
        )
    else:
        out.append(
            Sentence(
                "It cannot",
                "tell how other retailers or later weeks would respond",
                "design",
                "limits",
            )
        )
    return out


def experiment_request(
    plan: Plan, retrieved: list[dict[str, Any]], tenant: str | None = None
) -> TextRequest | None:
    """What the experiment rationale is written from, or None without an experiment: its
    facts and the experiment retailer's measurement rules (those its design checked first)."""
    facts = experiment_facts(plan)
    if facts is None:
        return None
    e = plan.experiment or {}
    anchors = tuple(
        str(r.get("source", "")).partition("#")[2]
        for r in e.get("rules") or []
        if isinstance(r, dict) and "#" in str(r.get("source", ""))
    )
    citations, passages = cite(
        retrieved, ("measurement",), [str(e.get("retailer") or "")], prefer=anchors
    )
    sentences = experiment_sentences(plan, facts)
    markers = _markers(sentences, citations)
    return TextRequest(
        kind="experiment",
        facts=facts,
        citations=citations,
        passages=passages,
        ask="what this experiment can tell and what it cannot",
        template=_template(sentences, markers),
        openings=tuple(s.opening for s in sentences),
        markers=markers,
        shapes=tuple(s.shape for s in sentences),
        tenant=tenant,
    )


# --- writing ----------------------------------------------------------------------------------


def write_texts(
    llm: RMNChatModel | None,
    requests: list[TextRequest],
    *,
    task: str | None = RATIONALE_TASK,
    without_model: str = "no model",
) -> list[GroundedText]:
    """Each request's text, in order: the model's where it passes `check_text`, else the
    template's (with the reason; `without_model` when there is no `llm`). All model calls
    go out as one batch."""
    answers = [_ModelText(None, without_model) for _ in requests]
    if llm is not None and requests:
        answers = _model_texts(llm, requests, task)
    out = []
    for request, answer in zip(requests, answers, strict=True):
        text, reason = answer.text, answer.problem
        if text is not None and reason is None:
            text, reason = _with_markers(text, request.markers)
        if text is not None and reason is None:
            reason = check_text(
                text,
                request.facts,
                len(request.citations),
                need_number=request.need_number,
                known=request.passages,
            )
        if text is not None and reason is None and (names := borrowed_names(text, request.shown())):
            reason = "names the worked example's " + " and ".join(names)
        if text is not None and reason is None and _OTHER_BRANDS.search(text):
            reason = "speaks of other brands"
        model_ok = text is not None and reason is None
        out.append(
            GroundedText(
                kind=request.kind,  # type: ignore[arg-type]
                text=_led(request, text if model_ok and text is not None else request.template),
                path="model" if model_ok else "template",
                reason=None if model_ok else reason,
                facts=request.facts.as_dict(),
                citations=request.citations,
                adapters=answer.adapters if model_ok else [],
                # What the model was given, for reviewers' ratings (`tools.plan.feedback`).
                prompt=(answer.messages or _messages(request)) if model_ok else None,
                chosen_logprob=answer.logprob,
            )
        )
    return out


def _led(request: TextRequest, text: str) -> str:
    """`text` with its first sentence replaced by the request's `lead`, if it has one."""
    if not request.lead:
        return text
    rest = text.find(request.openings[1]) if len(request.openings) > 1 else -1
    return request.lead + (f" {text[rest:]}" if rest > 0 else "")


# A sentence's end: a period followed by a space or the end (not a decimal point: "$1.08M").
_SENTENCE_END = re.compile(r"\.(?=\s|$)")


def _with_markers(text: str, markers: tuple[str, ...]) -> tuple[str, str | None]:
    """`text` with each sentence's citation marker before its period, or why not. The
    grammar writes one sentence per opening, each ending on a period."""
    ends = [m.start() for m in _SENTENCE_END.finditer(text)]
    if len(ends) != len(markers):  # the token limit cut it ("this this this ... thus.")
        return text, f"cut off: {len(ends)} of {len(markers)} sentences"
    for end, mark in reversed(list(zip(ends, markers, strict=True))):
        text = text[:end] + mark + text[end:]
    return text, None


def _messages(request: TextRequest) -> list[dict[str, str]]:
    return rationale_messages(
        request.facts.pairs(), request.passages, request.ask, request.example()
    )


@dataclass
class _ModelText:
    """One request's model answer: the text or why there is none, the adapters that wrote
    it and the conversation the model was given (system message included)."""

    text: str | None
    problem: str | None
    adapters: list[str] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    logprob: float | None = None  # `Generation.chosen_logprob`


def _model_texts(
    llm: RMNChatModel, requests: list[TextRequest], task: str | None
) -> list[_ModelText]:
    """Each request's answer, from one batched call."""
    from adapters.chat_model import ChatCall, generate_many, generation_of

    calls = []
    for request in requests:
        writer = llm.bind_adapters(task=task, tenant=request.tenant)
        calls.append(
            ChatCall(
                writer,
                _messages(request),
                request.grammar(),
                max_new_tokens=TEXT_TOKENS,
            )
        )
    try:
        answers = generate_many(calls)
    except StructuredOutputError as err:
        return [_ModelText(None, f"model error: {err.message}") for _ in requests]
    out: list[_ModelText] = []
    for answer in answers:
        gen = generation_of(answer)
        if gen.parsed is None:
            out.append(_ModelText(None, f"model text unusable: {gen.error or 'no text'}"))
        else:
            out.append(_ModelText(str(gen.parsed), None, list(gen.adapters_active),
                                  gen.messages, gen.chosen_logprob))  # fmt: skip
    return out
