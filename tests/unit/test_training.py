"""Adapter training: datasets, SFT/DPO on the tiny random Llama, the eval harness, and the
adapters shipped in the repository."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.prompts import system_message
from adapters.registry import AdapterMetadata, AdapterRegistry
from adapters.testing import TINY_BASE_MODEL, tiny_fingerprint
from adapters.training.datasets import AdapterDataset, build_dataset, split_sources
from adapters.training.evaluate import (
    evaluate_adapter,
    normalize_answer,
    score_copy,
)
from adapters.training.models import TINY, cuda_available, tiny_base
from adapters.training.policy_qa import policy_facts
from adapters.training.sft import train_sft
from adapters.training.trainer import TrainOptions
from tools.brief.dataset import (
    HANDWRITTEN,
    PLANNING_TRAIN_SETS,
    handwritten_examples,
    load_heldout,
)
from tools.policy import load_brand_guide, load_retailer_policy
from tools.policy.compliance import (
    AdCopy,
    brand_guide,
    check_copy,
    check_output,
    required_disclaimers,
    retailer_policy,
)
from tools.policy.prompts import section_text

runner = CliRunner()
ADAPTERS = [("retailer", "gamma"), ("task", "creative"), ("brand", "acme"), ("task", "planning")]


@cache
def built(kind: str, adapter_id: str) -> AdapterDataset:
    """One build per adapter at the default seed, shared by the tests that only read it: the
    planning set took 28-35 s a build (its span answers run the brief rules on every brief),
    and three tests built it (fresh clone, 2026-12-07)."""
    return build_dataset(kind, adapter_id)


# --- datasets -------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "adapter_id"), ADAPTERS)
def test_splits_never_share_a_source_item(kind: str, adapter_id: str) -> None:
    data = built(kind, adapter_id)
    assert data.train and data.eval
    assert not data.sources("train") & data.sources("eval")
    assert not {e.user for e in data.train} & {e.user for e in data.eval}
    card = data.card()
    assert card["splits"] == {"train": len(data.train), "eval": len(data.eval)}


def test_planning_trains_on_the_hand_written_sets_and_never_on_the_held_out_ones() -> None:
    data = built("task", "planning")
    trained = {e.meta["text"] for e in data.train}
    evaluated = {e.meta["text"] for e in data.eval}
    held = {"heldout", "unseen12", "unseen13", "unseen14", "unseen15", "unseen22", "unseen24",
            "unseen25", "unseen37", "unseen64", "unseen65", "unseen66", "unseen67",
            "unseen68", "unseen69", "unseen70", "unseen71"}  # fmt: skip
    assert held <= set(HANDWRITTEN) - set(PLANNING_TRAIN_SETS)
    # every read set is trained on but unseen65 to unseen68 (a v11 trained on them was refused
    # by the gate); unseen64 and unseen69 to unseen71 are blind (unread)
    assert set(HANDWRITTEN) - set(PLANNING_TRAIN_SETS) == held
    for name, path in HANDWRITTEN.items():
        texts = {r["text"] for r in load_heldout(path)}
        assert not texts & evaluated, name  # the gate scores templates only
        if name in PLANNING_TRAIN_SETS:
            stated = {e.text for e in handwritten_examples((name,))}
            assert stated and stated <= trained, name
        else:
            assert not texts & trained, name


def test_datasets_are_seeded() -> None:
    a, b = build_dataset("retailer", "beta", seed=0), build_dataset("retailer", "beta", seed=0)
    assert a.rows("train") == b.rows("train") and a.rows("eval") == b.rows("eval")
    other = build_dataset("retailer", "beta", seed=1)
    assert other.sources("eval") != a.sources("eval")
    train, held = split_sources([f"s{i}" for i in range(20)], seed=3)
    assert len(held) == 5 and not train & held and len(train | held) == 20


@pytest.mark.parametrize(
    ("kind", "adapter_id", "task"),
    [("retailer", "alpha", None), ("task", "creative", "creative"), ("brand", "globex", "creative")]
    + [("task", "planning", "planning")],
)
def test_rows_are_prompt_completion_with_the_served_system_message(
    kind: str, adapter_id: str, task: str | None
) -> None:
    data = built(kind, adapter_id)
    for row in data.rows("train")[:20] + data.rows("eval")[:5]:
        assert set(row) == {"prompt", "completion"}
        system, user = row["prompt"]
        assert system == {"role": "system", "content": system_message(task)}
        assert user["role"] == "user" and user["content"]
        [answer] = row["completion"]
        assert answer["role"] == "assistant" and answer["content"]


def test_reference_copy_is_valid_json_and_compliant() -> None:
    """Each answer is the headline and body the served grammar lets the model write; the copy
    runs with the disclaimers the policy requires attached (the model never writes them), which
    the row records. That whole copy passes every rule, claims for the product included."""
    for kind, adapter_id in [("task", "creative"), ("brand", "acme"), ("brand", "globex")]:
        data = built(kind, adapter_id)
        for ex in data.train + data.eval:
            meta = ex.meta
            brand = brand_guide(meta["brand"]) if meta["brand"] else None
            policy = retailer_policy(meta["retailer"])
            answer = json.loads(ex.answer)
            assert set(answer) == {"headline", "body"}, ex.answer
            text = f"{answer['headline']} {answer['body']}"
            place, category = meta["placement"], meta["category"]
            assert meta["disclaimers"] == required_disclaimers(text, policy, place, category, brand)
            served = json.dumps(answer | {"disclaimers": meta["disclaimers"]})
            check = check_output(served, policy, place, category, brand, meta["product"])
            assert check.compliant, (served, check.violations)
        # The eval scores model answers the same way: every reference answer scores compliant.
        examples = data.train + data.eval
        scores = score_copy([ex.answer for ex in examples], examples)
        assert scores["compliance_rate"] == 1.0, (kind, adapter_id, scores)


def test_brand_copy_uses_approved_claims_and_never_banned_words() -> None:
    data = built("brand", "globex")
    guide = load_brand_guide("globex")
    claims = [c.text.lower() for c in guide.allowed_claims]
    answers = [ex.answer.lower() for ex in data.train]
    could = made = 0
    for ex, answer in zip(data.train, answers, strict=True):
        product, category = ex.meta["product"], ex.meta["category"]
        approved = {c.text.lower() for c in guide.claims_for_product(product, category)}
        used = {c for c in claims if c in answer}
        assert used <= approved, (product, used)  # only claims approved for that product
        could += bool(approved)
        made += bool(used)
    # Measured: 84 of 216 answers are for products with approved claims; all 84 use one (brand
    # rows lead with a claim where the product has one; a random angle put one in 37).
    assert could and made > could // 2
    assert not any(guide.banned_in(a) for a in answers)


def test_compliance_checker_names_each_violation() -> None:
    gamma = load_retailer_policy("gamma")
    globex = load_brand_guide("globex")
    copy = AdCopy(
        headline="A miracle moisturizer for everyone",  # 34 > 20 on in-store screens
        body="Instant glow! Now 20% off.",
        disclaimers=[],
    ).model_dump()
    found = check_copy(copy, gamma, "instore_screen", "health_beauty", globex)
    assert "headline_too_long" in found
    assert "prohibited:miracle" in found
    assert "too_many_exclamation_marks" in found
    assert "brand_banned:instant" in found
    assert any(v.startswith("missing_disclaimer:Prices valid in Gamma") for v in found)
    assert check_output("Sure! {not json", gamma, "instore_screen").violations == ["invalid_json"]
    fixed = {
        "headline": "Globex moisturizer",
        "body": "Fast-acting hydration. Now 20% off.",
        "disclaimers": [gamma.disclaimers.get("price_validity").text],  # type: ignore[union-attr]
    }
    assert check_copy(fixed, gamma, "instore_screen", "health_beauty", globex) == []


def test_policy_answers_come_from_the_front_matter_and_the_section_states_them() -> None:
    gamma = load_retailer_policy("gamma")
    facts = {q: f for f in policy_facts(gamma) for q in f.questions}
    fact = facts["What is the maximum headline length for sponsored search ads at Gamma Pharmacy?"]
    assert fact.answer == "30 characters"
    assert fact.source.endswith("creative_specs.md#sponsored-search-ads")
    assert "30 characters" in section_text(fact.source)
    floor = facts["What is the minimum test length at Gamma Pharmacy?"]
    assert floor.answer == "28 days" and "28 days" in section_text(floor.source)
    assert normalize_answer(' "30 characters." \nmore') == "30 characters"


# --- training on the tiny random Llama ------------------------------------------------------


def _small(data: AdapterDataset, train: int = 8, held: int = 3) -> AdapterDataset:
    return replace(data, train=data.train[:train], eval=data.eval[:held])


def _options(tmp: Path, **kw: object) -> TrainOptions:
    # 384: the served copy prompts are 241-303 tokens (`require_room_for_answers`).
    base = {"steps": 2, "batch_size": 2, "max_length": 384, "save_every": 1, "base": TINY}
    return TrainOptions(out=tmp / "adapters", checkpoints=tmp / "ckpt", **(base | kw))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_creative(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2-step SFT creative adapter on the tiny base: (tmp root, adapter folder)."""
    tmp = tmp_path_factory.mktemp("train")
    data = _small(built("task", "creative"))
    result = train_sft("task", "creative", _options(tmp), base=tiny_base(), dataset=data)
    return tmp, result.path


