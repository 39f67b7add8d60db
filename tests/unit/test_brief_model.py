"""The brief model's path and the production cross-check (with a model double, the tiny runtime
and the real one), the prompts the model is trained and served with, the datasets and the
evaluation, and `rmn parse`."""

import json
import random
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
from brief_support import SPEC_BRIEF, TODAY, rules
from typer.testing import CliRunner

from adapters.prompts import SYSTEM_MESSAGES, schema_instruction
from adapters.structured import OutputSchema
from tools.brief import (
    BriefError,
    brief_json_schema,
    brief_user_message,
    parse_brief,
    rule_parse,
    runtime_generate_json,
    served_user_message,
)
from tools.brief.dataset import (
    BriefExample,
    brief_examples,
    build_brief_dataset,
    build_dpo_pairs,
    load_heldout,
    rejected_answer,
    write_brief_dataset,
)
from tools.brief.evaluate import HELD_SPLITS, evaluate_parser
from tools.brief.labels import brief_answer, gold_spans
from tools.brief.llm import (
    PARSED_BY_FALLBACK,
    PARSED_BY_LLM,
    PARSED_BY_PRODUCTION,
)
from tools.brief.prompts import brief_output_schema, split_user_message
from tools.brief.rules import normalize
from tools.brief.schema import BRIEF_FIELDS, StructuredBrief, brand_retailers, field_matches
from tools.brief.spans import (
    ROLES,
    SPAN_KEYS,
    SpanError,
    candidates,
    convert,
    span_decode_schema,
    span_json_schema,
)
from tools.brief.wording import TEMPLATES

# --- the model path and production ----------------------------------------------------------


