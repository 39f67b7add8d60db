"""Grounded words: the number checker, the sentence grammar that admits only the facts' numbers,
facts tables and the rationale written from them (model or template, with the reason), the
citations that reach the approval summary and the report, and the governance second opinion
(info only: the rule checks decide)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from adapters.chat_model import RMNChatModel
from adapters.runtime import Generation
from adapters.structured import OutputSchema, SchemaUnsupportedError, SentenceGrammar
from adapters.testing import tiny_fingerprint, tiny_llama, tiny_runtime, write_random_adapter
from tools.brief.schema import StructuredBrief
from tools.governance.second_opinion import FINDING_TYPE, second_opinions
from tools.plan import AllocationRow, CopyVariant, ExpectedOutcome, Interval, Plan
from tools.plan.approval import ApprovalPolicy, approval_summary, blocking
from tools.plan.citations import cite
from tools.plan.facts import FactsTable, check_text, money
from tools.plan.numbers import (
    NUMBER_WORDS,
    check_numbers,
    is_number_string,
    numbers_in,
    unsupported_numbers,
)
from tools.plan.questions import describe
from tools.plan.rationale import allocation_request, experiment_request, write_texts
from tools.plan.report_markdown import render_markdown

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- fixtures ---------------------------------------------------------------------------------


def passage(retailer: str, doc_type: str, anchor: str, heading: str, body: str) -> dict[str, Any]:
    return {
        "purpose": "test",
        "source": f"rag_corpus/retailers/{retailer}/{doc_type}.md#{anchor}",
        "retailer": retailer,
        "brand": None,
        "doc_type": doc_type,
        "score": 0.5,
        "text": f"Policy > {heading}\n{body}",
    }


RETRIEVED = [
    passage("alpha", "placements_bidding", "minimum-daily-budget", "Minimum daily budget",
            "Each campaign needs a daily budget of at least $50."),
    passage("alpha", "placements_bidding", "monthly-spend-caps", "Monthly spend caps",
            "One brand may spend at most $300,000 a month on sponsored search."),
    passage("beta", "placements_bidding", "monthly-spend-caps", "Monthly spend caps",
            "One brand may spend at most $120,000 a month on sponsored search."),
    passage("alpha", "measurement", "holdout-size", "Holdout size",
            "The holdout must be between 5% and 20% of the eligible geos."),
    passage("alpha", "measurement", "how-long-a-test-runs", "How long a test runs",
            "A test must run at least 14 days and at most 90 days."),
    passage("alpha", "prohibited_content", "health-claims", "Health claims",
            "Ads may not claim a product cures or treats a disease."),
    passage("beta", "disclaimers", "organic-claims", "Organic claims",
            'Any ad that calls a product organic must carry: "Certified organic".'),
    passage("beta", "voice", "tone", "Tone", "Plain and warm."),
]  # fmt: skip


def make_plan(
    *,
    caps: dict[str, float] | None = None,
    brief_caps: dict[str, float] | None = None,
    adequate: bool = False,
    retailers: int = 2,
) -> Plan:
    names = [("alpha", "sponsored_search"), ("alpha", "sponsored_product"), ("beta", "display")]
    rows = []
    for i, (retailer, placement) in enumerate(names):
        if retailer == "beta" and retailers < 2:
            continue
        a, b, x = 900_000.0 * (i + 1), 300_000.0, 150_000.0 * (3 - i)
        revenue = a * (1 - math.exp(-x / b))
        rows.append(
            AllocationRow(retailer_id=retailer, placement=placement, gtin=f"0001234500001{i}",
                          spend=x, expected_revenue=revenue, expected_margin=0.3 * revenue,
                          marginal_return=a / b * math.exp(-x / b), curve_a=a, curve_b=b)
        )  # fmt: skip
    spend = sum(r.spend for r in rows)
    revenue = sum(r.expected_revenue for r in rows)
    roas = revenue / spend
    experiment = {
        "retailer": "alpha", "experiment_type": "geo_holdout", "duration_days": 28,
        "holdout_pct": 0.2, "test_spend": 120_000.0, "mde_lift": 0.037, "mde_iroas": 4.95,
        "expected_iroas": 4.15, "power": 0.92 if adequate else 0.655, "target_power": 0.8,
        "adequate": adequate, "budget_for_target_power": None if adequate else 142_938.0,
        "rules": [{"rule": "min_holdout_pct", "requirement": "at least 5%", "value": "20%",
                   "source": "rag_corpus/retailers/alpha/measurement.md#holdout-size"}],
    }  # fmt: skip
    return Plan(
        thread_id="t-1",
        tenant="acme",
        brief_text="Allocate $1.2M across Alpha and Beta",
        brief=StructuredBrief(brand_id="acme", total_budget=1_200_000, retailers=["alpha", "beta"],
                              roas_floor=3.0),
        allocation=rows,
        expected_outcome=ExpectedOutcome(
            spend=spend, reserve=120_000,
            incremental_revenue=Interval(mean=revenue, low=0.9 * revenue, high=1.1 * revenue),
            incremental_margin=Interval(mean=0.3 * revenue, low=0.27 * revenue,
                                        high=0.33 * revenue),
            iroas=Interval(mean=roas, low=0.9 * roas, high=1.1 * roas),
        ),
        shadow_prices={
            "spendable": 0.5, "retailer_caps": brief_caps or {}, "group_caps": caps or {}
        },
        solver_status="optimal",
        experiment=experiment,
    )  # fmt: skip


def _only_retailer() -> Plan:
    """A plan on the one retailer its brief names."""
    plan = make_plan(retailers=1)
    plan.brief.retailers = ["alpha"]
    return plan


BINDING = {"beta/sponsored_search": 0.277, "alpha/sponsored_search": 0.178, "alpha/x": 1e-12}


def _spilled() -> Plan:
    """Caps full at Alpha Mart, the rest at Beta Grocers below a dollar of revenue a dollar."""
    plan = make_plan(caps={"alpha/sponsored_search": 0.9})
    beta = plan.allocation[2]
    beta.expected_revenue = 0.74 * beta.spend
    return plan


# Each kind of sentence a rationale has: caps binding or not, one retailer, the brief's cap.
EVERY_KIND_OF_PLAN = pytest.mark.parametrize(
    "plan",
    [
        make_plan(caps=BINDING),
        make_plan(),
        make_plan(adequate=True, retailers=1),
        make_plan(brief_caps={"alpha": 0.4}),
        _only_retailer(),
        _spilled(),
    ],
    ids=["binding-caps", "nothing-binds", "one-retailer", "brief-cap", "only-retailer", "spill"],
)


# --- the number checker -------------------------------------------------------------------------


def test_numbers_are_read_as_written() -> None:
    text = "Alpha gets $780k (73%), iROAS 4.2x; $1,080,000 in 28-day tests, 1st of 2 [1]."
    assert numbers_in(text) == ["$780k", "73%", "4.2x", "$1,080,000", "28", "1st", "2"]
    assert numbers_in("It fell by -5% then A-1 rose.") == ["-5%", "1"]
    assert all(is_number_string(v) for v in ("$1.45M", "4.3", "80%", "-$5k", "$950"))
    assert not any(is_number_string(v) for v in ("$1.2M (90%)", "4.3 x", "two", ""))
    assert money(1_453_000) == "$1.45M" and money(139_400) == "$139k" and money(-50_000) == "-$50k"


def test_unsupported_numbers_and_spelled_out_numbers_are_caught() -> None:
    allowed = ["$780k", "73%", "4.2"]
    assert check_numbers("Alpha gets $780k, 73% of spend, at 4.2 [1].", allowed, 1).ok
    # Formatted otherwise than the facts give it, or not a fact at all.
    assert unsupported_numbers("Alpha gets $780,000 at 4.20 for 2 weeks.", allowed) == [
        "$780,000", "4.20", "2",
    ]  # fmt: skip
    words = check_numbers("Three retailers get twenty-five percent; we double-check.", allowed)
    assert words.number_words == ["three", "twenty-five", "percent", "double-check"]
    assert not words.ok and "spelled-out" in words.problems()[0]


def test_citation_markers_must_name_a_passage_shown() -> None:
    check = check_numbers("Caps bind [1]. Floors too [3].", [], citations=2)
    assert check.citations == [1, 3] and check.bad_citations == [3] and not check.ok
    assert check.numbers == []  # a marker is not a number


# --- the grammar --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matcher_for() -> Any:
    import llguidance.hf
    from llguidance import LLMatcher

    from adapters.testing import smollm2_tokenizer

    tokenizer = smollm2_tokenizer()
    ll_tokenizer = llguidance.hf.from_tokenizer(tokenizer)

    def accepts(grammar: SentenceGrammar, text: str) -> bool:
        matcher = LLMatcher(ll_tokenizer, OutputSchema.of(grammar).grammar(), log_level=0)
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        return all(matcher.consume_token(t) for t in tokens) and matcher.is_accepting()

    return accepts


def test_grammar_admits_only_the_facts_numbers_and_cited_sentences(matcher_for: Any) -> None:
    g = SentenceGrammar(numbers=("$1.45M", "4.3", "80%"), citations=2, banned_words=NUMBER_WORDS)
    assert matcher_for(g, "The budget of $1.45M goes to Alpha first [1].")
    assert matcher_for(g, "Alpha leads at an iROAS of 4.3 [2]. The cap binds hard there [1].")
    refused = [
        "The budget of $1.5M goes to Alpha first [1].",  # not a fact
        "The budget of 1.45M goes to Alpha first [1].",  # a fact, written otherwise
        "We spend three more weeks here [1].",  # spelled out
        "We double-check the twenty-five rules [1].",  # as a hyphen part
        "The plan spends well and wisely [3].",  # no passage [3]
        "The plan spends well and wisely.",  # no citation
    ]
    assert not any(matcher_for(g, t) for t in refused)


def test_grammar_openings_carry_the_numbers_the_model_cannot(matcher_for: Any) -> None:
    g = SentenceGrammar(
        numbers=("73%", "$1.08M"),
        citations=1,
        openings=("Alpha Mart gets 73% of the $1.08M planned spend because", "It cannot"),
        free_numbers=False,
    )
    ok = "Alpha Mart gets 73% of the $1.08M planned spend because search ads pay most [1]. "
    assert matcher_for(g, ok + "It cannot tell what other retailers would do [1].")
    assert not matcher_for(g, ok + "It cannot tell what 73% of shoppers would do [1].")
    assert not matcher_for(g, "Beta Grocers gets most of the spend because it pays more [1].")
    with pytest.raises(SchemaUnsupportedError, match="openings"):
        SentenceGrammar(numbers=("73%",), openings=("Alpha gets 74% of it",))


def test_names_the_model_was_shown_are_written_as_shown(matcher_for: Any) -> None:
    # The model glued retailer names ("BetaGrocers'", "AlphaMarts": 3 of 10 rationale texts in
    # `rmn bench e2e`), which the English check refused, so the template wrote those texts;
    # with the glued names banned, it wrote "BetaGrocerssrede" instead.
    from tools.plan.vocabulary import name_joins

    shown = ["Beta Grocers share 61%", "Alpha Mart caps sponsored products at $40k a month"]
    assert name_joins(shown) == {"betag", "alpham"}
    g = SentenceGrammar(citations=1, banned_words=NUMBER_WORDS, banned_prefixes=name_joins(shown))
    assert matcher_for(g, "Beta Grocers gets the larger share of the spend [1].")
    assert matcher_for(g, "The alphabet and betting rules hold here too [1].")
    for glued in ("BetaGrocers", "AlphaMarts", "alphamart", "BETAGROCER", "BetaGrocerssrede"):
        assert not matcher_for(g, f"The spend goes to {glued} where it pays most [1].")
    assert not matcher_for(g, "The plan spends twenty more here [1].")  # banned words hold
    assert name_joins(["one word only", "Alpha"]) == frozenset()
    # The rationale's grammar bans the joins of every name in its facts and passages.
    request = allocation_request(make_plan(caps=BINDING), RETRIEVED)
    assert request is not None
    assert (
        "Alpha Mart" in " ".join(request.shown()) and "alpham" in request.grammar().banned_prefixes
    )


def test_with_a_lexicon_the_model_writes_only_general_words_and_those_it_was_shown(
    matcher_for: Any,
) -> None:
    # SmolLM2-135M wrote runs of letters that are no word ("check the fit of theollsund",
    # "xtraordinary", "gro") and, in English, words off the plan ("because of the rules, and
    # the next icing is on the cake, asperger"). Under a lexicon it can write only general
    # words and those of what it was shown, and cannot end a sentence on a function word.
    from tools.plan.vocabulary import GENERAL_WORDS, words_of

    shown = ["main risk thin data coverage", "retailer with the most spend Beta Grocers"]
    g = SentenceGrammar(
        citations=1,
        banned_words=NUMBER_WORDS,
        lexicon=GENERAL_WORDS,
        known_words=words_of(shown),
        max_words=14,
    )
    assert matcher_for(g, "Beta Grocers gets the larger share of the spend [1].")
    assert matcher_for(g, "The data coverage is thin, so the plan needs more tests [1].")
    assert matcher_for(g, "Roas and holdout reads stay weak [1].")  # DOMAIN words
    for bad in ("theollsund", "xtraordinary", "gro", "BetaGrocers", "Initech", "icing"):
        assert not matcher_for(g, f"The spend goes to {bad} where it pays most [1].")
    assert not matcher_for(g, "The spend goes to the retailer with the [1].")  # dangling
    assert not matcher_for(g, "The plan spends twenty more here [1].")  # banned words hold
    with pytest.raises(SchemaUnsupportedError, match="lexicon"):
        SentenceGrammar(lexicon=frozenset({"ok", "no way"}))
    # The rationale's grammar carries one, with the words of its facts, passages, openings
    # and template.
    request = allocation_request(make_plan(caps=BINDING), RETRIEVED)
    assert request is not None
    grammar = request.grammar()
    assert grammar.lexicon == GENERAL_WORDS
    assert {"Alpha", "Mart"} <= grammar.known_words
    assert words_of([request.template]) <= grammar.known_words


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> RMNChatModel:
    model, _ = tiny_llama()
    root = tmp_path_factory.mktemp("adapters")
    for kind, name, seed in (("task", "planning", 1), ("retailer", "alpha", 2)):
        write_random_adapter(root, kind, name, model, base_fingerprint=tiny_fingerprint(),
                             seed=seed)  # fmt: skip
    return RMNChatModel(runtime=tiny_runtime(Path(root), decode="lora"))


def test_decoding_never_writes_a_number_outside_the_facts(tiny: RMNChatModel) -> None:
    """A random model sampled at temperature 1.5 under the grammar: whatever it writes, every
    number is a fact's string and every marker a passage shown."""
    facts = ("$1.45M", "4.3", "80%", "$780k")
    grammar = SentenceGrammar(numbers=facts, citations=2, max_words=10, banned_words=NUMBER_WORDS)
    writer = tiny.bind_adapters(task="planning").with_structured_output(grammar, include_raw=True)
    texts = []
    for seed in range(6):
        out = writer.invoke("Why this split?", temperature=1.5, seed=seed, max_new_tokens=60)
        texts.append(str(out["raw"].content))
    assert len(set(texts)) > 1  # the seeds sample different texts
    for text in texts:
        check = check_numbers(text, facts, citations=2)
        assert check.unsupported == [] and check.number_words == [] and check.bad_citations == []


