import json
import random
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from adapters.prompts import SYSTEM_MESSAGES, schema_instruction
from tools.brief import (
    BriefError,
    StructuredBrief,
    brief_json_schema,
    brief_user_message,
    parse_brief,
    parse_brief_rules,
    rule_parse,
    runtime_generate_json,
    served_user_message,
)
from tools.brief.dataset import (
    TEMPLATES,
    BriefExample,
    brief_examples,
    build_brief_dataset,
    build_dpo_pairs,
    load_heldout,
    rejected_answer,
    write_brief_dataset,
)
from tools.brief.evaluate import evaluate_parser
from tools.brief.llm import (
    PARSED_BY_FALLBACK,
    PARSED_BY_LLM,
    PARSED_BY_PRODUCTION,
    brief_answer,
    split_user_message,
)
from tools.brief.rules import normalize

TODAY = date(2026, 11, 23)  # a Monday
SPEC_BRIEF = (
    "Allocate $2.5M across Alpha and Beta to maximize incremental margin with ROAS >= 3, "
    "10% for experiments"
)


def rules(text: str, brand: str = "acme", today: date = TODAY) -> StructuredBrief:
    return parse_brief_rules(text, brand, today)


# --- rules: the fields ----------------------------------------------------------------------


def test_the_readme_brief() -> None:
    b = rules(SPEC_BRIEF)
    assert b.fields() == {
        "total_budget": 2_500_000.0,
        "retailers": ["alpha", "beta"],
        "objective": "incremental_margin",
        "roas_floor": 3.0,
        "experiment_reserve": 0.1,
        "flight_start": None,
        "flight_end": None,
        "exclude_oos": True,
    }
    assert b.brand_id == "acme" and b.parsed_by == "rules" and b.warnings == []


@pytest.mark.parametrize(
    ("money", "usd"),
    [
        ("$2.5M", 2_500_000),
        ("750k", 750_000),
        ("$750K", 750_000),
        ("one million dollars", 1_000_000),
        ("USD 250,000", 250_000),
        ("2.5 million", 2_500_000),
        ("$1,200,000", 1_200_000),
        ("$3MM", 3_000_000),
        ("1.2M USD", 1_200_000),
        ("2 mil", 2_000_000),
        ("700 grand", 700_000),
        ("half a million", 500_000),
        ("two and a half million dollars", 2_500_000),
        ("seven hundred fifty thousand dollars", 750_000),
        ("Two point five million", 2_500_000),
    ],
)
def test_money_as_people_write_it(money: str, usd: float) -> None:
    assert rules(f"Spend {money} on Alpha Mart to maximize sales").total_budget == usd


@pytest.mark.parametrize(
    ("brand", "phrase", "expected"),
    [
        ("globex", "Gamma Pharmacy", ["gamma"]),
        ("globex", "gamma pharmacy and alpha", ["alpha", "gamma"]),
        ("acme", "Alpha Mart", ["alpha"]),
        ("acme", "alpha", ["alpha"]),
        ("acme", "Beta Grocers + Delta Home", ["beta", "delta"]),
        ("acme", "Delta, Beta & Alpha", ["alpha", "beta", "delta"]),
        ("acme", "all retailers", []),
        ("acme", "all three of our retailers", []),
        ("acme", "everything except Delta", ["alpha", "beta"]),
        ("brand_x", "all networks excluding Beta and Gamma", ["alpha"]),
    ],
)
def test_retailers_by_name_or_id(brand: str, phrase: str, expected: list[str]) -> None:
    assert rules(f"Spend $1M on {phrase}.", brand).retailers == expected


def test_brief_without_retailers_means_all_of_the_brand() -> None:
    b = rules("Spend $1M to maximize profit.", "globex")
    assert b.retailers == [] and b.resolved_retailers() == ["alpha", "gamma"]