class FakeModel:
    """A test double for the runtime: returns a fixed answer and records what it was asked."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str, OutputSchema]] = []

    def __call__(self, system: str, user: str, schema: OutputSchema) -> Any:
        self.calls.append((system, user, schema))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


GOLD = rules(SPEC_BRIEF).fields()


def spans(text: str, fields: dict[str, Any], brand: str = "acme") -> dict[str, Any]:
    """The span answer a correct model gives for `fields` of `text`."""
    answer = gold_spans(fields, candidates(text, brand, TODAY))
    assert answer is not None
    return answer


GOLD_SPANS = spans(SPEC_BRIEF, GOLD)


def test_the_model_points_at_spans_and_code_converts_them() -> None:
    assert GOLD_SPANS == {
        "budget": "$2.5M",
        "retailers": {"Alpha": "include", "Beta": "include"},
        "objective": "incremental margin",
        "floor": "3",
        "reserve": "10%",
        "flight": None,
        "stock": None,
    }
    text = (
        # "every network", not "all networks": beside "all networks" a named retailer is not
        # offered unless words keep it in (`spans._every_retailer`; test_brief_limits.py)
        "We'll spend $100k per week on Beta Grocers for 6 weeks starting January 4, 2027, "
        "every network except Alpha and Delta, at least $3 in sales for every $1 spent, "
        "set aside $60k for tests, include out-of-stock SKUs."
    )
    cands = candidates(text, "acme", TODAY)
    answer = {
        "budget": "$100k",
        "retailers": {"Beta Grocers": "include", "except Alpha": "exclude", "Delta": "exclude"},
        "objective": None,
        "floor": "3",
        "reserve": "$60k",
        "flight": "January 4, 2027",  # the reader counts the 6 weeks in
        "stock": "include out-of-stock SKUs",
    }
    fields = convert(answer, cands)
    assert fields["total_budget"] == 600_000  # a rate over the flight's 6 weeks
    assert fields["retailers"] == ["beta"] and fields["roas_floor"] == 3.0
    assert fields["experiment_reserve"] == 0.1 and fields["exclude_oos"] is False
    assert (fields["flight_start"], fields["flight_end"]) == (date(2027, 1, 4), date(2027, 2, 14))
    with pytest.raises(SpanError, match="not one of the brief's budget spans"):
        convert({**answer, "budget": "$2M"}, cands)
    with pytest.raises(SpanError, match="over the limit"):
        convert({**answer, "reserve": "$100k", "flight": None, "budget": "$60k"}, cands)


@pytest.mark.parametrize(
    ("text", "retailers", "roles"),
    [
        # One retailer named: it is included (not "every retailer").
        ("Spend $1.2M on Delta Home only.", ["delta"], {"Delta Home": "include"}),
        # Every other retailer: the named one is excluded.
        # (A mention keeps the words that exclude it.)
        (
            "Spend $1M on all networks but Beta.",
            ["alpha", "delta"],
            {"networks but Beta": "exclude"},
        ),
        # Every retailer, each named: all included; [] and the full list are the same plan.
        (
            "Spend $1M on Alpha, Beta and Delta.",
            [],
            {m: "include" for m in ("Alpha", "Beta", "Delta")},
        ),
        # A named retailer left out of the plan is excluded.
        ("Spend $1M on Alpha, not Beta.", ["alpha"], {"Alpha": "include", "not Beta": "exclude"}),
    ],
)
def test_every_retailer_mention_gets_a_role(
    text: str, retailers: list[str], roles: dict[str, str]
) -> None:
    cands = candidates(text, "acme", TODAY)
    gold = {**rules(text).fields(), "retailers": retailers}
    answer = spans(text, gold)
    assert answer["retailers"] == roles
    assert field_matches("retailers", convert(answer, cands)["retailers"], retailers, "acme")


def test_a_brief_whose_roles_cannot_give_the_gold_retailers_is_not_labelled() -> None:
    # "Every retailer" yet only Beta named: no roles give all three, so no training row.
    text = "Spend $1M across every retailer; Beta is the biggest one."
    gold = {**rules(text).fields(), "retailers": []}
    assert gold_spans(gold, candidates(text, "acme", TODAY)) is None
    # A mention in a sentence that only reports the past is not offered, so this one is.
    text = "Spend $1M across every retailer; Beta did well last year."
    assert candidates(text, "acme", TODAY).mentions == {}
    assert gold_spans(gold, candidates(text, "acme", TODAY)) is not None


def test_a_budget_beyond_any_plan_from_the_model_is_a_brief_error() -> None:
    # The model's path alone once let StructuredBrief's own ValidationError escape for $250B.
    text = "Spend $250B on Alpha Mart for margin."
    answer = {**dict.fromkeys(SPAN_KEYS), "budget": "$250B", "retailers": {"Alpha Mart": "include"}}
    with pytest.raises(BriefError, match="beyond any retail-media plan"):
        parse_brief(text, "acme", TODAY, "llm", FakeModel(answer))


def test_production_agrees_with_a_correct_model() -> None:
    fake = FakeModel(dict(GOLD_SPANS))
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", fake)
    assert b.parsed_by == PARSED_BY_PRODUCTION and b.fields() == GOLD and b.warnings == []
    system, user, schema = fake.calls[0]
    assert system == SYSTEM_MESSAGES["planning"]
    assert split_user_message(user) == (SPEC_BRIEF, "acme", TODAY)
    assert schema.json_schema == brief_json_schema(candidates(SPEC_BRIEF, "acme", TODAY))


def test_production_keeps_the_rule_value_when_the_model_points_at_the_wrong_span() -> None:
    text = (
        "Allocate $2.5M across Alpha and Beta (at most $2M on Beta) to maximize incremental "
        "margin with ROAS >= 3, not 2, and 10% for experiments"
    )
    fake = FakeModel({**spans(text, rules(text).fields()), "budget": "$2M", "floor": "2"})
    b = parse_brief(text, "acme", TODAY, "production", fake)
    assert b.parsed_by == PARSED_BY_PRODUCTION
    assert b.total_budget == 2_500_000 and b.roas_floor == 3.0
    assert b.warnings[1:] == [
        "total_budget: the model read 2,000,000, the text gives 2,500,000; kept 2,500,000",
        "roas_floor: the model read 2, the text gives 3; kept 3",
    ]


def test_production_keeps_the_brief_split_of_the_rules() -> None:
    """The split by retailer is the rules' reading (the model answers no split), kept where
    the budget and the retailers are the rules' too."""
    text = "Acme: $200k on Alpha Mart and $150k on Beta Grocers, margin, 10% for tests."
    # the model points at one part as the budget (no span states the $350k total)
    fake = FakeModel(spans(text, {**rules(text).fields(), "total_budget": 200_000}))
    b = parse_brief(text, "acme", TODAY, "production", fake)
    assert b.parsed_by == PARSED_BY_PRODUCTION and b.total_budget == 350_000
    assert b.retailer_split == {"alpha": 200_000, "beta": 150_000}