# --- facts, templates and the model's text ------------------------------------------------------


def test_facts_tables_hold_single_numbers_as_written() -> None:
    with pytest.raises(ValueError, match="single numbers"):
        FactsTable.model_validate({"facts": [{"name": "margin", "value": "$1.2M (90%)"}]})
    facts = allocation_request(make_plan(caps=BINDING), RETRIEVED).facts.as_dict()
    assert facts["Alpha Mart share"] == "83%" and facts["planned spend"] == "$900k"
    assert facts["binding limit"] == "Beta Grocers sponsored search monthly cap"
    assert facts["Beta Grocers sponsored search monthly cap, value of one more dollar"] == "$0.28"
    # The cap as the retailer's policy writes it, so the text and the passage agree.
    assert facts["Beta Grocers sponsored search monthly cap in the policy, per month"] == "$120,000"


@EVERY_KIND_OF_PLAN
def test_templates_pass_the_checks_the_model_must_pass(plan: Plan) -> None:
    for request in (allocation_request(plan, RETRIEVED), experiment_request(plan, RETRIEVED)):
        assert request is not None
        assert check_text(request.template, request.facts, len(request.citations)) is None
        request.grammar()  # the openings are plain words and the facts' numbers
        assert all(request.template.count(o) == 1 for o in request.openings)


