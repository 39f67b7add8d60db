"""Reflection: signals measured from a plan, a monotone confidence, risks with mitigations, and
words from the model only when they are usable (tiny random model: never; the real model, seeded
and greedy: never either on the plan tested, and `written_by` records that the template wrote
them)."""

from __future__ import annotations

import math
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from plan_support import make_plan

from adapters.chat_model import RMNChatModel
from adapters.runtime import Generation
from adapters.testing import tiny_fingerprint, tiny_llama, tiny_runtime, write_random_adapter
from tools.plan.facts import check_text, money
from tools.plan.guardrails import guardrails, hold_confidence
from tools.plan.labels import line_words
from tools.plan.plan import Plan, Risk
from tools.plan.plan_risks import NET_LOSS, UNMEASURED
from tools.plan.prompts import (
    BIAS_SHAPES,
    FRAME_ENDING,
    REFLECTION_ASKS,
    RISK_SHAPES,
    reflection_messages,
)
from tools.plan.reflection import (
    ReflectionError,
    ReflectionSignals,
    confidence,
    factors,
    reflect,
    risks,
    signals_from,
    threshold_words,
)
from tools.plan.reflection_words import (
    OPENINGS,
    SENTENCE_TOKENS,
    reflection_facts,
    split_words,
    template_words,
    word_sentences,
    words_grammar,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- signals --------------------------------------------------------------------------------


def test_signals_are_read_from_the_plan() -> None:
    plan = make_plan(caps={"alpha": 0.4, "beta": 0.0})
    s = signals_from(plan, curve_cv=None, coverage=0.8, flags=2)
    assert plan.expected_outcome is not None
    m = plan.expected_outcome.incremental_margin
    assert s.uncertainty_source == "margin_interval"
    assert s.curve_uncertainty == pytest.approx((m.high - m.low) / m.mean / 3.29)
    iroas = plan.expected_outcome.iroas.mean
    assert s.roas_slack == pytest.approx((iroas - 2.0) / 2.0)
    assert s.binding_caps == {"alpha": 0.4}  # a zero shadow price is a cap that does not bind
    assert s.governance_flags == 2 and s.coverage == 0.8 and s.solver_ok
    assert s.experiment_power == 0.5 and s.experiment_budget_for_target == 41_000
    assert s.spend == sum(r.spend for r in plan.allocation) and s.lines == 3
    assert s.top_retailer == "alpha"
    # The lines that return least per ad dollar, in words: at the optimum every line's next
    # dollar returns about the same, so "cut ... first" named lines by a near-tie, not the
    # ones a reader saw return least (sa10 of unseen38).
    weakest = min(plan.allocation, key=lambda r: r.expected_revenue / r.spend)
    assert s.weakest_lines[0] == line_words(weakest.retailer_id, weakest.placement, weakest.gtin,
                                            None)  # fmt: skip
    assert s.weakest_lines[0].endswith(f"at Alpha Mart ({weakest.placement.replace('_', ' ')})")
    with_cv = signals_from(plan, curve_cv=0.3, coverage=None, flags=0)
    assert with_cv.curve_uncertainty == 0.3 and with_cv.uncertainty_source == "curve_cv"
    no_floor = signals_from(make_plan(floor=None), None, None, 0)
    assert no_floor.roas_slack is None


def test_an_infeasible_plan_is_a_failed_solver() -> None:
    plan = make_plan().model_copy(update={"allocation": [], "solver_status": "infeasible"})
    s = signals_from(plan, curve_cv=0.1, coverage=1.0, flags=0)
    assert not s.solver_ok and factors(s)["solver"] < 0.5


# --- confidence -----------------------------------------------------------------------------


def base_signals(**update: object) -> ReflectionSignals:
    values: dict[str, object] = {
        "curve_uncertainty": 0.15,
        "uncertainty_source": "curve_cv",
        "coverage": 0.9,
        "roas_floor": 2.0,
        "iroas": 2.2,
        "roas_slack": 0.1,
        "governance_flags": 0,
        "solver_status": "optimal",
        "solver_ok": True,
        "experiment_power": 0.85,
        "experiment_adequate": True,
    }
    values.update(update)
    return ReflectionSignals.model_validate(values)


@pytest.mark.parametrize(
    ("field", "values", "direction"),
    [
        ("curve_uncertainty", [0.0, 0.1, 0.2, 0.4, 0.8, 2.0], -1),
        ("coverage", [0.0, 0.25, 0.5, 0.75, 1.0], +1),
        ("roas_slack", [-0.3, -0.1, 0.0, 0.05, 0.1, 0.2, 0.5], +1),
        ("governance_flags", [0, 1, 2, 5], -1),
        ("experiment_power", [0.0, 0.2, 0.5, 0.8, 1.0], +1),
    ],
)
def test_confidence_is_monotone_in_each_signal(
    field: str, values: list[float], direction: int
) -> None:
    got = [confidence(base_signals(**{field: v})).value for v in values]
    steps = [direction * (b - a) for a, b in zip(got, got[1:], strict=False)]
    assert all(step >= 0 for step in steps), got
    assert got[0] != got[-1]  # the signal matters
    assert all(0 <= v <= 1 for v in got)


def test_binding_caps_and_a_failed_solver_lower_confidence() -> None:
    free = confidence(base_signals()).value
    capped = confidence(base_signals(binding_caps={"alpha": 0.3, "beta": 0.1})).value
    failed = confidence(base_signals(solver_ok=False, solver_status="infeasible")).value
    assert failed < capped < free


def test_confidence_is_the_product_of_its_factors_and_explains_them() -> None:
    s = base_signals(curve_uncertainty=0.25, governance_flags=1)
    c = confidence(s)
    assert c.value == pytest.approx(math.prod(factors(s).values()), abs=5e-4)
    assert c.rationale.startswith(f"{c.value:.2f} = uncertainty ")
    assert "The forecast could be off by about 25% either way" in c.rationale
    # in an approver's words ("iROAS", "binding caps", "experiment power" read as jargon)
    assert "1 governance finding;" in c.rationale  # was "finding(s)"
    assert "the expected $2.20 of extra revenue per ad dollar is 10% above the $2.00 minimum" \
        in c.rationale
    assert "the experiment's chance of detecting the lift is 85% (80% needed)" in c.rationale
    for jargon in ("iROAS", "binding", "coefficient of variation", "power", "flag"):
        assert jargon not in c.rationale.partition(". ")[2], jargon
    assert c.signals["curve_uncertainty"] == 0.25 and c.signals["governance_flags"] == 1.0
    assert c.signals["factor_governance"] == pytest.approx(0.75)


# --- risks and the record -------------------------------------------------------------------


def test_risks_carry_mitigations_drawn_from_the_plan() -> None:
    plan = make_plan(floor=None)
    floor = plan.expected_outcome.iroas.mean / 1.03  # type: ignore[union-attr]
    plan = plan.model_copy(update={"brief": plan.brief.model_copy(update={"roas_floor": floor})})
    s = signals_from(plan, curve_cv=0.45, coverage=0.6, flags=1)
    found = {r.factor: r for r in risks(s)}
    assert set(found) >= {
        "response curve uncertainty",
        "thin data coverage",
        "little room above the ROAS floor",
        "governance findings",
        "underpowered experiment",
    }
    assert found["response curve uncertainty"].severity == "high"  # factor 1/(1 + 0.9^2)
    assert s.weakest_lines[0] in found["little room above the ROAS floor"].mitigation
    # "cut Beta Grocers, sponsored product, Brand Lime Iced Tea; Beta Grocers, sponsored
    # product, Brand Peach Iced Tea first if it slips" read as garbled (sa10 of unseen38)
    assert found["little room above the ROAS floor"].mitigation.endswith(
        " minimum, cut first the spend on the products with the least revenue per ad dollar "
        f"across their whole spend: {s.weakest_lines[0]} and {s.weakest_lines[1]}")  # fmt: skip
    # ("return least per ad dollar" was read as the next dollar's, and checked against the
    # placements' averages: round 5)
    assert "$41,000" in found["underpowered experiment"].mitigation
    assert found["thin data coverage"].signal.startswith("40%")
    calm = signals_from(make_plan(floor=None), curve_cv=0.05, coverage=1.0, flags=0)
    calm = calm.model_copy(update={"experiment_power": 0.9, "experiment_adequate": True,
                                   "margin": 2 * calm.spend})  # fmt: skip
    assert risks(calm) == []
    # Margin below ad spend (this plan's own) is a net loss; no experiment, an unmeasured
    # lift: reports showed both without a word in the risks.
    loss = calm.model_copy(update={"margin": 0.9 * calm.spend})
    assert [(r.factor, r.severity) for r in risks(loss)] == [("a net loss after ad spend", "high")]
    # A test that spends less than its reserve runs part of the flight the reserve is spread
    # over: the $184,681 of test spend it needs takes a reserve as many times larger as the
    # reserve is than what the test spends. "spend $184,681 of the $450,000 held on the test"
    # (and "raise the reserve to $372,966" of a test spending $167,072 of $336,000) named no
    # lever an approver has (sa14, sa27, sa30 of unseen38).
    weak = calm.model_copy(update={"experiment_power": 0.6, "experiment_adequate": False,
                                   "experiment_budget_for_target": 184_681.0,
                                   "experiment_held": 450_000.0,
                                   "experiment_test_spend": 103_562.0})  # fmt: skip
    # What the larger reserve is of the budget and leaves the ad plan (ua52 of unseen40), and
    # why it is larger after the options, not as a bracket inside them (ua46).
    assert risks(weak)[0].mitigation == (
        "raise the reserve to $802,480 (18% of the budget, leaving $3,697,520 for the ad plan) "
        "or extend the test, or read it as directional only; the test needs $184,681 of spend, "
        "and the reserve is spread evenly over the flight while the test runs only part of it")
    short = weak.model_copy(update={"experiment_held": 100_000.0, "experiment_test_spend": None})
    assert risks(short)[0].mitigation == (
        "raise the reserve to $184,681 (18% of the budget, leaving $815,319 for the ad plan) or "
        "extend the test, or read it as directional only")
    # a test as long as its flight cannot be extended within the plan
    full = short.model_copy(update={"experiment_fills_flight": True})
    assert "extend" not in risks(full)[0].mitigation
    plan = make_plan()
    plan.experiment = {**(plan.experiment or {}), "duration_days": 28}  # the default flight
    assert signals_from(plan, 0.05, 1.0, 0).experiment_fills_flight
    # a test in whole weeks ending within a week of the flight's end has no week to add: 4
    # October to 26 December of a flight to 31 December was told to "extend the test" (ya47)
    plan.brief.flight_start, plan.brief.flight_end = date(2027, 10, 1), date(2027, 12, 31)
    plan.experiment |= {"duration_days": 84, "start": "2027-10-04", "end": "2027-12-26"}
    assert signals_from(plan, 0.05, 1.0, 0).experiment_fills_flight
    plan.experiment |= {"end": "2027-12-19"}
    assert not signals_from(plan, 0.05, 1.0, 0).experiment_fills_flight
    untested = calm.model_copy(update={"experiment_power": None, "experiment_adequate": None})
    assert [r.factor for r in risks(untested)] == ["an unmeasured lift"]


def test_reflect_without_a_model_uses_the_template() -> None:
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    memory = ["2025-01-02 t-0: approved $60,000 over alpha+beta", "b", "c", "d"]
    r = reflect(plan, s, memory, None, threshold=0.8)
    assert r.phase == "reflection" and r.written_by == "template"
    assert r.memory_reference == memory[:3]
    # The numbers never come from the model: the computed confidence, held below the
    # threshold while a guardrail stands (this plan's experiment is underpowered).
    computed = confidence(s)
    capped = hold_confidence(computed, guardrails(plan), 0.8).value
    assert r.confidence.value == capped < 0.8 and r.confidence.signals == computed.signals
    # in words: "confidence >= 0.80" reached the report as "confidence &gt;= 0.80"
    # and whether this plan meets it (ua50 of unseen40: the rule alone beside "Confidence
    # 0.83" left the approver to work it out)
    rule = "its confidence is at least 0.80 and it has no governance flags"
    assert r.decision_threshold == f"{rule}; this plan does not, as its confidence is below 0.80"
    assert threshold_words(0.83, 0.8, 0) == f"{rule}; this plan meets both"
    # 0.798 shows as 0.79 and is below 0.80, as auto-approval reads it (va40 of unseen41:
    # "Confidence 0.79 ... this plan meets both")
    assert threshold_words(0.798, 0.8, 0).endswith("does not, as its confidence is below 0.80")
    flagged = threshold_words(0.83, 0.8, 1)
    assert flagged == f"{rule}; this plan does not, as it has 1 governance flag"
    assert len(r.alternate_frames) == 2 and f"{s.top_retailer_share:.0%}" in r.alternate_frames[1]
    assert "3 similar decided plans" in r.bias_checkpoint
    assert r.risk_assessment.mitigation == [x.mitigation for x in risks(s)]
    with pytest.raises(ReflectionError, match="threshold"):
        reflect(plan, s, [], None, threshold=1.5)


def test_the_main_risk_is_the_most_severe_and_the_retailer_is_named() -> None:
    """A plan's report read "The main risk is thin data coverage" above a table rating that
    risk "low" and its caps and experiment "medium", and "73% of spend goes to alpha" (the
    retailer's id) where everything else says "Alpha Mart"."""
    plan = make_plan(caps={"alpha": 0.4, "beta": 0.2})
    s = signals_from(plan, curve_cv=0.02, coverage=0.87, flags=0)
    found = risks(s)
    assert [r.factor for r in found][:1] != ["thin data coverage"]
    ranks = ["high", "medium", "low"]
    assert [ranks.index(r.severity) for r in found] == sorted(ranks.index(r.severity)
                                                              for r in found)  # fmt: skip
    assert {r.severity for r in found} >= {"low", "medium"}
    r = reflect(plan, s, [], None, threshold=0.8)
    assert r.risk_assessment.summary.startswith(f"The main risk is {found[0].factor}")
    assert s.top_retailer == "alpha"
    assert "goes to Alpha Mart, so if results there fall short" in r.alternate_frames[1]
    assert "network's curve" not in r.alternate_frames[1]
    facts = reflection_facts(plan, s, found, [])
    assert facts.get("retailer with the most spend") == "Alpha Mart"


def scripted_words(text: str) -> Generation:
    return Generation(text=text, parsed=text, adapters_active=[])


def script(model: RMNChatModel, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    """The model answers with `text`'s sentences, the i-th to the i-th request of a batch (the
    reflection asks for each sentence on its own), on both of the runtime's entry points."""
    sentences = re.split(r"(?<=\.) (?=[A-Z])", text)
    monkeypatch.setattr(model.runtime, "generate", lambda *a, **k: scripted_words(text))
    monkeypatch.setattr(
        model.runtime,
        "generate_many",
        lambda requests, **k: [scripted_words(t) for t in sentences[: len(requests)]],
    )


GOOD = (
    f"{OPENINGS[0]} response curve uncertainty, so the expected outcome could move. "
    f"{OPENINGS[1]} anchoring on last season, which may hide a seasonal shift. "
    f"{OPENINGS[2]} to ask whether one retailer should carry most of the flight."
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (GOOD.replace("could move", "could move 25%"), "numbers not in the facts: 25%"),
        (GOOD.replace("seasonal shift", "seasonal theollsund"), "not English: theollsund"),
        (GOOD.replace("could move", "could move urn urn urn"), "repeats a word"),
        (GOOD.replace(OPENINGS[1], "Also"), "a sentence is missing"),
    ],
)
def test_model_sentences_are_refused_with_the_reason(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch, text: str, reason: str
) -> None:
    script(tiny, monkeypatch, text)
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    r = reflect(plan, s, [], tiny, threshold=0.8)
    assert r.written_by == "template" and r.words_reason is not None
    assert reason in r.words_reason
    template = reflect(plan, s, [], None, 0.8)
    assert r.bias_checkpoint == template.bias_checkpoint


def test_binding_caps_are_named_in_words_and_the_model_can_write_about_them(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `reflect_with_model`, a plan whose caps bind failed its thread: the facts named
    the caps by key ("alpha/sponsored_search"), the risk's opening carried it, and the
    sentence grammar refused such an opening (`schema_unsupported` out of the node). The
    facts now name them in words, and a grammar that still cannot be built leaves the
    template's words, with the reason."""
    from adapters.structured import SchemaUnsupportedError

    plan = make_plan()
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    s = s.model_copy(update={"binding_caps": {"alpha/sponsored_search": 0.4, "beta": 0.1},
                             "margin": 2 * s.spend})  # fmt: skip
    facts = reflection_facts(plan, s, risks(s), [])
    assert facts.get("caps that bind") == "Alpha Mart sponsored search and Beta Grocers"
    assert risks(s)[0].factor == "binding caps"
    r = reflect(plan, s, [], tiny, threshold=0.8)  # the tiny model writes (or the template)
    assert r.risk_assessment.summary.startswith(
        "The main risk is binding caps, as caps bind at Alpha Mart sponsored search and Beta"
    )

    def broken(*args: object, **kwargs: object) -> None:
        raise SchemaUnsupportedError("sentences: openings must be plain words")

    monkeypatch.setattr("tools.plan.reflection_words.words_grammar", broken)
    r = reflect(plan, s, [], tiny, threshold=0.8)
    assert r.written_by == "template" and "no grammar" in (r.words_reason or "")


def test_facts_table_holds_the_signals_as_written() -> None:
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    facts = reflection_facts(plan, s, risks(s), ["a", "b"])
    assert facts.get("its share of spend") == f"{s.top_retailer_share:.0%}"
    assert facts.get("similar past plans") == "2"


# --- the worked example ----------------------------------------------------------------------

BIASES = ("anchoring", "overconfidence", "availability")


def _written(risk: str, bias: str, objective: str = "incremental_margin") -> Any:
    """The sentences of a plan whose main risk is of kind `risk` and whose bias to check is of
    kind `bias` (every signal an opening may state is set), and its memory."""
    plan = make_plan()
    plan.brief.objective = objective  # type: ignore[assignment]
    memory = ["2025-01-02 t-0: approved $60,000 over alpha+beta"] if bias == "anchoring" else []
    return word_sentences(plan, *_signals_and_found(risk, bias, plan), memory), memory


def _signals_and_found(
    risk: str, bias: str, plan: Plan | None = None
) -> tuple[ReflectionSignals, list[Risk]]:
    cv = 0.1 if bias == "availability" else 0.45
    s = signals_from(plan or make_plan(), curve_cv=cv, coverage=0.7, flags=2)
    s = s.model_copy(update={"binding_caps": {"alpha/sponsored_search": 0.4}})
    if risk == "spend that brings back less than it costs":
        s = s.model_copy(update={"losing_retailers": [("beta", 10_000.0, 0.75)]})
    found = [] if risk == "low" else [Risk(factor=risk, severity="high", signal="", mitigation="")]
    return s, found


@pytest.mark.parametrize("bias", BIASES)
@pytest.mark.parametrize("risk", sorted(RISK_SHAPES))
def test_every_kind_of_reflection_has_a_worked_example_the_grammar_lets_the_model_follow(
    risk: str, bias: str, decodes_to: Any
) -> None:
    """Each sentence is asked for on its own, after the example plan's sentence of the same
    kind, answered; a model that ends each opening as the example does writes sentences the
    grammar admits, and the three pass the checks. That text is the template's."""
    written, memory = _written(risk, bias)
    assert (written.risk, written.bias) == (risk, bias)
    examples = written.examples()
    endings = (RISK_SHAPES[risk].ending, BIAS_SHAPES[bias].ending, FRAME_ENDING)
    texts = []
    for (opening, _), ask, example, ending in zip(
        written.sentences, REFLECTION_ASKS, examples, endings, strict=True
    ):
        assert example is not None and example.answer.count(". ") == 0
        assert "{" not in example.answer and example.answer.endswith(f" {ending}.")
        system, asked, answered, real = reflection_messages(
            written.facts.pairs(), memory, ask, example
        )
        assert [m["role"] for m in (system, asked, answered, real)] == [
            "system", "user", "assistant", "user",
        ]  # fmt: skip
        assert answered["content"] == example.answer and "Shop A" in asked["content"]
        text = f"{opening} {ending}."
        grammar = words_grammar(written.facts, [(opening, ending)], memory, example)
        assert decodes_to(grammar, text), text
        texts.append(text)
    text = " ".join(texts)
    assert check_text(text, written.facts, 0, need_number=False, known=memory) is None
    assert split_words(text) is not None
    template = template_words(make_plan(), *_signals_and_found(risk, bias), memory)
    assert [template.risk, template.bias_checkpoint] == texts[:2]


def test_no_example_ending_stops_on_a_word_the_grammar_may_not_end_on() -> None:
    """The model copies the example's endings; one ending on "before" or "does" (which the
    grammar may not end a sentence on) made it write on past them ("..., but a test spend
    often.")."""
    from adapters.structured import DANGLING_WORDS
    from tools.plan.prompts import SHAPES

    endings = [*(x.ending for x in (*RISK_SHAPES.values(), *BIAS_SHAPES.values()))]
    endings += [FRAME_ENDING, *(x.ending for x in SHAPES.values())]
    assert [e for e in endings if e.split()[-1].lower() in DANGLING_WORDS] == []


def test_the_reflections_examples_are_the_same_for_every_goal_and_name_roas_as_such() -> None:
    """Each sentence's example depends on its kind only (8 + 3 + 1 in all), so the runtime
    keeps it computed; a ROAS plan's other frame says "ROAS" (it said "roas")."""
    (margin, memory), (roas, _) = (
        _written("binding caps", "anchoring"),
        _written("binding caps", "anchoring", "roas"),
    )
    for ask, a, b in zip(REFLECTION_ASKS, margin.examples(), roas.examples(), strict=True):
        first = reflection_messages(margin.facts.pairs(), memory, ask, a)
        second = reflection_messages(roas.facts.pairs(), memory, ask, b)
        assert first[:3] == second[:3] and first[3] != second[3]
    assert roas.sentences[2][0].endswith("incremental margin instead of ROAS, which")
    other = _written("thin data coverage", "anchoring")[0].examples()
    assert other[0] != margin.examples()[0] and other[1:] == margin.examples()[1:]


def test_model_sentences_that_name_the_examples_shops_are_refused(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    script(tiny, monkeypatch, GOOD.replace("one retailer", "Shop A"))
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    r = reflect(plan, s, [], tiny, threshold=0.8)
    assert r.written_by == "template" and r.words_reason == "names the worked example's Shop A"


# --- models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> RMNChatModel:
    model, _ = tiny_llama()
    root = tmp_path_factory.mktemp("adapters")
    write_random_adapter(
        root, "task", "planning", model, base_fingerprint=tiny_fingerprint(), seed=1
    )
    return RMNChatModel(runtime=tiny_runtime(Path(root), decode="lora"))


def test_tiny_model_garbage_falls_back_to_the_template(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Generation] = []
    generate = tiny.runtime.generate_many

    def spy(*args: object, **kwargs: object) -> list[Generation]:
        gens = generate(*args, **kwargs)  # type: ignore[arg-type]
        calls.extend(gens)
        return gens

    monkeypatch.setattr(tiny.runtime, "generate_many", spy)
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    r = reflect(plan, s, [], tiny, threshold=0.8, task="planning")
    # One call a sentence, in one batch, each bounded (a repair turn at most doubles it).
    assert len(calls) == 3 and all(c.adapters_active == ["task/planning"] for c in calls)
    assert all(c.tokens <= 2 * SENTENCE_TOKENS for c in calls)
    written = " ".join(c.parsed for c in calls if isinstance(c.parsed, str))
    if written:  # the grammar admits only the facts' numbers
        facts = reflection_facts(plan, s, risks(s), [])
        assert set(re.findall(r"\d(?:[\d,]*\d)?(?:\.\d+)?%?", written)) <= {
            n for v in facts.numbers() for n in re.findall(r"\d(?:[\d,]*\d)?(?:\.\d+)?%?", v)
        }
    assert r.written_by == "template"
    assert r.alternate_frames == reflect(plan, s, [], None, 0.8).alternate_frames
    # The numbers never come from the model: the computed confidence, held below the
    # threshold while a guardrail stands (this plan's experiment is underpowered).
    computed = confidence(s)
    capped = hold_confidence(computed, guardrails(plan), 0.8).value
    assert r.confidence.value == capped < 0.8 and r.confidence.signals == computed.signals


def test_usable_model_words_are_kept_and_numbers_stay_computed(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    script(tiny, monkeypatch, GOOD)
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    r = reflect(plan, s, [], tiny, threshold=0.7)
    assert r.written_by == "llm" and r.words_reason is None
    assert r.risk_assessment.summary.startswith(OPENINGS[0])
    assert r.bias_checkpoint.startswith(OPENINGS[1]) and "seasonal shift" in r.bias_checkpoint
    assert r.alternate_frames == [GOOD[GOOD.index(OPENINGS[2]) :]]
    # The numbers never come from the model: the computed confidence, held below the
    # threshold while a guardrail stands (this plan's experiment is underpowered).
    computed = confidence(s)
    capped = hold_confidence(computed, guardrails(plan), 0.7).value
    assert r.confidence.value == capped < 0.7 and r.confidence.signals == computed.signals


def test_the_main_risk_reads_as_english() -> None:
    """"The main risk is underpowered experiment" read as broken English to a reviewer."""
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    s = s.model_copy(update={"margin": 2 * s.spend})  # the experiment is the only risk
    r = reflect(plan, s, [], None, threshold=0.8)
    assert r.risk_assessment.summary.startswith("The main risk is an underpowered experiment, as")


def test_the_reflection_says_what_to_do_in_the_approvers_words() -> None:
    """Found by blind approvers (unseen35): "Concentration: 100% of spend goes to Delta Home,
    so ... most of the plan falls short" on a plan at the brief's one retailer; a bias named
    with nothing to do about it; "accept the return forgone (the shadow price per extra
    dollar)" and "`rmn whatif`" as advice; "hold a share of the budget for a test" to a brief
    that asked for none."""
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    words = template_words(plan, s, risks(s), [])
    assert any(f.startswith("Concentration: ") and "most of the plan" in f
               for f in words.alternate_frames)  # fmt: skip
    lone = plan.model_copy(update={"allocation": [r for r in plan.allocation
                                                  if r.retailer_id == "alpha"]})  # fmt: skip
    lone_s = signals_from(lone, curve_cv=0.05, coverage=1.0, flags=0)
    assert lone_s.top_retailer_share == 1.0
    assert not any(f.startswith("Concentration") for f in
                   template_words(lone, lone_s, risks(lone_s), []).alternate_frames)  # fmt: skip
    all_in = s.model_copy(update={"top_retailer_share": 1.0})
    frames = template_words(plan, all_in, [], []).alternate_frames
    assert any("all of the plan" in f for f in frames)
    # the bias, then what to check, whoever wrote the sentence
    r = reflect(plan, s, [], None, threshold=0.8)
    assert r.bias_checkpoint.endswith("if they were, the forecast carries them.")
    memory = reflect(plan, s, ["2025-01-02 t-0: approved $60,000 over alpha+beta"], None, 0.8)
    assert memory.bias_checkpoint.endswith("rather than the last decision.")
    # advice in words, retailers by name
    paying = s.model_copy(update={"margin": 2 * s.spend})
    capped = paying.model_copy(update={"binding_caps": {"alpha/sponsored_search": 0.3,
                                                        "beta": 0.1}})  # fmt: skip
    caps = next(k for k in risks(capped) if k.factor == "binding caps")
    assert caps.mitigation.startswith("ask Alpha Mart and Beta Grocers for a higher cap")
    assert "shadow" not in caps.mitigation
    # not "ask for a higher cap" on a plan that loses money after its ad spend (qa09)
    # and budget left to spend; a plan that spends all of it spends no more under a higher
    # cap, only better ("leave the caps" contradicted the limits table, round 5)
    losing = capped.model_copy(update={"margin": 0.5 * s.spend, "spends_all": False})
    caps = next(k for k in risks(losing) if k.factor == "binding caps")
    assert caps.mitigation.startswith("leave the caps as they are")
    assert s.spends_all  # make_plan places all of its spendable budget
    spent = losing.model_copy(update={"spends_all": True})
    caps = next(k for k in risks(spent) if k.factor == "binding caps")
    assert caps.mitigation.startswith("ask Alpha Mart and Beta Grocers for a higher cap")
    half = plan.model_copy(deep=True)
    assert half.expected_outcome is not None
    half.expected_outcome.spend /= 2
    assert not signals_from(half, curve_cv=0.05, coverage=1.0, flags=0).spends_all
    loss = s.model_copy(update={"margin": 0.5 * s.spend})
    assert "rmn" not in next(k for k in risks(loss) if k.factor == NET_LOSS).mitigation
    # a test at the retailer's longest is not told to extend (qa15 of unseen36: 90 of 90 days)
    longest = {"rule": "max_test_days", "requirement": "at most 90 days", "value": "90"}
    plan.experiment = {**(plan.experiment or {}), "duration_days": 90, "rules": [longest]}
    plan.brief.flight_start, plan.brief.flight_end = date(2027, 4, 1), date(2027, 6, 30)
    at_most = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    assert at_most.experiment_fills_flight
    weak = next(k for k in risks(at_most) if k.factor == "underpowered experiment")
    assert "extend" not in weak.mitigation
    untested = s.model_copy(update={"experiment_power": None, "experiment_adequate": None})
    asked_none = untested.model_copy(update={"reserve": 0.0})
    hold = "hold a share of the budget for a test (10% is usual) so the lift can be measured"
    assert [k.mitigation for k in risks(untested.model_copy(update={"reserve": None}))
            if k.factor == UNMEASURED] == [hold]  # fmt: skip
    # a reserve held that bought no test (sa20 of unseen38: a 10-day flight) says so
    held = untested.model_copy(update={"reserve": 0.1})
    assert [k.mitigation for k in risks(held) if k.factor == UNMEASURED] == [
        "the reserve buys no test here (the governance finding says why): lower the reserve to "
        "0% and judge the plan on the forecast alone, or lengthen the flight"]  # fmt: skip
    flagged = held.model_copy(update={"governance_flags": 1, "flag_words": [
        "no experiment could be designed for the reserve (the flight is too short)"]})
    finding = next(k for k in risks(flagged) if k.factor == "governance findings")
    assert finding.signal == "1 finding: no experiment could be designed for the reserve " \
        "(the flight is too short)"
    assert [k.mitigation for k in risks(asked_none) if k.factor == UNMEASURED] == [
        "as the brief asks, nothing is held for a test: judge the plan on its forecast alone"]


def test_a_roas_plan_is_reread_on_margin_not_revenue() -> None:
    """ "Another way to read this plan is to judge it on incremental revenue instead of ROAS,
    which could change which lines get the money" was wrong in 4 reports of unseen38: with the
    budget spent, the most revenue per ad dollar is the most revenue, the same split. Margin
    is the frame that can change it."""
    from tools.plan.reflection_words import word_sentences

    plan = make_plan()
    plan.brief = plan.brief.model_copy(update={"objective": "roas"})
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    frame = " ".join(word_sentences(plan, s, risks(s), []).sentences[2])
    assert "judge it on incremental margin instead of ROAS" in frame


def test_the_main_risk_names_the_costliest_caps_not_every_cap() -> None:
    """ "The main risk is binding caps, as caps bind at Alpha Mart display onsite and Alpha
    Mart instore screen and Alpha Mart sponsored product and ..." chained six caps (sa21 of
    unseen38), burying the two that cost the plan most."""
    from tools.plan.reflection_words import reflection_facts

    plan = make_plan()
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    caps = {"alpha/display_onsite": 0.73, "alpha/instore_screen": 0.59,
            "alpha/sponsored_product": 0.02, "beta/sponsored_search": 0.04,
            "alpha/sponsored_search": 0.03, "beta/display_onsite": 0.02}  # fmt: skip
    s = s.model_copy(update={"binding_caps": caps})
    facts = reflection_facts(plan, s, risks(s), [])
    assert facts.get("caps that bind") == \
        "Alpha Mart display onsite, Alpha Mart instore screen and other placements"  # fmt: skip
    two = s.model_copy(update={"binding_caps": dict(list(caps.items())[:2])})
    assert reflection_facts(plan, two, risks(two), []).get("caps that bind") == \
        "Alpha Mart display onsite and Alpha Mart instore screen"  # fmt: skip


def test_concentration_says_most_only_of_most_of_the_plan() -> None:
    """ "Concentration: 54% of spend goes to Beta Grocers, so ... most of the plan falls short
    with them" overstated a 54/46 split (sa30 of unseen38)."""
    from tools.plan.reflection_words import template_words

    plan = make_plan()
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    said = {}
    for share in (0.7, 1.0):
        t = s.model_copy(update={"top_retailer": "beta", "top_retailer_share": share})
        frame = template_words(plan, t, risks(t), []).alternate_frames[-1]
        said[share] = frame.split("forecast, ")[1]
    assert said == {0.7: "most of the plan falls short with them.",
                    1.0: "all of the plan falls short with them."}  # fmt: skip


def test_a_near_even_split_has_no_concentration_frame() -> None:
    """ "Concentration: 53% of spend goes to Beta Grocers, so ... that 53% of the plan falls
    short" was noise to an approver of unseen39 (ta14): a 53/47 split is no concentration."""
    from tools.plan.reflection_words import template_words

    plan = make_plan()
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    even = s.model_copy(update={"top_retailer": "beta", "top_retailer_share": 0.53})
    frames = template_words(plan, even, risks(even), []).alternate_frames
    assert not any(f.startswith("Concentration") for f in frames)
    most = s.model_copy(update={"top_retailer": "beta", "top_retailer_share": 0.7})
    assert template_words(plan, most, risks(most), []).alternate_frames[-1].startswith(
        "Concentration: 70%")


def test_a_reserve_larger_than_a_brief_may_hold_is_not_advised() -> None:
    """A brief holds at most half its budget for experiments: advice to raise the reserve past
    that names a reserve the product refuses."""
    s = signals_from(make_plan(floor=None), curve_cv=0.05, coverage=1.0, flags=0)
    s = s.model_copy(update={"experiment_power": 0.3, "experiment_adequate": False,
                             "experiment_budget_for_target": 60_000.0, "reserve": 0.1,
                             "experiment_held": 10_000.0, "margin": 2 * s.spend})  # fmt: skip
    weak = next(k for k in risks(s) if k.factor == "underpowered experiment")
    assert "a test strong enough to read would need a reserve of $60,000" in weak.mitigation


def test_curve_uncertainty_is_said_as_the_forecasts_likely_error() -> None:
    """ "The response curves vary by 0.02 of their mean" was jargon in all 29 reports one
    approver read of unseen39; so was the risk's "margin interval 0.30"."""
    s = signals_from(make_plan(), curve_cv=0.3, coverage=1.0, flags=0)
    c = confidence(s)
    assert c.measured.startswith("The forecast could be off by about 30% either way (one "
                                 "standard deviation)")  # fmt: skip
    assert "of their mean" not in c.rationale
    risk = next(r for r in risks(s) if r.factor == "response curve uncertainty")
    assert risk.signal == "the forecast could be off by about 30% either way"


def test_cap_advice_says_what_is_given_up() -> None:
    """ "ask Alpha Mart for a higher cap, or accept the return each extra dollar of cap would
    have earned" read backwards in 4 reports of unseen39: it is the return given up."""
    s = signals_from(make_plan(), curve_cv=0.05, coverage=1.0, flags=0)
    s = s.model_copy(update={"binding_caps": {"alpha/sponsored_search": 0.4},
                             "margin": 2 * s.spend})  # fmt: skip
    caps = next(r for r in risks(s) if r.factor == "binding caps")
    assert caps.mitigation == ("ask Alpha Mart for a higher cap, or go without the return a "
                               "higher cap would bring")  # fmt: skip


def test_a_reserve_spread_over_the_flight_is_said_so() -> None:
    """ "at the plan's daily pace" read as the ad plan's pace (6 reports of unseen39), and a
    test that runs its whole flight was told "raise the reserve to $220,936 (... so it needs
    $220,936 of test spend)" (ta20); "no reserve the brief may hold reaches it" was garbled
    (ta12)."""
    s = signals_from(make_plan(floor=None), curve_cv=0.05, coverage=1.0, flags=0)
    s = s.model_copy(update={"experiment_power": 0.6, "experiment_adequate": False,
                             "experiment_budget_for_target": 184_681.0, "reserve": 0.1,
                             "experiment_held": 450_000.0, "experiment_test_spend": 103_562.0,
                             "margin": 2 * s.spend})  # fmt: skip
    weak = next(k for k in risks(s) if k.factor == "underpowered experiment")
    assert weak.mitigation.startswith(
        "raise the reserve to $802,480 (18% of the budget, leaving $3,697,520 for the ad plan)")
    assert weak.mitigation.endswith("; the test needs $184,681 of spend, and the reserve is "
                                    "spread evenly over the flight while the test runs only "
                                    "part of it")  # fmt: skip
    full = s.model_copy(update={"experiment_test_spend": 449_990.0, "experiment_held": 450_000.0,
                                "experiment_budget_for_target": 460_000.0})  # fmt: skip
    weak = next(k for k in risks(full) if k.factor == "underpowered experiment")
    assert weak.mitigation.startswith("raise the reserve to $460,000 ")
    small = s.model_copy(update={"experiment_held": 10_000.0, "experiment_test_spend": None,
                                 "experiment_budget_for_target": 60_000.0})  # fmt: skip
    weak = next(k for k in risks(small) if k.factor == "underpowered experiment")
    # the options, then why, with what the reserve is of the budget ("... more than the half of
    # the budget a brief may hold, or read it as directional only" read as garbled, va11 of
    # unseen41)
    assert weak.mitigation == (
        "read it as directional only, or extend the test; a test strong enough to read would "
        "need a reserve of $60,000, 60% of the budget, and at most half of a budget can be held "
        "for experiments")
    whole = small.model_copy(update={"experiment_budget_for_target": 120_000.0,
                                     "experiment_fills_flight": True})  # fmt: skip
    weak = next(k for k in risks(whole) if k.factor == "underpowered experiment")
    assert weak.mitigation == (
        "read it as directional only; a test strong enough to read would need a reserve of "
        "$120,000, more than the whole $100,000 budget, and at most half of a budget can be held "
        "for experiments")
    # a test that barely tells a lift from none offers to drop it, not to read it (ya41, ya43,
    # ya46 and seven more of unseen44's finding half: "directional" of a 6% chance)
    barely = whole.model_copy(update={"experiment_power": 0.06})
    weak = next(k for k in risks(barely) if k.factor == "underpowered experiment")
    assert weak.mitigation.startswith(
        "edit the plan to set the reserve to 0% and put its $10,000 into the ads, against the "
        "brief's reserve, as a 6% chance barely tells a lift from none; a test strong enough to "
        "read would need")  # fmt: skip
    spread = s.model_copy(update={"experiment_power": 0.06, "reserve_default": True})
    weak = next(k for k in risks(spread) if k.factor == "underpowered experiment")
    # as an edit, the default said: "which version am I approving?" (unseen44's measure)
    assert ", or edit the plan to set the reserve to 0% and put its $450,000 into the ads, the " \
        "reserve is the default and a 6% chance barely tells a lift from none; the test needs " \
        "$184,681 of spend" in weak.mitigation  # fmt: skip


def test_a_floor_the_likely_range_dips_below_is_said() -> None:
    """ "expected $3.38 of revenue per ad dollar vs the $3.20 minimum" did not say that the
    likely low end, $3.18, is already below the floor (ta15 of unseen39, missing)."""
    plan = make_plan()
    assert plan.expected_outcome is not None
    iroas = plan.expected_outcome.iroas
    floor = (iroas.mean + iroas.low) / 2  # above the low end, below the mean
    plan = plan.model_copy(update={"brief": plan.brief.model_copy(update={"roas_floor": floor})})
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    room = next(r for r in risks(s) if r.factor == "little room above the ROAS floor")
    assert room.signal.endswith(f"; it is likely as low as ${iroas.low:.2f}, below the minimum")
    high = plan.model_copy(update={"brief": plan.brief.model_copy(
        update={"roas_floor": iroas.low * 0.99})})  # fmt: skip
    s = signals_from(high, curve_cv=0.05, coverage=1.0, flags=0)
    room = next((r for r in risks(s) if r.factor == "little room above the ROAS floor"), None)
    assert room is None or "likely as low as" not in room.signal


def test_round_five_words_have_no_jargon() -> None:
    """ "the optimizer found its optimum" and "treat the thin lines as test cells" read as
    jargon to approvers (round 5 finding set, 10 reports each)."""
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.05, coverage=0.8, flags=0)
    thin = next(k for k in risks(s) if k.factor == "thin data coverage")
    assert thin.mitigation == ("treat the spend on products with little sales history as a "
                               "test, or move it to products with history")  # fmt: skip
    # ... by name where the plan's rows say which (5 reports of the round 5 measure)
    plan.allocation[1].little_history = True
    named = signals_from(plan, curve_cv=0.05, coverage=0.8, flags=0, names={
        plan.allocation[1].gtin: "Oat Bars 6-pack"})  # fmt: skip
    thin = next(k for k in risks(named) if k.factor == "thin data coverage")
    spent = plan.allocation[1].spend
    assert thin.mitigation == (
        f"treat the spend on products with little sales history (all of it, ${spent:,.0f}, on "
        "Oat Bars 6-pack at Alpha Mart (sponsored search)) as a test, or move it to products "
        "with history")
    # "most of it on" three lines holding a third of it was wrong (va15 of unseen41): the
    # named lines' spend of all such spend
    many = plan.model_copy(deep=True)
    r = many.allocation[1]
    many.allocation = [*many.allocation, *(
        r.model_copy(update={"gtin": f"9{i}", "spend": spent * 0.9, "little_history": True})
        for i in range(4))]  # fmt: skip
    thin = next(k for k in risks(signals_from(many, curve_cv=0.05, coverage=0.8, flags=0))
                if k.factor == "thin data coverage")  # fmt: skip
    assert "(the most on Oat Bars 6-pack at Alpha Mart (sponsored search), " not in thin.mitigation
    assert f": ${spent * 2.8:,.0f} of the ${spent * 4.6:,.0f}) as a test" in thin.mitigation
    measured = reflect(plan, s, [], None, threshold=0.8).confidence.measured or ""
    assert "the optimizer found the best split within the brief's limits" in measured
    assert "optimum" not in measured


def test_a_reserve_its_test_leaves_unspent_is_weighed() -> None:
    """ "$456,000 (about 13% of the budget) sits unused, yet ... neither the risks nor the
    confidence take it into account" (ua49, ua55 of unseen40): a strong test spending much
    less than its reserve is a low risk, with the smallest reserve that keeps it strong."""
    s = signals_from(make_plan(floor=None), curve_cv=0.05, coverage=1.0, flags=0)
    strong = s.model_copy(update={
        "experiment_power": 0.91, "experiment_adequate": True, "reserve": 0.15,
        "experiment_held": 540_000.0, "experiment_test_spend": 84_000.0,
        "experiment_budget_for_target": 60_000.0, "margin": 2 * s.spend})  # fmt: skip
    left = next(k for k in risks(strong) if k.factor == "reserve left unspent")
    assert (left.severity, left.signal) == (
        "low", "the test spends $84,000 of the $540,000 reserve; the other $456,000, 13% of the "
        "budget, is held but not spent")  # fmt: skip
    # the share after the amount it is of: "(13% of the budget)" after "the $540,000 reserve"
    # read as the reserve's share (va45 of unseen41)
    # 60,000 x 540,000 / 84,000: the reserve is spread evenly over the flight
    assert left.mitigation == (
        "lower the reserve to $385,714 (11% of the budget), the smallest at which the test "
        "still has the 80% chance needed, to move $154,286 into the ad plan; or keep it unspent")
    # no smaller reserve to advise where the test needs all it spends, or it would move
    # almost nothing ("to move $1,009 into the ad plan", ua56 of unseen40)
    for need in (84_000.0, 83_900.0):
        tight = strong.model_copy(update={"experiment_budget_for_target": need})
        assert next(k for k in risks(tight) if k.factor == "reserve left unspent").mitigation \
            .startswith("keep it: a smaller reserve makes the test spend less each day")
    # not below 5% of the budget, nor for a weak test (its own risk says what to do)
    small = strong.model_copy(update={"experiment_test_spend": 520_000.0})
    weak = strong.model_copy(update={"experiment_adequate": False, "experiment_power": 0.5})
    for s2 in (small, weak):
        assert "reserve left unspent" not in [k.factor for k in risks(s2)]
    # weighed, but no main risk: it costs the forecast nothing
    plan = make_plan(floor=None)
    words = reflect(plan, strong, [], None, threshold=0.8).risk_assessment.summary
    assert "unspent" not in words


def test_spend_on_products_likely_out_of_stock_is_weighed() -> None:
    """ "The risk table and the confidence leave out the $23,248 on two products likely out
    of stock" (ua50 of unseen40): spend a brief keeps on them is a low risk, by name, and no
    main risk (the brief asked for it; the brief table says it first)."""
    plan = make_plan(floor=None)
    row = plan.allocation[0]
    row.likely_out_of_stock = True
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0, names={row.gtin: "Fizz 6-pack"})
    assert s.out_of_stock_spend == row.spend and s.out_of_stock_products == ["Fizz 6-pack"]
    oos = next(k for k in risks(s) if k.factor == "spend on products likely out of stock")
    assert oos.severity == "low" and oos.signal == (
        f"${row.spend:,.0f} of the planned spend ({row.spend / s.spend:.1%}) goes to Fizz "
        "6-pack, likely out of stock")
    assert oos.mitigation == ("check its stock before approving: an ad for a product out of "
                              "stock sells nothing, and the forecast already discounts its "
                              "sales by the chance it is out of stock")
    words = reflect(plan, s, [], None, threshold=0.8).risk_assessment.summary
    assert "out of stock" not in words
    row.likely_out_of_stock = False
    kept = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    assert "spend on products likely out of stock" not in [k.factor for k in risks(kept)]


def test_a_gain_smaller_than_the_tests_spend_is_a_risk() -> None:
    """ "The risks never mention that the budget as a whole is expected to lose $57,318"
    (va36 of unseen41): a plan that gains after its ad spend but less than its test spends
    loses once the test is paid (the forecast counts no return from the test)."""
    s = signals_from(make_plan(floor=None), curve_cv=0.05, coverage=1.0, flags=0)
    thin = s.model_copy(update={"margin": s.spend + 1_000.0, "experiment_test_spend": 5_000.0,
                                "experiment_power": 0.9, "experiment_adequate": True})  # fmt: skip
    found = risks(thin)
    loss = next(k for k in found if k.factor == "a net loss once the test is paid")
    assert loss.severity == "medium" and loss.signal == (
        f"expected extra margin ${s.spend + 1_000:,.0f} is above the ${s.spend:,.0f} of ad "
        "spend but below it plus the $5,000 the test spends")
    words = reflect(make_plan(floor=None), thin, [], None, threshold=0.8).risk_assessment.summary
    assert words.startswith("The main risk is a net loss once the test is paid, as the gain left "
                            "after ad spend is smaller than what the test spends")  # fmt: skip
    covered = thin.model_copy(update={"margin": s.spend + 6_000.0})
    assert "a net loss once the test is paid" not in [k.factor for k in risks(covered)]
    assert loss.mitigation == ("the forecast counts no return from the test's spend: approve the "
                               "test for what it will tell, or lower the reserve")  # fmt: skip
    # Beside a weak test the two rows are one choice: "approve the test ..., or lower the
    # reserve" under "raise the reserve to $251,035" gave opposite advice (va41 of unseen41).
    weak = thin.model_copy(update={"experiment_power": 0.61, "experiment_adequate": False})
    found = risks(weak)
    assert [k.factor for k in found][:2] == ["underpowered experiment",
                                             "a net loss once the test is paid"]  # fmt: skip
    assert found[1].mitigation == (
        "the forecast counts no return from the test's spend, and the test is too weak to read "
        "reliably: a larger reserve buys a test that can be read but deepens this loss, and a "
        "smaller one or none avoids the loss, so decide whether the test is worth its cost")


def test_a_net_loss_says_the_budget_that_keeps_the_most_margin() -> None:
    # "compare smaller budgets in the what-if panel" read as the report not saying what it
    # knew (round 5): the optimizer's pays-back budget is said, with what the plan keeps there.
    s = signals_from(make_plan(), curve_cv=0.05, coverage=1.0, flags=0)
    loss = s.model_copy(update={"margin": 0.5 * s.spend, "objective": "roas",
                                "pays_back_budget": 310_390.6, "pays_back_net": 52_480.0})
    said = next(k for k in risks(loss) if k.factor == NET_LOSS).mitigation
    # against this plan's loss: "about $52k gained" read as either the margin left there or
    # the gain over this plan (wa28, wa32, wa36 of unseen42)
    assert said == ("a budget of about $310k, with the split chosen for margin, keeps the most "
                    "margin after ad spend: about $52k left after its ad spend, against this "
                    f"plan's loss of about {money(0.5 * s.spend)}, so consider the smaller "
                    "budget")  # fmt: skip
    margin = loss.model_copy(update={"objective": "incremental_margin", "pays_back_net": -46_261.4})
    said = next(k for k in risks(margin) if k.factor == NET_LOSS).mitigation
    assert said == ("a budget of about $310k keeps the most margin after ad spend, and even "
                    "there the plan would lose about $46k: no budget pays back its ad spend on "
                    "these forecasts")  # fmt: skip
    unknown = loss.model_copy(update={"pays_back_budget": None})
    assert "what-if panel" in next(k for k in risks(unknown) if k.factor == NET_LOSS).mitigation
    # the brief's own budget split for margin is "this budget", and the advice is the goal:
    # "a budget of about $45k ... so consider the smaller budget" of a $45k plan (ya54)
    same = loss.model_copy(update={"total_budget": 45_000.0, "pays_back_budget": 45_000.0})
    said = next(k for k in risks(same) if k.factor == NET_LOSS).mitigation
    assert said.startswith("this budget, with the split chosen for margin, keeps the most margin "
                           "after ad spend: about $52k left after its ad spend")  # fmt: skip
    assert said.endswith("so consider margin as the goal (an edit)")
    # what the optimizer recorded reaches the signals, a NaN dropped at the boundary
    read = signals_from(make_plan(), 0.05, 1.0, 0, pays_back={"budget": 9e5, "net": math.nan})
    assert read.pays_back_budget == 9e5 and read.pays_back_net is None


def test_a_net_loss_leads_the_risks_it_ties_with() -> None:
    """ "The main risk is an underpowered experiment" above a high net loss left the loss out
    of the main-risk sentence (ta60, round 5 finding set)."""
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    losing = s.model_copy(update={"margin": 0.5 * s.spend, "experiment_power": 0.2,
                                  "experiment_adequate": False})  # fmt: skip
    found = risks(losing)
    high = {k.factor for k in found if k.severity == "high"}
    assert high >= {NET_LOSS, "underpowered experiment"}
    assert found[0].factor == NET_LOSS


def test_a_plan_without_risks_says_so_plainly() -> None:
    """ "The main risk is low, as no signal costs this plan much confidence." named no risk
    and read as jargon (ua38, round 5's measure)."""
    plan = make_plan(floor=None)
    plan.experiment = {**(plan.experiment or {}), "power": 0.9, "adequate": True}
    s = signals_from(plan, curve_cv=0.01, coverage=1.0, flags=0)
    s = s.model_copy(update={"margin": 2 * s.spend})
    assert risks(s) == []
    r = reflect(plan, s, [], None, threshold=0.8)
    assert r.risk_assessment.summary == (
        "The main risk is small, as every measure in the table above scores close to full "
        "confidence.")


def test_an_optimizer_result_to_run_again_leads_the_risks_of_its_severity() -> None:
    """ "The main risk is binding caps" above a medium risk saying the optimizer stopped
    before proving its split the best left out that the plan must be run again before it is
    approved (va14 of unseen41)."""
    s = base_signals(solver_inaccurate=True, binding_caps={"alpha/sponsored_search": 0.3},
                     experiment_power=0.45, experiment_adequate=False)  # fmt: skip
    found = risks(s)
    assert [k.severity for k in found[:3]] == ["medium"] * 3
    assert found[0].factor == "optimizer result"
    assert reflect(make_plan(floor=None), s, [], None, threshold=0.8).risk_assessment.summary \
        .startswith("The main risk is the optimizer result, as")  # fmt: skip


def test_a_retailer_whose_spend_brings_back_less_than_it_costs_is_a_risk() -> None:
    """ "Delta Home gets 57%" of a revenue plan at $0.74 of extra revenue per ad dollar,
    beside Beta Grocers' full caps: the report never said that spend loses money (va37 of
    unseen41; only the approval question's guardrails named it)."""
    plan = make_plan(floor=None)
    row = plan.allocation[2]  # beta, display offsite
    row.expected_revenue = 0.74 * row.spend
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    assert s.losing_retailers == [("beta", row.spend, pytest.approx(0.74))]
    left = s.model_copy(update={"spends_all": False})  # budget left over: no "spends all"
    loss = next(k for k in risks(left) if k.factor == "spend that brings back less than it costs")
    assert (loss.severity, loss.signal) == (
        "high", f"Beta Grocers, $0.74 of extra revenue per ad dollar on ${row.spend:,.0f}")
    # "(an edit)" read as internal tool wording (xa17 of unseen43)
    assert loss.mitigation == "edit the plan to cap the spend at Beta Grocers, or lower the budget"
    spends = s.model_copy(update={"spends_all": True, "margin": 2 * s.spend})
    assert next(k for k in risks(spends) if k.factor == loss.factor).mitigation == (
        "edit the plan to cap the spend at Beta Grocers, or lower the budget: the plan spends all "
        "of its ad budget, even where a dollar brings back less than it costs")
    words = reflect(plan, spends, [], None, threshold=0.8).risk_assessment.summary
    assert words.startswith("The main risk is spend that brings back less than it costs, as the "
                            "spend at Beta Grocers brings back less extra revenue than it "
                            "costs, so")  # fmt: skip
    row.expected_revenue = 1.1 * row.spend
    assert signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0).losing_retailers == []


def test_a_larger_reserve_never_reads_as_the_share_already_held() -> None:
    """ "raise the reserve to $125,186 (10% of the budget, ...)" of a brief holding 10% read
    as no change (wa18 of unseen42): that share is said to a tenth of a percent."""
    s = base_signals(experiment_power=0.6, experiment_adequate=False, reserve=0.1,
                     experiment_held=120_000.0, experiment_test_spend=120_000.0,
                     experiment_budget_for_target=125_186.0)  # fmt: skip
    weak = next(k for k in risks(s) if k.factor == "underpowered experiment")
    assert weak.mitigation.startswith("raise the reserve to $125,186 (10.4% of the budget, "
                                      "leaving $1,074,814 for the ad plan)")  # fmt: skip
    assert s.share_of_budget(240_000.0) == "20%"


def test_the_floor_risk_sentence_speaks_the_reports_units() -> None:
    """ "as the expected iROAS of 3.7 sits close to the 3.5 floor" was jargon beside the
    report's "$3.70 of extra revenue per ad dollar" (xa10 of unseen43)."""
    s = base_signals(iroas=3.7, roas_floor=3.5, roas_slack=(3.7 - 3.5) / 3.5)
    found = risks(s)
    assert found[0].factor == "little room above the ROAS floor"
    words = reflect(make_plan(), s, [], None, threshold=0.8).risk_assessment.summary
    assert "as the expected $3.70 of revenue per ad dollar sits close to the $3.50 minimum, so " \
        "a small miss on the forecast could fall below the minimum" in words  # fmt: skip
    assert "iROAS" not in words