def test_sft_writes_a_loadable_adapter_with_metadata(tiny_creative: tuple[Path, Path]) -> None:
    from peft import PeftModel

    tmp, folder = tiny_creative
    assert {p.name for p in folder.iterdir()} == {
        "adapter_config.json",
        "adapter_model.safetensors",
        "metadata.json",
        "versions.json",  # the version manifest (`adapters.versions`)
    }
    meta = AdapterMetadata.read(folder)
    # A first training run is the current version, v1, and the manifest says so and how.
    manifest = json.loads((folder / "versions.json").read_text())
    assert manifest["current"] == "v1" == meta.version and manifest["history"] == []
    [record] = manifest["versions"]
    assert (record["version"], record["status"], record["method"]) == ("v1", "current", "sft")
    assert record["command"] == meta.training.command
    assert (meta.kind, meta.id, meta.owner_tenant) == ("task", "creative", None)
    assert meta.base_model == TINY_BASE_MODEL
    assert meta.base_fingerprint == tiny_fingerprint(0)
    assert meta.peft.r == 16 and meta.peft.alpha == 32
    card = meta.training.model_dump()
    assert card["steps"] == 2 and card["rows"] == 11 and card["splits"] == {"train": 8, "eval": 3}
    assert card["command"].startswith("rmn train sft --kind task --name creative --steps 2")
    assert card["seconds"] > 0 and card["final_loss"] is not None
    # The registry accepts the folder, and PEFT loads it onto the tiny base.
    entry = AdapterRegistry(tmp / "adapters").get("task", "creative")
    assert entry.path == folder
    model, _ = tiny_base().load(__import__("torch").float32)
    tuned = PeftModel.from_pretrained(model, str(folder))
    lora_b = [p for n, p in tuned.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)  # it trained