def test_citations_are_the_retailers_own_passages_of_the_right_kind() -> None:
    citations, texts = cite(RETRIEVED, ("placements_bidding",), ["beta", "alpha"], prefer=("cap",))
    assert [c.source for c in citations] == [
        "rag_corpus/retailers/beta/placements_bidding.md#monthly-spend-caps",
        "rag_corpus/retailers/alpha/placements_bidding.md#monthly-spend-caps",
        "rag_corpus/retailers/alpha/placements_bidding.md#minimum-daily-budget",
    ]
    assert [c.id for c in citations] == [1, 2, 3] and citations[0].section == "Monthly spend caps"
    assert texts[0].startswith("One brand may spend at most $120,000")
    request = experiment_request(make_plan(), RETRIEVED)
    assert request is not None and {c.doc_type for c in request.citations} == {"measurement"}
    assert request.citations[0].source.endswith("#holdout-size")  # the rule the design checked


def scripted(tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch, texts: list[str]) -> list[Any]:
    """The runtime answering with `texts` (as a grammar-decoded answer parses), recording the
    requests it was sent."""
    sent: list[Any] = []

    def generate_many(requests: list[Any], **kwargs: Any) -> list[Generation]:
        sent.extend(requests)
        return [Generation(text=t, parsed=t, adapters_active=["task/planning"]) for t in texts]

    monkeypatch.setattr(tiny.runtime, "generate_many", generate_many)
    return sent