@pytest.mark.parametrize(
    ("phrase", "objective"),
    [
        ("maximize profit", "incremental_margin"),
        ("grow margin", "incremental_margin"),
        ("profit-focused", "incremental_margin"),
        ("maximize sales", "incremental_revenue"),
        ("the goal is revenue", "incremental_revenue"),
        ("top-line growth is the priority", "incremental_revenue"),
        ("maximize return on ad spend", "roas"),
        ("optimize for ROAS", "roas"),
        ("efficiency is the goal", "roas"),
    ],
)
def test_objective_synonyms(phrase: str, objective: str) -> None:
    assert rules(f"$1M on Alpha, {phrase}.").objective == objective


def test_a_roas_floor_is_not_the_objective() -> None:
    b = rules("$1M on Alpha, ROAS >= 3.")
    assert b.roas_floor == 3.0 and b.objective == "incremental_margin"
    assert "objective" not in rule_parse("$1M on Alpha, ROAS >= 3.", "acme", TODAY).found


@pytest.mark.parametrize(
    ("phrase", "floor"),
    [
        ("ROAS >= 3", 3.0),
        ("ROAS \u2265 2.8", 2.8),
        ("at least 3x return", 3.0),
        ("ROAS of 2.5 or better", 2.5),
        ("a 3:1 ROAS minimum", 3.0),
        ("minimum ROAS 2.2", 2.2),
        ("keep ROAS at or above 2.5", 2.5),
        ("roas 2.5+", 2.5),
        ("at least $3 in sales for every $1 spent", 3.0),
        ("ROAS of at least three", 3.0),
        ("no ROAS constraint", None),
    ],
)
def test_roas_floors(phrase: str, floor: float | None) -> None:
    b = rules(f"Allocate $2M across Alpha and Beta, {phrase}, maximize margin.")
    assert b.roas_floor == floor
    assert b.total_budget == 2_000_000 and b.objective == "incremental_margin"


def test_an_upper_limit_on_roas_is_not_a_floor() -> None:
    b = rules("Allocate $2M across Alpha, ROAS at most 5")
    assert b.roas_floor is None and any("upper limit" in w for w in b.warnings)


@pytest.mark.parametrize(
    ("phrase", "reserve"),
    [
        ("10% for experiments", 0.10),
        ("ten percent for experiments", 0.10),
        ("0.1 of budget for tests", 0.10),
        ("hold back 15 percent for tests", 0.15),
        ("12.5% experiment reserve", 0.125),
        ("hold back a fifth for experiments", 0.20),
        ("set aside $250k for incrementality tests", 0.10),
        ("experiments: none", 0.0),
        ("no experiment reserve", 0.0),
        ("keep 7 pct for a holdout", 0.07),
    ],
)
def test_experiment_reserve_in_any_form(phrase: str, reserve: float) -> None:
    b = rules(f"Allocate $2.5M across Alpha and Beta, {phrase}.")
    assert b.experiment_reserve == pytest.approx(reserve)


def test_reserve_defaults_to_ten_percent_without_a_warning() -> None:
    b = rules("Allocate $2.5M across Alpha and Beta.")
    assert b.experiment_reserve == 0.10 and b.warnings == []


@pytest.mark.parametrize(
    ("phrase", "start", "end"),
    [
        ("from March 1 to March 28, 2027", "2027-03-01", "2027-03-28"),
        ("in Q1 2027", "2027-01-01", "2027-03-31"),
        ("for the first quarter of 2027", "2027-01-01", "2027-03-31"),
        ("over the next 4 weeks", "2026-11-24", "2026-12-21"),
        ("for the next 30 days", "2026-11-24", "2026-12-23"),
        ("next month", "2026-12-01", "2026-12-31"),
        ("in March 2027", "2027-03-01", "2027-03-31"),
        ("3/1/2027 - 3/28/2027", "2027-03-01", "2027-03-28"),
        ("from 2027-02-01 to 2027-02-28", "2027-02-01", "2027-02-28"),
        ("Dec 1 to Dec 31", "2026-12-01", "2026-12-31"),
        ("dec 7 2026 to jan 31 2027", "2026-12-07", "2027-01-31"),
        ("for 4 weeks starting Jan 4, 2027", "2027-01-04", "2027-01-31"),
        ("from 1 February to 28 February 2027", "2027-02-01", "2027-02-28"),
    ],
)
def test_flight_dates(phrase: str, start: str, end: str) -> None:
    b = rules(f"Spend $1M on Alpha {phrase}.")
    assert (str(b.flight_start), str(b.flight_end)) == (start, end)