def test_a_max_length_that_leaves_no_room_for_the_answer_is_refused(tmp_path: Path) -> None:
    from adapters.training.sft import TrainingDataError

    data = _small(built("brand", "acme"))
    with pytest.raises(TrainingDataError, match="8 of 8 training prompts are 128 tokens") as err:
        options = _options(tmp_path, max_length=128)
        train_sft("brand", "acme", options, base=tiny_base(), dataset=data)
    assert err.value.kind == "training_data"
    assert not (tmp_path / "adapters" / "brand" / "acme").exists()  # nothing was written


def test_resume_continues_from_the_last_checkpoint(tmp_path: Path) -> None:
    from adapters.training.artifacts import NoCheckpointError, last_checkpoint

    data = _small(built("retailer", "delta"))
    with pytest.raises(NoCheckpointError):
        train_sft("retailer", "delta", _options(tmp_path, resume=True), base=tiny_base())
    train_sft("retailer", "delta", _options(tmp_path, steps=2), base=tiny_base(), dataset=data)
    found = last_checkpoint(tmp_path / "ckpt" / "retailer-delta-sft")
    assert found is not None and found.name == "checkpoint-2"
    resumed = train_sft(
        "retailer",
        "delta",
        _options(tmp_path, steps=3, resume=True),
        base=tiny_base(),
        dataset=data,
    )
    card = resumed.metadata.training.model_dump()
    assert card["resumed_from"] == "checkpoint-2" and card["steps"] == 3
    state = json.loads(
        (tmp_path / "ckpt/retailer-delta-sft/checkpoint-3/trainer_state.json").read_text()
    )
    assert state["global_step"] == 3