def test_production_keeps_model_values_only_when_the_text_backs_them() -> None:
    text = "Put $900k on Alpha Mart; we'd like a return of 3 on this one."
    assert "roas_floor" not in rule_parse(text, "acme", TODAY).found
    fake = FakeModel({**spans(text, rules(text).fields()), "floor": "3"})
    b = parse_brief(text, "acme", TODAY, "production", fake)
    # The rules read no floor; the text backs it, so it is kept, and flagged.
    assert b.roas_floor == 3.0
    assert b.warnings == ["roas_floor: 3 read by the model only; check it"]
    # With no word of ROAS in the brief, a floor word beside the number backs it.
    text = "Globex, $150k at Alpha Mart in June 2027, nothing below 2 please."
    assert "roas_floor" not in rule_parse(text, "globex", TODAY).found
    fake = FakeModel({**spans(text, rules(text, "globex").fields(), "globex"), "floor": "2"})
    b = parse_brief(text, "globex", TODAY, "production", fake)
    assert b.roas_floor == 2.0 and b.warnings == ["roas_floor: 2 read by the model only; check it"]
    # The numbers of a date are no floor the model may point at: the grammar offers none.
    text = "Budget: $650,000. Retailers: Alpha. Objective: ROAS. Flight: 3/1/2027 - 3/28/2027."
    assert candidates(text, "acme", TODAY).floors == {}
    assert brief_json_schema(candidates(text, "acme", TODAY))["properties"]["floor"] == {
        "enum": [None]
    }


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (None, "no JSON"),
        ("{not json", "not JSON"),
        (["a list"], "not an object"),
        ({**GOLD_SPANS, "budget": "$1"}, "not one of the brief's budget spans"),
        ({k: v for k, v in GOLD_SPANS.items() if k != "objective"}, "lacks objective"),
        (
            {**GOLD_SPANS, "retailers": {"Gamma": "include"}},
            "not one of the brief's retailers spans",
        ),
        ({**GOLD_SPANS, "retailers": ["Alpha"]}, "role must be one of include, exclude"),
        ({**GOLD_SPANS, "reserve": "$2.5M"}, "not one of the brief's reserve spans"),
        (RuntimeError("decoder crashed"), "RuntimeError: decoder crashed"),
    ],
)
def test_production_falls_back_to_the_rules_on_a_bad_answer(answer: Any, problem: str) -> None:
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", FakeModel(answer))
    assert b.parsed_by == PARSED_BY_FALLBACK and b.fields() == GOLD
    assert len(b.warnings) == 1 and problem in b.warnings[0]
    assert b.warnings[0].endswith("parsed by the rules")


def test_production_never_overrides_a_rule_error() -> None:
    fake = FakeModel(dict(GOLD_SPANS))
    with pytest.raises(BriefError, match="unknown retailer"):
        parse_brief(
            "Allocate $2.5M across Alpha and Omega Mart.", "acme", TODAY, "production", fake
        )
    assert fake.calls == []


def test_production_without_a_model_says_so() -> None:
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", None)
    assert b.parsed_by == PARSED_BY_FALLBACK and "parsed by the rules alone" in b.warnings[0]


def test_llm_path_is_the_model_alone() -> None:
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "llm", FakeModel({**GOLD_SPANS, "floor": None}))
    assert b.parsed_by == PARSED_BY_LLM and b.roas_floor is None and b.warnings == []
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
            return SimpleNamespace(parsed=dict(GOLD_SPANS))

    gen = runtime_generate_json(runtime=FakeRuntime())
    b = parse_brief(SPEC_BRIEF, "acme", TODAY, "production", gen)
    assert b.parsed_by == PARSED_BY_PRODUCTION and b.warnings == []
    messages, adapters, tenant, kw = calls[0]
    assert adapters == AdapterSet(task="planning") and tenant == "acme"
    assert messages == [
        {"role": "system", "content": SYSTEM_MESSAGES["planning"]},
        {"role": "user", "content": brief_user_message(SPEC_BRIEF, "acme", TODAY)},
    ]
    schema = brief_json_schema(candidates(SPEC_BRIEF, "acme", TODAY))
    assert kw["json_schema"].json_schema == schema and kw["on_invalid"] == "raise"
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

    for example in brief_examples(seed=0, n=40)["eval"]:
        schema = brief_json_schema(candidates(example.text, example.brand, example.today))
        grammar = LLMatcher.grammar_from_json_schema(schema)
        is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar)
        assert not is_error and messages == []
        assert schema["required"] == list(SPAN_KEYS)
        # The gold answer is one the grammar admits: every span is one of its field's options,
        # and every retailer mention has a role, in the order the grammar writes them.
        answer = json.loads(example.answer)
        assert list(answer) == list(SPAN_KEYS)
        for key, said in answer.items():
            options = schema["properties"][key]
            if key == "retailers":
                assert list(said) == options["required"] == list(options["properties"])
                assert all(role in ROLES for role in said.values())
            else:
                assert said in options["enum"]


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
        + schema_instruction(brief_json_schema(candidates(text, brand, today)))
    )
    answer = json.loads(row["completion"][0]["content"])
    assert row["completion"][0]["role"] == "assistant" and list(answer) == list(SPAN_KEYS)