def test_relative_flights_follow_today() -> None:
    b = rules("Spend $1M on Alpha over the next 2 weeks.", today=date(2027, 1, 4))
    assert (b.flight_start, b.flight_end) == (date(2027, 1, 5), date(2027, 1, 18))


@pytest.mark.parametrize(
    ("phrase", "exclude"),
    [
        ("Include out-of-stock SKUs.", False),
        ("OOS items are fine.", False),
        ("Don't include out-of-stock SKUs.", True),
        ("Exclude out-of-stock items.", True),
        ("", True),
    ],
)
def test_out_of_stock_switch(phrase: str, exclude: bool) -> None:
    assert rules(f"Spend $1M on Alpha. {phrase}").exclude_oos is exclude


def test_number_words_become_digits_but_not_everywhere() -> None:
    assert normalize("two and a half million") == "2.5 million"
    assert normalize("hold back fifteen percent") == "hold back 15 percent"
    assert normalize("the first half of 2027") == "the first half of 2027"


# --- rules: errors and warnings -------------------------------------------------------------


def _error(text: str, brand: str = "acme") -> BriefError:
    with pytest.raises(BriefError) as info:
        rules(text, brand)
    return info.value


def test_unknown_retailer_is_an_error() -> None:
    err = _error("Allocate $2.5M across Alpha and Omega Mart to maximize margin.")
    assert err.detail["field"] == "retailers" and err.detail["retailers"] == ["Omega Mart"]
    assert "unknown retailer 'Omega Mart'" in err.message
    assert _error("Spend $2.5M on Alpha and Epsilon.").detail["retailers"] == ["Epsilon"]


def test_retailer_the_brand_does_not_sell_through_is_an_error() -> None:
    err = _error("Spend $1M on Gamma Pharmacy for margin.", "acme")
    assert err.detail["retailers"] == ["gamma"]
    assert err.message.startswith("Acme Foods (acme) does not sell through Gamma Pharmacy")


def test_missing_budget_is_an_error() -> None:
    err = _error("Maximize revenue on Alpha with ROAS >= 3 and 10% for experiments.")
    assert err.detail["field"] == "total_budget" and "no budget found" in err.message


@pytest.mark.parametrize("text", ["Budget $0 for Alpha.", "Budget -$50k on Alpha."])
def test_non_positive_budget_is_an_error(text: str) -> None:
    err = _error(text)
    assert err.detail["field"] == "total_budget" and "must be positive" in err.message


def test_reserve_over_half_is_an_error() -> None:
    err = _error("Allocate $2M across Alpha and Beta, hold back 60% for experiments.")
    assert err.detail == {"field": "experiment_reserve", "experiment_reserve": 0.6}
    assert "over the 50% limit" in err.message


def test_other_currencies_and_backwards_flights_are_errors() -> None:
    assert "USD" in _error("We want to invest \u00a32M across Alpha and Beta.").message
    err = _error("Spend $1M on Alpha from 2027-03-01 to 2027-02-01.")
    assert err.detail["field"] == "flight_end"


def test_several_problems_are_reported_together() -> None:
    err = _error("Spend $1M on Gamma and Omega Mart, hold back 70% for tests.")
    assert err.detail["field"] == "retailers"
    assert {p["field"] for p in err.detail["problems"]} == {"experiment_reserve", "retailers"}


def test_two_budgets_are_a_warning_not_a_guess() -> None:
    b = rules("Total budget $2.2M (not the $2.5M we discussed). Alpha and Beta.")
    assert b.total_budget == 2_200_000
    assert b.warnings == ["ignored $2,500,000: the brief gives it as a past or replaced amount"]
    b = rules("Spend $300,000 at Alpha Mart. Actually, make the budget $350,000.")
    assert b.total_budget == 350_000 and "the correction" in b.warnings[0]