def test_model_text_is_kept_only_when_it_passes(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = make_plan(caps=BINDING)
    alloc, exp = allocation_request(plan, RETRIEVED), experiment_request(plan, RETRIEVED)
    assert exp is not None
    # As the grammar decodes them: no markers (the code adds each sentence's).
    good = (
        f"{alloc.openings[0]} its search ads return the most margin per dollar. "
        f"{alloc.openings[1]} the retailer caps monthly spend per brand."
    )
    invented = f"{exp.openings[0]} a lift of 9.9% is certain. {exp.openings[1]} tell it."
    sent = scripted(tiny, monkeypatch, [good, invented])
    texts = write_texts(tiny, [alloc, exp], task="planning")
    assert len(sent) == 2  # one batch for both texts
    assert isinstance(sent[0].json_schema, SentenceGrammar)
    prompt = sent[0].messages[-1]["content"]  # the facts and the numbered passages
    assert (
        "- planned spend: $900k" in prompt and "[1] One brand may spend at most $120,000" in prompt
    )
    marked = good.replace("brand.", "brand [1].")
    # Beta's monthly spend caps for the cap that binds; the split rests on the curves, which
    # no passage states (it cited the caps page, which reviewers read as claiming the split)
    assert alloc.markers == ("", " [1]")
    assert texts[0].path == "model" and texts[0].text == marked and texts[0].reason is None
    assert texts[0].adapters == ["task/planning"] and texts[0].citations == alloc.citations
    assert texts[1].path == "template" and texts[1].text == exp.template
    assert texts[1].reason == "numbers not in the facts: 9.9%"


def test_a_number_away_from_its_fact_is_refused(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$1.20M is the total budget: stating it as a retailer's monthly cap passes the number
    check but not the attribution check."""
    alloc = allocation_request(make_plan(caps=BINDING), RETRIEVED)
    wrong = "Beta Grocers lets one brand spend at most $1.20M on search ads [1]."
    assert check_numbers(wrong, alloc.facts.numbers(), 3).ok
    assert check_text(wrong, alloc.facts, 3) == "numbers away from their fact: $1.20M"
    answer = f"{alloc.openings[0]} all is well. {alloc.openings[1]} {wrong[:-5]}."
    scripted(tiny, monkeypatch, [answer])
    [text] = write_texts(tiny, [alloc])
    assert text.path == "template" and "$1.20M" not in text.text
    assert text.reason == "numbers away from their fact: $1.20M"


def test_a_text_that_names_the_worked_examples_shops_is_refused(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model may copy the example's ending word for word, shop names and all; a text
    about a real plan that names "Shop B" goes to the template, with the reason."""
    alloc = allocation_request(make_plan(caps=BINDING), RETRIEVED)
    answer = f"{alloc.openings[0]} it pays best. {alloc.openings[1]} Shop B lets it spend."
    scripted(tiny, monkeypatch, [answer])
    [text] = write_texts(tiny, [alloc])
    assert text.path == "template" and text.reason == "names the worked example's Shop B"


def test_without_a_model_the_template_writes_and_says_so() -> None:
    [text] = write_texts(None, [allocation_request(make_plan(caps=BINDING), RETRIEVED)])
    assert text.path == "template" and text.reason == "no model" and text.citations
    # the split's "because" holds where caps push money to a retailer that returns less:
    # "... goes where the curves promise the most return" was wrong there (ua25, round 5)
    assert "because that is where the curves promise the most margin per extra dollar within " \
        "the caps." in text.text


# --- the worked example ----------------------------------------------------------------------


def _following(request: Any) -> str:
    """The text the model writes when it ends each of the request's openings as the worked
    example ends that kind of sentence (its shop names read as the plan's retailers)."""
    from tools.plan.prompts import SHAPES

    names = [n.removesuffix(" share") for n, _ in request.facts.pairs() if n.endswith(" share")]
    out = []
    for opening, shape in zip(request.openings, request.shapes, strict=True):
        ending = SHAPES[shape].ending
        for shop, name in zip(("Shop A", "Shop B"), names, strict=False):
            ending = ending.replace(shop, name)
        out.append(f"{opening} {ending}.")
    return " ".join(out)


@EVERY_KIND_OF_PLAN
def test_every_kind_of_sentence_has_a_worked_example_the_grammar_lets_the_model_follow(
    plan: Plan, decodes_to: Any
) -> None:
    """Each request shows the model the example plan with the same kinds of sentence, in
    order, answered; a model that ends each opening as the example does writes a text the
    grammar admits and the checks pass, with the code's markers."""
    from tools.plan.rationale import _messages, _with_markers

    for request in (allocation_request(plan, RETRIEVED), experiment_request(plan, RETRIEVED)):
        assert request is not None
        example = request.example()
        assert example is not None and example.answer.count(". ") == len(request.openings) - 1
        system, asked, answered, real = _messages(request)
        assert [system["role"], asked["role"], answered["role"], real["role"]] == [
            "system", "user", "assistant", "user",
        ]  # fmt: skip
        assert answered["content"] == example.answer and "Shop " in asked["content"]
        assert "[" not in example.answer  # the code adds the markers, to the example too
        text = _following(request)
        assert decodes_to(request.grammar(), text), text
        marked, problem = _with_markers(text, request.markers)
        assert problem is None
        n = len(request.citations)
        assert check_text(marked, request.facts, n, known=request.passages) is None


def test_the_example_is_the_same_for_every_goal_so_the_runtime_keeps_it_computed() -> None:
    """The worked example depends on the kinds of sentence only (8 texts in all), so that its
    turns are a prompt prefix the runtime keeps computed (`adapters.prefixes.PrefixCache`)."""
    from tools.plan.rationale import _messages

    margin, revenue = make_plan(caps=BINDING), make_plan(caps=BINDING)
    revenue.brief.objective = "incremental_revenue"
    a, b = allocation_request(margin, RETRIEVED), allocation_request(revenue, RETRIEVED)
    assert a.shapes == b.shapes == ("split", "cap") and "of revenue per" in b.openings[1]
    assert _messages(a)[:3] == _messages(b)[:3]


def test_the_code_places_each_sentences_marker_before_its_period() -> None:
    from tools.plan.rationale import _with_markers

    text = "Alpha gets $1.08M because it pays. It cannot tell 4.5% apart."
    assert _with_markers(text, (" [2]", " [1]")) == (
        "Alpha gets $1.08M because it pays [2]. It cannot tell 4.5% apart [1].",
        None,
    )
    assert _with_markers(text, (" [1]", " [1]", " [2]")) == (text, "cut off: 2 of 3 sentences")


# --- where the citations go ---------------------------------------------------------------------


def test_approval_summary_description_and_report_carry_the_citations() -> None:
    plan = make_plan(caps=BINDING)
    for request in (allocation_request(plan, RETRIEVED), experiment_request(plan, RETRIEVED)):
        assert request is not None
        [text] = write_texts(None, [request])
        plan = plan.with_text(text)
    summary = approval_summary(
        plan, ApprovalPolicy(), flags=[], constraints={}, measurement_notes=[]
    )
    allocation = summary["rationale"][0]
    assert allocation["kind"] == "allocation" and allocation["path"] == "template"
    cited = allocation["citations"][0]
    assert cited["source"] == "rag_corpus/retailers/beta/placements_bidding.md#monthly-spend-caps"
    assert cited["section"] == "Monthly spend caps"
    markdown = describe(summary, ("approve", "edit", "reject"))
    assert "**Why this split:** Beta" not in markdown  # the top retailer leads, not the cited one
    assert "**Why this split:** Alpha Mart gets" in markdown
    assert "[1]" in markdown and f"Monthly spend caps]({cited['source']})" in markdown
    report = render_markdown(plan, [])
    assert "## Rationale" in report and "### Sources" in report
    # the document by its title ("Policy" in these passages' heading path), then the file
    assert "| [1] | [Policy](rag_corpus/retailers/" in report
    assert "#monthly-spend-caps) | Monthly spend caps | Why this split |" in report
    # only the passages a text cites are its sources (uncited ones read as unexplained)
    for t in plan.rationale:
        for c in t.citations:
            # (numbered once for the report: each text's [1] is not the report's)
            assert (f"]({c.source}) |" in report) == (f"[{c.id}]" in t.text)
    assert any(f"[{c.id}]" not in t.text for t in plan.rationale for c in t.citations)
    assert "holdout-size" in report


def test_a_new_allocation_clears_the_rationale() -> None:
    plan = make_plan(caps=BINDING)
    [text] = write_texts(None, [allocation_request(plan, RETRIEVED)])
    plan = plan.with_text(text)
    fresh = plan.with_allocation(
        brief=plan.brief, allocation=[], expected_outcome=None, shadow_prices={},
        solver_status=None,
    )  # fmt: skip
    assert plan.text("allocation") is not None and fresh.rationale == []


# --- the governance second opinion ---------------------------------------------------------------


def test_second_opinion_is_an_info_finding_citing_its_passage(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = make_plan()
    plan.copy_variants = [
        CopyVariant(retailer_id="alpha", headline="Acme Tea", body="Cures colds fast.",
                    compliant=True),
        CopyVariant(retailer_id="beta", headline="Acme Oats", body="Organic oats daily.",
                    compliant=True),
        CopyVariant(retailer_id="delta", headline="Acme Mop", body="Cleans floors.",
                    compliant=True),
    ]  # fmt: skip
    answers = [
        {"verdict": "breaks", "passage": 1, "why": "Cures colds"},
        {"verdict": "breaks", "passage": 1, "why": "Kills 99% of germs"},  # not in the copy
    ]
    sent: list[Any] = []

    def generate_many(requests: list[Any], **kwargs: Any) -> list[Generation]:
        sent.extend(requests)
        return [
            Generation(text=str(a), parsed=a, adapters_active=[f"retailer/{r}"])
            for a, r in zip(answers, ("alpha", "beta"), strict=True)
        ]

    monkeypatch.setattr(tiny.runtime, "generate_many", generate_many)
    result = second_opinions(tiny, plan.copy_variants, RETRIEVED, tenant="acme", flagged={0})
    assert len(sent) == 2  # delta has no passage retrieved: not asked
    assert sent[0].adapters.retailer == "alpha"  # installed; beta's is not: the base model
    assert sent[1].adapters.retailer is None
    first, second = result.findings
    assert first.type == FINDING_TYPE and first.severity == "info" and first.where == "copy[0]"
    assert first.text == "Cures colds" and first.citation is not None
    assert first.citation.source == "rag_corpus/retailers/alpha/prohibited_content.md#health-claims"
    assert "rule checks flagged it, and they decide" in first.action
    assert second.text == "" and "not in the copy" in second.action
    assert "passed it" in second.action
    # "breaks" where the checks flagged it agrees; "breaks" where they passed it does not
    assert first.agrees is True and second.agrees is False
    report = render_markdown(plan.model_copy(update={"governance": result.findings}), [])
    # Each variant with its retailer and product: the number alone sent approvers to a copy
    # table their printed summary left out (round 5).
    agreed = ("Copy variant 1 (Alpha Mart, the brand's range) passed the retailers' rules, and "
              "a second check")  # fmt: skip
    assert agreed in report
    assert "| second opinion | copy variant 2 (Beta Grocers, the brand's range) |" in report
    assert "| second opinion | copy variant 1 (" not in report
    before = blocking(plan, [])  # the plan's own guardrails (unspent budget, ...)
    plan.governance = result.findings
    assert result.findings and blocking(plan, []) == before  # a second opinion never blocks
    assert second_opinions(None, plan.copy_variants, RETRIEVED, tenant="acme").findings == []


def test_invented_and_stuttered_words_are_caught() -> None:
    from tools.plan.vocabulary import stutters, unknown_words

    text = "The retailers planned shifting ads to Beta, but theollsund and ofresponsecurve."
    assert unknown_words(text, known=["Beta Grocers"]) == ["theollsund", "ofresponsecurve"]
    assert unknown_words("Zorblax caps search ads.", known=()) == ["Zorblax"]
    assert stutters("a lift of urn urn urn") and not stutters("the plan, the plan")
    # What SmolLM2-135M wrote on held-out plans after the worked example; "4.4" is no word.
    assert stutters("so a smaller lift would look like a in on the this this, but it only")
    assert not stutters("a sales lift of 4.4% in 28 days with 20% held out")


def test_two_limits_on_one_amount_are_caught() -> None:
    """ "as the retailer lets one brand spend at most at least one more dollar per month [1]"
    passed every check and reached a reviewer (ta59, round 5 finding set)."""
    from tools.plan.vocabulary import clashes

    garbled = "as the retailer lets one brand spend at most at least one more dollar per month"
    assert clashes(garbled) and clashes("no more than at least 3 lines")
    assert not clashes("a cap lets one brand spend at most so much there each month")
    assert not clashes("it is only up to the retailer")
    facts = FactsTable()
    facts.add("planned spend", "$640k")
    problem = check_text(f"Alpha Mart gets $640k {garbled} [1].", facts, 1, need_number=False)
    assert problem == "two limits on one amount"


def test_an_article_before_no_noun_is_caught() -> None:
    """ "because of the high margin, low end of the in the policy, and the high margin, high
    end" passed every check and reached a reviewer (va37 of unseen41)."""
    from tools.plan.vocabulary import dangles

    garbled = "because of the high margin, low end of the in the policy, and the high margin"
    assert dangles(garbled) and dangles("a cap at the of Alpha Mart")
    assert not dangles("because each extra dollar now goes where the curves promise the most "
                       "return within the caps")  # fmt: skip
    assert not dangles("the retailer lets one brand spend only so much there each month")
    facts = FactsTable()
    facts.add("planned spend", "$2.52M")
    facts.add("Delta Home share", "57%")
    problem = check_text(f"Delta Home gets 57% of the $2.52M planned spend {garbled} [1].", facts,
                         1, need_number=False)
    assert problem == "an article before no noun"


def test_the_grammar_cache_keeps_only_the_most_recent_grammars() -> None:
    """Sentence grammars differ per plan (their openings and numbers); a server writing
    rationales for days kept every compiled one. The compiler keeps the 64 most recent."""
    from adapters.structured import GrammarCompiler
    from adapters.testing import smollm2_tokenizer

    compiler = GrammarCompiler(smollm2_tokenizer())
    compiler.CACHE_SIZE = 3
    grammars = [SentenceGrammar(openings=(f"Plan number {n} is",)) for n in ("one", "two")]
    grammars += [SentenceGrammar(openings=(f"Plan {w} is",)) for w in ("three", "four", "five")]
    for g in grammars:
        compiler.matcher(OutputSchema.of(g))
    compiler.matcher(OutputSchema.of(grammars[2]))  # used again: kept as the most recent
    compiler.matcher(OutputSchema.of(SentenceGrammar(openings=("Plan six is",))))
    kept = list(compiler._templates)
    assert len(kept) == 3
    assert OutputSchema.of(grammars[2]).key in kept  # recently used, so kept
    assert OutputSchema.of(grammars[0]).key not in kept
    assert GrammarCompiler.CACHE_SIZE == 64


def test_the_split_names_every_retailer_and_a_lone_retailer_is_the_briefs_choice() -> None:
    """Reports said "Alpha Mart gets 100% ... because an extra dollar earns more there than
    anywhere else in the plan" of plans on the one retailer their brief named; a three-retailer
    split named only the first two; and caps worth under half a cent per dollar ($0.00 as
    shown) were said to bind."""
    only = allocation_request(_only_retailer(), RETRIEVED)
    # The code writes that sentence whole (the model garbled it in 6 of 8 such plans); the
    # model ends the rest, and no marker cites a caps page for it.
    # "asks for": a brief naming a paused retailer too names two (qa24 of unseen36)
    assert only.lead.endswith("planned spend because it is the only retailer the brief asks for.")
    assert only.shapes == ("single", "no_cap") and len(only.openings) == 2
    [text] = write_texts(None, [only])
    assert text.text.startswith(only.lead + " Expected margin is ")
    assert text.text.count("planned spend because") == 1
    chosen = allocation_request(make_plan(retailers=1), RETRIEVED)  # the brief names two
    assert chosen.shapes[0] == "single" and not chosen.lead
    split = allocation_request(make_plan(caps=BINDING), RETRIEVED)
    assert split.markers[0] == "" and split.markers[1] != ""
    # "What binds most is the X cap" beside a limits table where one more dollar of budget
    # was worth more read as wrong (sa23 of unseen38): of the caps, it binds most.
    assert split.openings[1].startswith("The cap that binds most is the ")
    plan = make_plan()
    gamma = plan.allocation[-1].model_copy(update={"retailer_id": "gamma", "spend": 50_000.0})
    plan.allocation.append(gamma)
    opening = allocation_request(plan, RETRIEVED).openings[0]
    assert opening.count("%") == 3 and "Gamma Pharmacy" in opening, opening
    assert ", Beta Grocers " in opening and " and Gamma Pharmacy " in opening, opening
    tiny = allocation_request(make_plan(caps={"alpha/sponsored_search": 0.0005}), RETRIEVED)
    assert tiny.shapes == ("split", "no_cap"), tiny.template


def test_on_the_briefs_one_retailer_the_models_first_sentence_is_the_codes(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model ends both sentences as for any one-retailer plan; the code's sentence
    replaces its first ("because it is the only brand to have a minimum budget of at least
    in a month" read in 6 of 8 such plans when it was asked for that one)."""
    request = allocation_request(_only_retailer(), RETRIEVED)
    written = (
        f"{request.openings[0]} it is the only brand to have a minimum budget. "
        f"{request.openings[1]} no retailer cap keeps the money from where it earns the most."
    )
    scripted(tiny, monkeypatch, [written])
    [text] = write_texts(tiny, [request])
    assert text.path == "model", text.reason
    assert text.text.startswith(request.lead + " " + request.openings[1]), text.text
    assert "minimum budget" not in text.text


def test_a_text_about_other_brands_is_refused(
    tiny: RMNChatModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "it says nothing about other brands new to the network" shipped as the model's in 3
    reports of unseen38: lifted from a passage on pre/post tests for brands new to the
    network. A plan is one brand's and its test measures that brand's ads, so a rationale
    about other brands goes to the template, with the reason."""
    plan = make_plan(caps=BINDING)
    exp = experiment_request(plan, RETRIEVED)
    assert exp is not None
    answer = (
        f"{exp.openings[0]} a smaller lift reads as no effect. {exp.openings[1]} "
        "reliably confirm the lift, and it says nothing about other brands new to it."
    )
    scripted(tiny, monkeypatch, [answer])
    [text] = write_texts(tiny, [exp])
    assert text.path == "template" and text.reason == "speaks of other brands"
    assert "brands" not in text.text


def test_an_approximate_split_is_not_said_to_be_the_best() -> None:
    """ "... because each extra dollar now goes where the curves promise the most return"
    above a reflection saying the optimizer's optimum is inaccurate and the split should be
    run again (ta05 of unseen39, rated misleading). The first sentence is the code's there,
    and the reflection says what "inaccurate" means."""
    from tools.plan.reflection import confidence, signals_from

    plan = make_plan(caps=BINDING)
    plan.solver_status = "optimal_inaccurate (cvxpy)"
    alloc = allocation_request(plan, RETRIEVED)
    assert alloc.lead == (f"{alloc.openings[0]} it is the optimizer's best answer, but the "
                          "optimizer stopped before proving it the best, so run it again "
                          "before approving.")  # fmt: skip
    [text] = write_texts(None, [alloc])
    assert text.text.startswith(alloc.lead) and "promise the most" not in text.text.split(". ")[0]
    s = signals_from(plan, curve_cv=0.05, coverage=1.0, flags=0)
    assert "the optimizer's answer is approximate: it stopped before proving this split the " \
        "best" in confidence(s).measured  # fmt: skip


def test_money_in_words_rounds_halves_up_as_the_tables_read() -> None:
    """ "$604k of planned spend" beside a table's $604,500, and "$4.67M" beside $4,675,000:
    Python's formatting rounds halves to even, and on the binary value (round 5 finding set).
    The approval question and the guardrails say money the same way."""
    from tools.plan.facts import money
    from tools.plan.questions import usd

    assert [money(v) for v in (604_500, 4_675_000, 1_234.5, 999_995, -428_331)] == [
        "$605k", "$4.68M", "$1,235", "$1.00M", "-$428k"]  # fmt: skip
    # from the whole dollars a table prints: $85,499.998 is $85,500 there (ua52 of unseen40)
    assert money(85_499.998) == "$86k" and money(1_004_999.996) == "$1.01M"
    assert usd(604_500) == "$605k" and usd(None) == "-"


def test_money_a_retailer_gets_only_because_caps_are_full_elsewhere_says_so() -> None:
    """ "Delta Home gets 57% ... because that is where the curves promise the most revenue per
    extra dollar within the caps" of spend bringing back $0.74 a dollar, beside Beta Grocers'
    full caps, was read as wrong (va37 of unseen41)."""
    [text] = write_texts(None, [allocation_request(_spilled(), RETRIEVED)])
    assert text.path == "template"
    assert "planned spend because caps hold spend at Alpha Mart, so the rest of the budget goes " \
        "where each dollar brings back less than it costs." in text.text  # fmt: skip
    assert "promise the most" not in text.text
    [text] = write_texts(None, [allocation_request(make_plan(caps=BINDING), RETRIEVED)])
    assert "caps hold spend at" not in text.text  # every retailer pays back


def test_a_brief_split_is_the_reason_the_code_gives() -> None:
    """A brief that divides its budget by retailer: the split's reason is the brief, in the
    code's words (the model wrote "because the brief itself is split into onsite display and
    offsite display"), and no cap of the split is said to bind."""
    plan = make_plan()
    plan = plan.model_copy(update={"brief": plan.brief.model_copy(
        update={"retailer_split": {"alpha": 900_000, "beta": 300_000}})})  # fmt: skip
    request = allocation_request(plan, RETRIEVED)
    assert request.shapes[0] == "brief_split"
    assert request.lead.endswith("planned spend because the brief itself divides the budget "
                                 "that way.")  # fmt: skip
    [text] = write_texts(None, [request])
    assert text.text == request.lead  # no "no retailer cap keeps the money ..." after it
    assert request.shapes == ("brief_split",)