def test_dpo_pairs_reject_plausible_wrong_answers() -> None:
    pairs = build_dpo_pairs(seed=1, n=40)
    for row in pairs["train"] + pairs["eval"]:
        chosen, rejected = (json.loads(row[k][0]["content"]) for k in ("chosen", "rejected"))
        assert chosen != rejected
    text = (
        "Allocate $2.5M (at most $2M on Beta) across Alpha and Beta to maximize margin over "
        "sales, ROAS >= 3"
    )
    right = brief_answer(text, "acme", TODAY, rules(text).fields())
    assert right is not None
    flaws = {rejected_answer(text, "acme", TODAY, right, random.Random(i))[1] for i in range(60)}
    assert {"retailer's role flipped", "another amount as the budget", "wrong objective"} <= flaws
    wrong, flaw = rejected_answer(text, "acme", TODAY, right, random.Random(0))
    assert json.loads(wrong) != json.loads(right) and flaw


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
    rows = [e.meta() for e in brief_examples(seed=0, n=500)["eval"]]
    result = evaluate_parser("rules", rows)
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


@pytest.mark.parametrize("split", sorted(HELD_SPLITS))
def test_every_held_out_set_is_well_formed(split: str) -> None:
    # The hand-written sets are the measure of every path: a gold that the schema would refuse,
    # a retailer the brand does not sell through or an error naming no field would score any
    # parser wrong (the schema also refuses a flight that ends before it starts). Unique ids;
    # the refusals name a brief field.
    # A split by retailer (`unseen46` on, 30 to 50 briefs a set) names retailers of the plan
    # and adds up to its budget; caps (`unseen49`) are below it.
    rows = load_heldout(HELD_SPLITS[split])
    assert len({r["id"] for r in rows}) == len(rows) >= 30
    for row in rows:
        if "error" in row:
            assert row["error"] in BRIEF_FIELDS, row["id"]
            continue
        split_gold = row["gold"].get("retailer_split") or {}
        caps_gold = row["gold"].get("retailer_caps") or {}
        gold = {**row["gold"], "retailer_split": split_gold, "retailer_caps": caps_gold}
        assert all(cap < row["gold"]["total_budget"] for cap in caps_gold.values()), row["id"]
        brief = StructuredBrief(brand_id=row["brand"], **gold)
        assert set(brief.retailers) <= set(brand_retailers(row["brand"])), row["id"]
        if split_gold:
            assert sum(split_gold.values()) == pytest.approx(brief.total_budget, abs=0.02)


def test_evaluate_production_with_a_model_double() -> None:
    rows = [r for r in load_heldout() if "gold" in r][:10]
    gold = {normalize(r["text"]): r["gold"] for r in rows}  # the model is shown digits

    def oracle(system: str, user: str, schema: dict[str, Any]) -> dict[str, Any] | None:
        text, brand, today = split_user_message(user)
        return gold_spans(gold[text], candidates(text, brand, today))

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

    fake = FakeModel({**GOLD_SPANS, "floor": None})
    monkeypatch.setattr(tools.brief, "model_available", lambda: (True, ""))
    monkeypatch.setattr(tools.brief, "runtime_generate_json", lambda brand, tenant: fake)
    result = _invoke(cli, SPEC_BRIEF, "--brand", "acme", "--today", "2026-11-23")
    assert result.exit_code == 0, result.output
    assert "parsed by     llm+rules" in result.output
    assert "warning: roas_floor: the model read null, the text gives 3; kept 3" in result.output
    assert fake.calls and fake.calls[0][0] == SYSTEM_MESSAGES["planning"]


# --- the decoding grammar -------------------------------------------------------------------