def test_per_retailer_amounts_add_up_and_caps_are_flagged() -> None:
    b = rules("$2M on Alpha Mart and $1M on Beta Grocers, maximize margin.")
    assert b.total_budget == 3_000_000 and "sum of the per-retailer amounts" in b.warnings[0]
    b = rules("$1,000,000 total across Alpha and Beta; no more than $400k on any one retailer.")
    assert b.total_budget == 1_000_000 and "ignored $400,000" in b.warnings[0]


def test_weekly_budget_needs_a_flight() -> None:
    b = rules("$100k per week on Alpha for the next 4 weeks.")
    assert b.total_budget == 400_000 and "per week" in b.warnings[0]
    assert _error("$100k per week on Alpha.").detail["field"] == "total_budget"


# --- the model path and production ----------------------------------------------------------


class FakeModel:
    """A test double for the runtime: returns a fixed answer and records what it was asked."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, system: str, user: str, schema: dict[str, Any]) -> Any:
        self.calls.append((system, user, schema))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


GOLD = rules(SPEC_BRIEF).fields()


def test_production_agrees_with_a_correct_model() -> None:
    fake = FakeModel(dict(GOLD))
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", fake)
    assert b.parsed_by == PARSED_BY_PRODUCTION and b.fields() == GOLD and b.warnings == []
    system, user, schema = fake.calls[0]
    assert system == SYSTEM_MESSAGES["planning"]
    assert split_user_message(user) == (SPEC_BRIEF, "acme", TODAY)
    assert schema == brief_json_schema("acme")


def test_production_keeps_the_rule_value_when_the_model_reads_a_wrong_number() -> None:
    fake = FakeModel({**GOLD, "total_budget": 25_000_000, "roas_floor": 2.0})
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", fake)
    assert b.parsed_by == PARSED_BY_PRODUCTION
    assert b.total_budget == 2_500_000 and b.roas_floor == 3.0
    assert b.warnings == [
        "total_budget: the model read 25,000,000, the text gives 2,500,000; kept 2,500,000",
        "roas_floor: the model read 2, the text gives 3; kept 3",
    ]


def test_production_keeps_model_values_only_when_the_text_backs_them() -> None:
    text = "Put $900k on Alpha Mart; we'd like a return of 3 on this one."
    assert not {"objective", "roas_floor"} & rule_parse(text, "acme", TODAY).found
    fake = FakeModel({**rules(text).fields(), "objective": "roas", "roas_floor": 3.0})
    b = parse_brief(text, "acme", TODAY, "production", fake)
    # The rules read neither field; the text backs both, so they are kept, and flagged.
    assert b.objective == "roas" and b.roas_floor == 3.0
    assert b.warnings == [
        "objective: roas read by the model only; check it",
        "roas_floor: 3 read by the model only; check it",
    ]
    # A "1" that is part of a date does not back a ROAS floor of 1.
    text = "Budget: $650,000. Retailers: Alpha. Objective: ROAS. Flight: 3/1/2027 - 3/28/2027."
    b = parse_brief(
        text, "acme", TODAY, "production", FakeModel({**rules(text).fields(), "roas_floor": 1})
    )
    assert b.roas_floor is None
    assert b.warnings == ["roas_floor: the model read 1, which the brief does not state; kept null"]
    fake = FakeModel({**GOLD, "flight_start": "2027-01-01", "flight_end": "2027-03-31"})
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", fake)
    assert b.flight_start is None and b.flight_end is None
    assert b.warnings == [
        "flight_start: the model read 2027-01-01, which the brief does not state; kept null",
        "flight_end: the model read 2027-03-31, which the brief does not state; kept null",
    ]
    fake = FakeModel({**GOLD, "retailers": ["alpha"]})
    b = parse_brief("Spend $1M to maximize margin.", "acme", TODAY, "production", fake)
    assert b.retailers == [] and "which the brief does not state" in b.warnings[-1]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (None, "no JSON"),
        ("{not json", "not JSON"),
        (["a list"], "not an object"),
        ({**GOLD, "budget": 1}, "budget"),
        ({k: v for k, v in GOLD.items() if k != "objective"}, "objective"),
        ({**GOLD, "retailers": ["gamma"]}, "not among acme's"),
        ({**GOLD, "experiment_reserve": 10}, "experiment_reserve"),
        (RuntimeError("decoder crashed"), "RuntimeError: decoder crashed"),
    ],
)
def test_production_falls_back_to_the_rules_on_a_bad_answer(answer: Any, problem: str) -> None:
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", FakeModel(answer))
    assert b.parsed_by == PARSED_BY_FALLBACK and b.fields() == GOLD
    assert len(b.warnings) == 1 and problem in b.warnings[0]
    assert b.warnings[0].endswith("parsed by the rules")


def test_production_never_overrides_a_rule_error() -> None:
    fake = FakeModel(dict(GOLD))
    with pytest.raises(BriefError, match="unknown retailer"):
        parse_brief(
            "Allocate $2.5M across Alpha and Omega Mart.", "acme", TODAY, "production", fake
        )
    assert fake.calls == []


def test_production_without_a_model_says_so() -> None:
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", None)
    assert b.parsed_by == PARSED_BY_FALLBACK and "parsed by the rules alone" in b.warnings[0]


def test_llm_path_is_the_model_alone() -> None:
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "llm", FakeModel({**GOLD, "roas_floor": 2.0}))
    assert b.parsed_by == PARSED_BY_LLM and b.roas_floor == 2.0 and b.warnings == []
    with pytest.raises(BriefError, match="no valid brief"):
        parse_brief(SPEC_BRIEF, "acme", TODAY, "llm", FakeModel("nope"))


def test_runtime_adapter_asks_for_the_planning_adapter() -> None:
    from adapters.registry import AdapterSet

    planning = SimpleNamespace(metadata=SimpleNamespace(kind="task", id="planning"))
    calls: list[tuple[Any, ...]] = []

    class FakeRuntime:
        registry = SimpleNamespace(entries=lambda: [planning])

        def generate(self, messages: Any, adapters: Any, tenant: Any, **kw: Any) -> Any:
            calls.append((messages, adapters, tenant, kw))
            return SimpleNamespace(parsed=dict(GOLD))

    gen = runtime_generate_json(runtime=FakeRuntime())
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", gen)
    assert b.parsed_by == PARSED_BY_PRODUCTION and b.warnings == []
    messages, adapters, tenant, kw = calls[0]
    assert adapters == AdapterSet(task="planning") and tenant == "acme"
    assert messages == [
        {"role": "system", "content": SYSTEM_MESSAGES["planning"]},
        {"role": "user", "content": brief_user_message(SPEC_BRIEF, "acme", TODAY)},
    ]
    assert kw["json_schema"] == brief_json_schema("acme") and kw["on_invalid"] == "raise"
    base_only = runtime_generate_json(runtime=FakeRuntime(), adapters="none")
    parse_brief("$1M on Gamma Pharmacy, max margin.", "globex", TODAY, "production", base_only)
    assert calls[-1][1] == AdapterSet() and calls[-1][2] == "globex"


def test_the_real_runtime_serves_the_prompt_the_adapter_is_trained_on(tmp_path: Any) -> None:
    from adapters.registry import AdapterRegistry
    from adapters.runtime import Runtime
    from adapters.testing import tiny_fingerprint, tiny_llama

    model, tokenizer = tiny_llama(seed=0)
    runtime = Runtime(
        model, tokenizer, base_fingerprint=tiny_fingerprint(0), registry=AdapterRegistry(tmp_path)
    )
    seen: list[list[dict[str, str]]] = []
    inner = runtime.tokenizer

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return inner(*args, **kwargs)

        def apply_chat_template(self, messages: Any, **kwargs: Any) -> Any:
            seen.append([dict(m) for m in messages])
            return inner.apply_chat_template(messages, **kwargs)

    runtime.tokenizer = Spy()
    gen = runtime_generate_json(runtime=runtime, max_new_tokens=24)
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", gen)
    # A random tiny model writes no valid brief in 24 tokens: the rules finish, and say why.
    assert b.parsed_by == PARSED_BY_FALLBACK and b.fields() == GOLD
    assert "StructuredOutputError" in b.warnings[0]
    trained = BriefExample("s", "t01", SPEC_BRIEF, "acme", TODAY, GOLD).row()["prompt"]
    assert seen[0] == trained


def test_schema_compiles_for_constrained_decoding_and_admits_gold() -> None:
    from llguidance import LLMatcher

    schema = brief_json_schema("globex")
    is_error, messages = LLMatcher.validate_grammar_with_warnings(
        LLMatcher.grammar_from_json_schema(schema)
    )
    assert not is_error and messages == []
    assert schema["properties"]["retailers"]["items"]["enum"] == ["alpha", "gamma"]
    assert schema["required"] == list(GOLD)


# --- datasets -------------------------------------------------------------------------------


def test_dataset_splits_share_no_template_and_no_source_item() -> None:
    examples = brief_examples(seed=3, n=400)
    train, held = examples["train"], examples["eval"]
    assert len(train) == 320 and len(held) == 80
    assert {e.template for e in train}.isdisjoint({e.template for e in held})
    assert {e.source for e in train}.isdisjoint({e.source for e in held})

    def key(e: BriefExample) -> str:
        return json.dumps([e.brand, str(e.today), e.gold], sort_keys=True)

    assert {key(e) for e in train}.isdisjoint({key(e) for e in held})
    assert {e.template for e in train} | {e.template for e in held} <= set(TEMPLATES)
    assert [e.text for e in brief_examples(seed=3, n=400)["eval"]] == [e.text for e in held]
    assert [e.text for e in brief_examples(seed=4, n=400)["eval"]] != [e.text for e in held]


def test_dataset_rows_are_prompt_completion_under_the_planning_system_message() -> None:
    rows = build_brief_dataset(seed=0, n=20)
    row = rows["train"][0]
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["prompt"][0]["content"] == SYSTEM_MESSAGES["planning"]
    text, brand, today = split_user_message(row["prompt"][1]["content"])
    assert row["prompt"][1]["content"] == served_user_message(text, brand, today)
    assert row["prompt"][1]["content"] == (
        brief_user_message(text, brand, today)
        + "\n\n"
        + schema_instruction(brief_json_schema(brand))
    )
    answer = json.loads(row["completion"][0]["content"])
    assert row["completion"][0]["role"] == "assistant" and list(answer) == list(GOLD)


def test_dpo_pairs_reject_plausible_wrong_answers() -> None:
    pairs = build_dpo_pairs(seed=1, n=40)
    for row in pairs["train"] + pairs["eval"]:
        chosen, rejected = (json.loads(row[k][0]["content"]) for k in ("chosen", "rejected"))
        assert chosen != rejected
    gold = {**GOLD, "retailers": ["alpha", "beta"]}
    flaws = {rejected_answer(gold, random.Random(i))[1] for i in range(60)}
    assert {"missing retailer", "budget in millions", "wrong key (budget)"} <= flaws
    wrong, flaw = rejected_answer(gold, random.Random(0))
    assert json.loads(wrong) != json.loads(brief_answer(gold)) and flaw


def test_datasets_are_written_as_jsonl(tmp_path: Any) -> None:
    counts = write_brief_dataset(tmp_path, seed=2, n=20)
    assert counts == {
        "train.jsonl": 16,
        "eval.jsonl": 4,
        "dpo_train.jsonl": 16,
        "dpo_eval.jsonl": 4,
    }
    rows = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert rows == build_brief_dataset(seed=2, n=20)["eval"]


def test_rules_read_every_template_right() -> None:
    # Measured: 1.0 on both splits for seeds 0-7 at n=3000.
    result = evaluate_parser("rules", build_brief_dataset(seed=0, n=500)["eval"])
    assert result["n"] == 100 and result["exact_match"] == 1.0


def test_heldout_set_is_hand_written_and_the_rules_read_it_well() -> None:
    rows = load_heldout()
    assert len(rows) >= 40 and sum("error" in r for r in rows) >= 5
    templated = {e.text for split in brief_examples(0, 1000).values() for e in split}
    assert not templated & {r["text"] for r in rows}
    result = evaluate_parser("rules", rows)
    # Measured 1.0 (84/84); the 30 rows written after the parser scored 25/30 on first sight.
    assert result["exact_match"] >= 0.95, result["failures"]
    assert min(result["field_accuracy"].values()) >= 0.95
    assert result["error_accuracy"] == 1.0


def test_evaluate_production_with_a_model_double() -> None:
    rows = [r for r in load_heldout() if "gold" in r][:10]
    gold = {r["text"]: r["gold"] for r in rows}

    def oracle(system: str, user: str, schema: dict[str, Any]) -> dict[str, Any]:
        return gold[split_user_message(user)[0]]

    result = evaluate_parser("production", rows, oracle)
    assert result["exact_match"] == 1.0 and result["json_valid_rate"] == 1.0
    assert result["fallback_rate"] == 0.0
    silent = evaluate_parser("production", rows, lambda s, u, j: None)
    assert silent["json_valid_rate"] == 0.0 and silent["fallback_rate"] == 1.0
    assert silent["exact_match"] == 1.0  # the rules finish the job
    assert evaluate_parser("llm", rows, lambda s, u, j: None)["exact_match"] == 0.0


def test_user_message_round_trips() -> None:
    user = brief_user_message("Spend $1M\non Alpha", "brand_x", TODAY)
    assert user.startswith("Brand: Brand X Co. (brand_x)\nToday: 2026-11-23\nBrief: ")
    assert split_user_message(user) == ("Spend $1M\non Alpha", "brand_x", TODAY)


def test_structured_brief_feeds_the_optimizer() -> None:
    brief = rules(SPEC_BRIEF).to_optimizer_brief()
    assert (brief.budget, brief.reserve_fraction, brief.roas_floor) == (2_500_000, 0.1, 3.0)
    assert brief.spendable == pytest.approx(2_250_000)


# --- CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The parse command with no model installed, whatever this machine has."""
    import tools.brief

    monkeypatch.setattr(tools.brief, "model_available", lambda: (False, "no model in tests"))
    return CliRunner()