def test_dpo_one_step_on_top_of_the_sft_adapter(tiny_creative: tuple[Path, Path]) -> None:
    from adapters.training.dpo import train_dpo

    tmp, folder = tiny_creative
    data = _small(built("task", "creative"))
    pairs = data.preference_pairs()
    assert pairs and all(p.chosen != p.rejected for p in pairs)
    result = train_dpo(
        "task", "creative", folder, _options(tmp, steps=1, mine=2), base=tiny_base(), dataset=data
    )
    card = result.metadata.training.model_dump()
    assert card["method"] == "dpo" and 0 <= card["mined_pairs"] <= 2
    synthetic = min(len(pairs), 16) if card["mined_pairs"] else len(pairs)
    assert card["preference_pairs"] == synthetic + card["mined_pairs"]
    assert "--mine 2" in card["command"]
    assert card["from_adapter"]["method"] == "sft"
    assert result.metadata.peft.r == 16  # DPO keeps the SFT adapter's shape
    assert not (result.path / "ref").exists()  # TRL's frozen reference copy is not shipped
    AdapterRegistry(tmp / "adapters").get("task", "creative")


@pytest.mark.skipif(cuda_available(), reason="the error is for machines without CUDA")
def test_qlora_without_cuda_is_a_clear_error(tmp_path: Path) -> None:
    from cli.train import app

    args = ["sft", "--kind", "task", "--name", "creative", "--qlora", "--json"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    error = json.loads(result.output)["error"]
    assert error["type"] == "qlora_needs_cuda" and "CUDA" in error["message"]
    assert not any(tmp_path.iterdir())


def test_unknown_adapter_is_a_clear_error() -> None:
    from cli.train import app

    result = runner.invoke(app, ["sft", "--kind", "brand", "--name", "nobody", "--json"])
    assert result.exit_code == 2
    assert json.loads(result.output)["error"]["type"] == "unknown_adapter"


def test_eval_harness_shape_on_the_tiny_model(tiny_creative: tuple[Path, Path]) -> None:
    tmp, folder = tiny_creative
    result = evaluate_adapter(folder, limit=3, max_new_tokens=6, base=tiny_base())
    assert result["items"] == 3 and result["primary_metric"] == "compliance_rate"
    for side in ("base", "adapter_scores"):
        scores = result[side]
        for key in ("compliance_rate", "json_valid"):
            assert 0.0 <= scores[key] <= 1.0
    written = AdapterMetadata.read(folder).eval
    assert set(written) >= {"base", "adapter", "primary_metric", "items"}
    assert written["adapter"]["compliance_rate"] == round(
        result["adapter_scores"]["compliance_rate"], 4
    )


def test_eval_cli_json(tiny_creative: tuple[Path, Path]) -> None:
    from cli.eval import eval_adapter

    app = __import__("typer").Typer()
    app.command()(eval_adapter)
    _, folder = tiny_creative
    args = ["--adapter", str(folder), "--limit", "2", "--max-new-tokens", "4", "--no-write"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["items"] == 2 and 0 <= payload["base"]["json_valid"] <= 1


# --- the shipped adapters -------------------------------------------------------------------


def test_brand_adapter_trains_on_top_of_the_frozen_creative_adapter(
    tiny_creative: tuple[Path, Path],
) -> None:
    from safetensors.torch import load_file

    tmp, creative = tiny_creative
    before = load_file(str(creative / "adapter_model.safetensors"))
    data = _small(built("brand", "acme"))
    options = _options(tmp, stack_on="task/creative")
    result = train_sft("brand", "acme", options, base=tiny_base(), dataset=data)
    card = result.metadata.training.model_dump()
    assert card["stacked_on"]["adapter"] == "task/creative"
    assert "--stack-on task/creative" in card["command"]
    assert result.metadata.owner_tenant == "acme"
    # The creative adapter stayed frozen; the brand adapter is a separate, trained update.
    after = load_file(str(creative / "adapter_model.safetensors"))
    assert all(bool((before[k] == after[k]).all()) for k in before)
    brand = load_file(str(result.path / "adapter_model.safetensors"))
    assert set(brand) == set(before)
    assert any(not bool((brand[k] == before[k]).all()) for k in brand if "lora_B" in k)
    scores = evaluate_adapter(result.path, limit=2, max_new_tokens=4, base=tiny_base())
    assert scores["stacked_on"]["adapter"] == "task/creative"
    written = AdapterMetadata.read(result.path).eval
    assert written["stacked_on"] == "task/creative" and "stack_only" in written


def test_dpo_of_a_stacked_brand_adapter_stays_on_its_stack(
    tiny_creative: tuple[Path, Path], tmp_path: Path
) -> None:
    """Bug: `rmn train dpo --kind brand` loaded the brand adapter on the bare base, so it was
    tuned without task/creative beneath and its card lost `stacked_on` (the runtime would then
    have composed it as if trained alone). Now it is tuned on top of the installed creative
    adapter and records it; one trained on another creative adapter is refused."""
    import shutil

    from safetensors.torch import load_file

    from adapters.stacking import stacked_as_trained
    from adapters.training.dpo import StackChangedError, train_dpo

    _, creative = tiny_creative
    shutil.copytree(creative, tmp_path / "adapters/task/creative")
    creative = tmp_path / "adapters/task/creative"
    data = _small(built("brand", "acme"))
    options = _options(tmp_path, stack_on="task/creative")
    sft = train_sft("brand", "acme", options, base=tiny_base(), dataset=data)
    result = train_dpo(
        "brand", "acme", sft.path, _options(tmp_path, steps=1), base=tiny_base(), dataset=data
    )
    card = result.metadata.training.model_dump()
    assert card["method"] == "dpo" and card["stacked_on"]["adapter"] == "task/creative"
    assert stacked_as_trained(card, "task/creative", creative)
    before = load_file(str(sft.path / "adapter_model.safetensors"))
    after = load_file(str(result.path / "adapter_model.safetensors"))
    assert set(after) == set(before)  # the brand adapter's shape, not the merged creative one

    meta = AdapterMetadata.read(result.path)
    stale = meta.training.model_dump()
    stale["stacked_on"]["weights_sha256"] = "0" * 64
    meta.model_copy(update={"training": type(meta.training).model_validate(stale)}).write(
        result.path
    )
    with pytest.raises(StackChangedError, match="another task/creative"):
        train_dpo("brand", "acme", result.path, _options(tmp_path, steps=1), base=tiny_base())


@pytest.mark.parametrize("brand", ["acme", "globex", "initech", "brand_x"])
def test_brand_rows_have_the_shape_the_served_grammar_decodes(brand: str) -> None:
    """Brand rows used to put the claim in the headline over a body of other benefits, which
    the served grammar (body forced to open on the angle, one sentence) can never decode;
    acme's adapter trained on them wrote its 31-character claim as a headline limited to 25
    or 30. Every row now opens its one body sentence on the angle the prompt asks for."""
    from tools.creative.facts import MODEL_SENTENCES, CopyFacts

    data = built("brand", brand)
    for example in data.train[:40] + data.eval[:10]:
        meta, answer = example.meta, json.loads(example.answer)
        facts = CopyFacts(
            load_retailer_policy(meta["retailer"]), meta["placement"], meta["product"],
            meta["category"], load_brand_guide(brand),
        )  # fmt: skip
        angle = example.user.split("Angle: ", 1)[1].splitlines()[0]
        opening = dict(zip(facts.angles(), facts.openings(), strict=True))[angle]
        assert opening and answer["body"].startswith(opening), (angle, answer)
        assert len(re.findall(r"[.!?](?:\s|$)", answer["body"])) == 1  # "99.9%" is one
        grammar = facts.grammar.with_opening(opening, MODEL_SENTENCES)
        assert grammar.accepts(answer["headline"], answer["body"])