@pytest.fixture(scope="module")
def grammar_accepts() -> Any:
    import llguidance.hf
    from llguidance import LLMatcher

    from adapters.testing import smollm2_tokenizer

    tokenizer = smollm2_tokenizer()
    ll_tokenizer = llguidance.hf.from_tokenizer(tokenizer)

    def accepts(schema: OutputSchema, answer: dict[str, Any]) -> bool:
        matcher = LLMatcher(ll_tokenizer, schema.grammar(), log_level=0)
        text = json.dumps(answer, separators=(",", ":"))
        tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
        return all(matcher.consume_token(t) for t in tokens) and matcher.is_accepting()

    return accepts


def test_the_grammar_never_lets_the_reserve_be_the_budget(grammar_accepts: Any) -> None:
    # The planning adapter's most common invalid answer on hand-written briefs: the budget's
    # own span as the reserve ("$600k" twice: 100%, no plan). The shown schema allows it; the
    # grammar the runtime decodes under does not, nor a reserve over half the budget.
    text = "Acme: $600k on Alpha Mart, last year $1.5M. Set aside $60k of it for experiments."
    cands = candidates(text, "acme", TODAY)
    schema = brief_output_schema(cands)
    assert schema.json_schema == brief_json_schema(cands)  # what the prompt shows: unchanged
    right = {**dict.fromkeys(SPAN_KEYS), "budget": "$600k", "retailers": {"Alpha Mart": "include"}}
    assert grammar_accepts(schema, {**right, "reserve": "$60k"})
    assert not grammar_accepts(schema, {**right, "reserve": "$600k"})
    assert not grammar_accepts(schema, {**right, "budget": "$60k", "reserve": "$600k"})
    assert grammar_accepts(schema, {**right, "budget": "$1.5M", "reserve": "$600k"})
    # The shown schema alone admits the budget as its own reserve: the narrowing is the fix.
    plain = OutputSchema.of(brief_json_schema(cands))
    assert grammar_accepts(plain, {**right, "reserve": "$600k"})
    # One amount: nothing to narrow, the grammar is the shown schema's.
    assert (
        span_decode_schema(candidates("Acme: $600k on Alpha, 5% for tests", "acme", TODAY)) is None
    )


def test_a_floors_roas_is_not_offered_as_the_objective() -> None:
    # "ROAS floor 2.75" named no objective, yet the model chose "ROAS" as one (unseen2: 2 of
    # 60 briefs); the rules already skip it, and the candidates now do too.
    text = "Acme Foods, $2M, Alpha Mart + Delta Home. ROAS floor 2.75. Reserve 12%."
    assert candidates(text, "acme", TODAY).objectives == {}
    text = "Maximize ROAS on Alpha with ROAS >= 3, $1M"
    assert candidates(text, "acme", TODAY).objectives == {"ROAS": "roas"}


def test_a_dates_day_and_a_period_half_are_not_offered() -> None:
    # The adapter chose "10" of a meeting date as the floor (unseen4 x09) and "half" of "last
    # half" as a 50% reserve (x18): neither span states those fields, so neither is offered.
    text = "Let's discuss at the Dec 10 sync. Acme spends $2.4M at Alpha Mart. ROAS >= 2.8."
    assert candidates(text, "acme", TODAY).floors == {"2.8": 2.8}
    text = "Brand X, $2.2M on Gamma. No experiment reserve, we ran our tests last half."
    assert "half" not in candidates(text, "brand_x", TODAY).reserves
    text = "Acme, $1M on Alpha for the first half of 2027; hold half back for tests."
    assert candidates(text, "acme", TODAY).reserves == {"half": 0.5}
    assert candidates("Acme, $1M on Alpha, ROAS 3, half for tests", "acme", TODAY).reserves == {
        "half": 0.5
    }