def _invoke(runner: CliRunner, *args: str) -> Any:
    import typer

    from cli.parse import parse

    app = typer.Typer()
    app.command("parse")(parse)
    app.command("version")(lambda: None)  # two commands, so `parse` is a subcommand
    return runner.invoke(app, ["parse", *args])


def test_cli_prints_the_brief_as_json(cli: CliRunner) -> None:
    result = _invoke(cli, SPEC_BRIEF, "--brand", "acme", "--today", "2026-11-23", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {k: out[k] for k in GOLD} == GOLD
    assert out["parsed_by"] == PARSED_BY_FALLBACK
    assert out["warnings"] == ["no model in tests; parsed by the rules alone"]
    result = _invoke(cli, SPEC_BRIEF, "-b", "acme", "--path", "rules", "--json")
    assert json.loads(result.output)["parsed_by"] == "rules"


def test_cli_errors_are_json_with_exit_2(cli: CliRunner) -> None:
    result = _invoke(cli, "Spend $1M on Gamma Pharmacy.", "--brand", "acme", "--json")
    assert result.exit_code == 2
    error = json.loads(result.output)["error"]
    assert error["type"] == "brief_error" and error["field"] == "retailers"
    for args in (["--path", "llm"], ["--today", "23/11/2026"], ["--path", "magic"]):
        result = _invoke(cli, SPEC_BRIEF, "--brand", "acme", *args, "--json")
        assert result.exit_code == 2 and "error" in json.loads(result.output)
    result = _invoke(cli, SPEC_BRIEF, "--brand", "nobody", "--json")
    assert json.loads(result.output)["error"]["type"] == "unknown_brand"


def test_cli_uses_the_model_when_there_is_one(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tools.brief

    fake = FakeModel({**GOLD, "total_budget": 250_000})
    monkeypatch.setattr(tools.brief, "model_available", lambda: (True, ""))
    monkeypatch.setattr(tools.brief, "runtime_generate_json", lambda brand, tenant: fake)
    result = _invoke(cli, SPEC_BRIEF, "--brand", "acme", "--today", "2026-11-23")
    assert result.exit_code == 0, result.output
    assert "parsed by     llm+rules" in result.output
    assert "warning: total_budget: the model read 250,000" in result.output
    assert fake.calls and fake.calls[0][0] == SYSTEM_MESSAGES["planning"]