def test_slashes_and_bars_separate_a_shorthand_briefs_clauses() -> None:
    # The whole brief was one clause, so the stock span was the whole brief: the answer ran
    # past its token limit (unseen2 v32).
    text = "Acme / Beta Grocers only / $1.05M / May 2027 / no ROAS floor / include OOS SKUs"
    assert candidates(text, "acme", TODAY).stock == {"include OOS SKUs": False}


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ({"budget": None}, "total_budget"),
        ({"budget": "$250B"}, "total_budget"),
        ({"retailers": {"Alpha Mart": "maybe"}}, "retailers"),
        ({"retailers": {"Delta Home": "include"}}, "retailers"),  # not one of globex's
        ({"reserve": "$250B"}, "experiment_reserve"),
    ],
)
def test_the_model_alone_refuses_naming_the_field(answer: dict[str, Any], field: str) -> None:
    # A refusal of the model alone named no field (`field=None`), so none counted as the
    # refusal the brief called for.
    text = "Globex: $250B or $1M on Alpha Mart (not Delta Home), margin."
    base = {**dict.fromkeys(SPAN_KEYS), "budget": "$1M", "retailers": {"Alpha Mart": "include"}}
    with pytest.raises(BriefError) as info:
        parse_brief(text, "globex", TODAY, "llm", FakeModel({**base, **answer}))
    assert info.value.detail["field"] == field


def test_a_mention_after_words_that_exclude_it_may_only_be_excluded() -> None:
    # The adapter gave "everywhere except Beta Grocers" and "not alpha" the role "include" (6
    # of the 120 briefs of unseen8 and unseen9), and the mentions came retailer by retailer,
    # not in the brief's order ("delta and beta please, not alpha" was shown alpha first).
    cands = candidates("acme: delta and beta please, not alpha. $730k", "acme", TODAY)
    assert list(cands.mentions) == ["delta", "beta", "not alpha"]
    roles = span_json_schema(cands)["properties"]["retailers"]["properties"]
    assert roles == {
        "delta": {"enum": ["include", "exclude"]},
        "beta": {"enum": ["include", "exclude"]},
        "not alpha": {"enum": ["exclude"]},
    }
    listed = candidates("Acme: everywhere except Beta Grocers and Delta Home, $1M", "acme", TODAY)
    assert listed.mentions == {"except Beta Grocers": "beta", "Delta Home": "delta"}
    assert listed.excluded == {"except Beta Grocers", "Delta Home"}
    answer = {**dict.fromkeys(SPAN_KEYS), "budget": "$1M", "retailers": {
        "except Beta Grocers": "exclude", "Delta Home": "include"}}  # fmt: skip
    with pytest.raises(SpanError, match="settle a mention's role"):
        convert(answer, listed)
    answer["retailers"] = {"except Beta Grocers": "exclude", "Delta Home": "exclude"}
    assert convert(answer, listed)["retailers"] == ["alpha"]


@pytest.mark.parametrize(
    ("text", "floors"),
    [
        # Each chosen by the adapter as the floor (unseen9): a chat's clock times (v54), a
        # phone number and "Quick one" (v43), a year after an apostrophe (v26), a count of
        # SKUs (v18), "all three of its retailers" (v30), last year's ROAS (v16, v03).
        ("[10:02] Mia: brand x wants beta, budget 650k\n[10:06] Mia: roas floor 2.8", {"2.8": 2.8}),
        ("Quick one for Globex: $275,000. ROAS of at least 2.75.\nSam | +1 555 0134",
         {"2.75": 2.75}),  # fmt: skip
        ("Brand X needs 450k for Beta in April '27. nothing below 2.7.", {"2.7": 2.7}),
        ("Brand X is launching 14 new SKUs at Beta. $350,000, ROAS at least 2.5.", {"2.5": 2.5}),
        ("Brand X across all three of its retailers: $3.2M, ROAS floor 1.5.", {"1.5": 1.5}),
        ("Initech: USD 1.5mn, no floor. Last year's Delta spend was 1.2mn at 3.1x.", {}),
        ("Globex: $1.2MM. Floor: 3:1. (Last year we spent $900k there and got 2.1x.)",
         {"3:1": 3.0}),  # fmt: skip
        # Still offered: a floor of 1 stated as one.
        ("Acme: $1M on Alpha, ROAS floor 1", {"1": 1.0}),
    ],
)
def test_numbers_that_are_no_ratio_are_not_offered_as_the_floor(
    text: str, floors: dict[str, float]
) -> None:
    brand = "acme" if "Acme" in text else "globex" if "Globex" in text else "brand_x"
    assert candidates(text, brand, date(2026, 12, 5)).floors == floors


@pytest.mark.parametrize(
    ("text", "money"),
    [
        # Counts with a word between (v18, v51 of unseen9), and past or replaced amounts
        # (w33 of unseen8, v03 of unseen9): each chosen by the adapter as the budget.
        ("Brand X at Beta (approx. 2.3M weekly shoppers). Media ask: $350,000.", ["$350,000"]),
        ("Globex - ~4.5M loyalty members at Gamma. Budget $95,000.", ["$95,000"]),
        ("brand x: 2025 spend was 380k @ 2.9 roas. for 2027 Q1 we have 420k.", ["420k"]),
        ("Globex: USD 1.2MM. (Last year we spent $900k there.)", ["USD 1.2MM"]),
        # Bare amounts of five digits or more (v45, v08): none was offered.
        ("Please plan: {brand: Acme Foods, budget: 850000, roas_floor: 3}", ["850000"]),
        ("brand,budget_usd,start,end\nInitech Home,320000,2027-04-01,2027-06-30", ["320000"]),
        # Not a phone number, nor "01,202" of a CSV's dates.
        ("Acme: $40k. Call +1 555 01234", ["$40k"]),
        # A count's noun on the next line counts nothing (u50 of unseen7 lost its budget to
        # "retailers:" below it while this change was made).
        ("brand: Brand X\nbudget: 950k\nretailers: [gamma pharmacy]", ["950k"]),
    ],
)
def test_amounts_that_are_counts_past_or_bare_are_offered_as_they_should_be(
    text: str, money: list[str]
) -> None:
    brand = next(b for b in ("acme", "globex", "initech", "brand_x") if b in text.lower()
                 or (b == "brand_x" and "brand x" in text.lower()))  # fmt: skip
    assert list(candidates(text, brand, date(2026, 12, 5)).money) == money


def test_candidates_leave_out_what_the_words_settle_in_unseen10_and_unseen11() -> None:
    """Spans the adapter chose wrong (p04, p08, p15, p17, p27, p32, q59 of unseen10 and
    unseen11): a replaced amount where the brief first gave it, counts with two words between
    or "of them", an amount per store, a mention in a sentence about the past, and lone
    mentions that words keep in ("Gamma Pharm only", "Retailers | Alpha Mart")."""
    today = date(2026, 12, 5)
    fixed = candidates(
        "Budget $400k, Delta Home only.\nCorrection: the budget is actually $450k, not $400k.",
        "initech",
        today,
    )
    assert list(fixed.money) == ["$450k"] and fixed.kept == {"Delta Home"}
    stores = candidates(
        "Initech is rolling into 1,200 Alpha Mart stores. We want $800K on Alpha Mart alone.",
        "initech",
        today,
    )
    assert list(stores.money) == ["$800K"] and stores.kept == {"Alpha Mart"}
    per = candidates("Acme: ~$150 per store per week; the total is $520,000.", "acme", today)
    assert list(per.money) == ["$520,000"]
    them = candidates("Gamma: 2,300 stores, we're in 1,900 of them. Budget $420k", "globex", today)
    assert list(them.money) == ["$420k"]
    past = candidates(
        "$520,000 on Delta Home.\n> Last time (Sept 2026) we did $300k at Alpha.", "initech", today
    )
    assert past.mentions == {"Delta Home": "delta"}
    only = candidates("Globex Health, Gamma Pharm only. $500k.", "globex", today)
    assert span_json_schema(only)["properties"]["retailers"]["properties"] == {
        "Gamma": {"enum": ["include"]}
    }
    cell = candidates("| Budget | $600K |\n| Retailers | Alpha Mart |", "globex", today)
    assert cell.kept == {"Alpha Mart"}
    # Words that disagree leave the choice to the model.
    both = candidates("Acme: Alpha Mart only, $1M. Later: Alpha Mart is out, Beta.", "acme", today)
    assert list(both.mentions) == ["Alpha Mart", "Beta"] and both.kept == both.excluded == set()


@pytest.mark.parametrize(
    ("text", "brand", "money"),
    [
        # The adapter chose the first amount of each in unseen29 to unseen31 (ja05, la07, oa28).
        ("Plan for $3M for Acme across all retailers... actually make it $3.4M.", "acme",
         ["$3.4M"]),
        ("plan for globex, 3M, actually make it 3.4M - finance approved. Q2.", "globex",
         ["3.4M"]),
        ("Initech plan - budget $2M, hmm, no, finance says $1.75M. Alpha only.", "initech",
         ["$1.75M"]),
        # The amount corrected to, said twice, stays; a reserve amount stays.
        ("Brand X budget $900k (our CFO wanted $1.2M but we're going with $900k).", "brand_x",
         ["$900k"]),
        ("Acme $2M, $200k of it for tests. Actually make the budget $2.4M.", "acme",
         ["$200k", "$2.4M"]),
    ],
)
def test_amounts_a_correction_replaces_are_not_offered(
    text: str, brand: str, money: list[str]
) -> None:
    assert list(candidates(text, brand, date(2026, 12, 5)).money) == money


def test_a_brief_records_which_fields_it_left_open() -> None:
    """An approver read a default 10% reserve and margin goal as the brief's own (unseen35):
    the brief keeps which fields were left at their default, along every path that can tell,
    and an edit of a field makes it the reviewer's."""
    from tools.plan.review import apply_changes

    text = "Put $900k on Alpha Mart in March 2027."
    assert rules(text).defaults == ["objective", "experiment_reserve", "exclude_oos"]
    said = "Put $900k on Alpha Mart and Beta, max revenue, 5% for tests, keep OOS items in."
    assert rules(said).defaults == []
    assert rules("Acme: $2M, every retailer, max margin.").defaults == [
        "experiment_reserve", "exclude_oos"]  # fmt: skip
    assert rules("Acme: $2M, max margin, 10% tests.").defaults == ["retailers", "exclude_oos"]
    # the model's reading keeps the defaults the text leaves open; a value it reads that the
    # text backs (kept by `reconcile`) is not one
    fake = FakeModel(spans(text, rules(text).fields()))
    b = parse_brief(text, "acme", TODAY, "production", fake)
    assert b.parsed_by == PARSED_BY_PRODUCTION and b.defaults == rules(text).defaults
    parse = rule_parse(text, "acme", TODAY)
    assert parse.defaults({**parse.values, "objective": "incremental_revenue"}) == [
        "experiment_reserve", "exclude_oos"]  # fmt: skip
    # the model alone cannot tell what the text left open
    assert parse_brief(text, "acme", TODAY, "llm", FakeModel(spans(text, rules(text).fields()))
                       ).defaults == []  # fmt: skip
    edited, _ = apply_changes(rules(text).model_dump(mode="json"), {},
                              {"experiment_reserve": 0.1})  # fmt: skip
    assert edited["defaults"] == ["objective", "exclude_oos"]


def test_the_evaluation_scores_the_brief_split_where_the_gold_gives_it() -> None:
    """Sets from `unseen46` on give the brief's split by retailer (null: none), `unseen49` its
    caps; each is scored where the gold gives it, a refusal counting as a miss."""
    text = "Acme: $200k on Alpha Mart and $150k on Beta Grocers, margin, Q1 2027."
    gold = {**rules(text).fields(), "retailer_split": {"alpha": 200_000, "beta": 150_000}}
    rows = [
        {"id": "s1", "brand": "acme", "today": TODAY.isoformat(), "text": text, "gold": gold},
        {"id": "s2", "brand": "acme", "today": TODAY.isoformat(), "text": text,
         "gold": {**gold, "retailer_split": None}},
        {"id": "s3", "brand": "acme", "today": TODAY.isoformat(), "text": "Alpha and Beta, Q1",
         "gold": gold},
    ]  # fmt: skip
    out = evaluate_parser("rules", rows)
    assert out["n_split_rows"] == 3 and out["split_accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert out["failures"][0]["wrong"] == {"retailer_split": {
        "got": {"alpha": 200_000, "beta": 150_000}, "gold": {}}}  # fmt: skip
    capped = "Acme: $350k across Alpha Mart and Beta Grocers, at most $100k at Beta, Q1 2027."
    caps_gold = {**rules(capped).fields(), "retailer_caps": {"beta": 100_000}}
    out = evaluate_parser("rules", [{"id": "c1", "brand": "acme", "today": TODAY.isoformat(),
                                     "text": capped, "gold": caps_gold}])  # fmt: skip
    assert out["n_caps_rows"] == 1 and out["caps_accuracy"] == 1.0


def test_cli_shows_the_brief_split_and_caps(cli: CliRunner) -> None:
    """`rmn parse` gives the split and the caps it read, not only their warnings."""
    text = "Acme: $200k on Alpha Mart and $150k on Beta Grocers, no more than $100k at Delta"
    result = _invoke(cli, text, "--brand", "acme", "--path", "rules")
    assert result.exit_code == 0, result.output
    assert "split         alpha $200,000, beta $150,000\n" in result.output
    assert "at most       delta $100,000\n" in result.output
