"""The adapter registry and runtime: discovery and metadata checks, base-fingerprint and tenant
refusals, exact `cat` composition, the LRU caches, batching under concurrent calls, and
constrained JSON with repair and fallback. Most tests use a tiny random Llama with SmolLM2's
tokenizer; the last two load the real base model."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Literal

import pytest
import torch
from pydantic import BaseModel, Field, field_validator

from adapters import prompts
from adapters.base import QuantizationUnavailableError
from adapters.composition import merged_copy
from adapters.registry import (
    AdapterAccessError,
    AdapterFingerprintError,
    AdapterMetadata,
    AdapterMetadataError,
    AdapterNotFoundError,
    AdapterRegistry,
    AdapterSet,
)
from adapters.runtime import Request, Runtime, RuntimeConfigError
from adapters.structured import StructuredOutputError
from adapters.testing import (
    tiny_fingerprint,
    tiny_llama,
    tiny_runtime,
    write_random_adapter,
    write_standard_adapters,
)
from tools.errors import AccessDeniedError

TRIPLES = [
    AdapterSet("alpha", "acme", "planning"),
    AdapterSet("beta", "globex", "creative"),
    AdapterSet("gamma", "initech", "planning"),
    AdapterSet("delta", "brand_x", "creative"),
]
TENANTS = ["acme", "globex", "initech", "brand_x"]
PROMPTS = [
    "Plan a March campaign for Acme coffee on alpha with $10,000.",
    "Write a headline for Globex shoes.",
    "Split $2,500 between gamma search and display.",
    "Summarise the brief in one line.",
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, _ = tiny_llama()
    return write_standard_adapters(
        tmp_path_factory.mktemp("adapters"), model, base_fingerprint=tiny_fingerprint()
    )


@pytest.fixture(scope="module")
def lora_rt(root: Path) -> Runtime:
    return tiny_runtime(root, decode="lora", cache_size=4)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# -- registry -------------------------------------------------------------------------------


def test_discovery_reads_every_adapter_and_its_metadata(root: Path) -> None:
    registry = AdapterRegistry(root)
    names = sorted(e.name for e in registry.entries())
    assert names == sorted(
        [f"retailer/{r}" for r in ("alpha", "beta", "gamma", "delta")]
        + [f"brand/{b}" for b in TENANTS]
        + ["task/planning", "task/creative"]
    )
    assert registry.invalid == {}
    acme = registry.get("brand", "acme").metadata
    assert acme.owner_tenant == "acme" and acme.base_fingerprint == tiny_fingerprint()
    assert acme.peft.r == 8 and "q_proj" in acme.peft.target_modules
    assert registry.get("retailer", "alpha").metadata.owner_tenant is None
    assert [e.name for e in registry.entries("task")] == ["task/creative", "task/planning"]
    again = AdapterMetadata.model_validate_json(json.dumps(json.loads(acme.model_dump_json())))
    assert again == acme


def test_registry_root_follows_the_environment(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RMN_ADAPTERS_DIR", str(root))
    assert AdapterRegistry().root == root
    assert len(AdapterRegistry().entries()) == 10


def _break(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / "metadata.json").read_text())
    meta.update(changes)
    (folder / "metadata.json").write_text(json.dumps(meta))


def test_invalid_adapters_are_listed_with_reasons_and_refused(root: Path, tmp_path: Path) -> None:
    shutil.copytree(root, tmp_path / "a")
    base = tmp_path / "a"
    _break(base / "brand" / "acme", owner_tenant=None)
    _break(base / "retailer" / "beta", owner_tenant="acme")
    _break(base / "retailer" / "gamma", id="delta")
    _break(base / "task" / "creative", peft={"r": 4, "alpha": 16, "target_modules": ["q_proj"]})
    (base / "retailer" / "delta" / "adapter_model.safetensors").unlink()
    (base / "brand" / "globex" / "metadata.json").write_text("{not json")
    registry = AdapterRegistry(base)
    invalid = registry.invalid
    assert "brand adapter needs owner_tenant" in invalid["brand/acme"]
    assert "owner_tenant is for brand adapters only" in invalid["retailer/beta"]
    assert "folder is retailer/gamma" in invalid["retailer/gamma"]
    assert "disagrees with" in invalid["task/creative"]
    assert "adapter_model.safetensors is missing" in invalid["retailer/delta"]
    assert "metadata.json is invalid" in invalid["brand/globex"]
    # The healthy ones are unaffected.
    assert sorted(e.name for e in registry.entries()) == [
        "brand/brand_x",
        "brand/initech",
        "retailer/alpha",
        "task/planning",
    ]
    with pytest.raises(AdapterMetadataError, match="needs owner_tenant"):
        registry.get("brand", "acme")


def test_unknown_adapter_lists_what_exists(root: Path) -> None:
    with pytest.raises(AdapterNotFoundError, match="available: alpha, beta, delta, gamma") as err:
        AdapterRegistry(root).get("retailer", "omega")
    assert err.value.detail["available"] == ["alpha", "beta", "delta", "gamma"]


def test_adapter_for_another_base_is_refused_naming_both_fingerprints(tmp_path: Path) -> None:
    model, _ = tiny_llama()
    write_random_adapter(
        tmp_path, "retailer", "alpha", model, base_fingerprint="sha256:0ther", seed=1
    )
    rt = tiny_runtime(tmp_path, decode="lora")
    with pytest.raises(AdapterFingerprintError) as err:
        rt.generate(user("hi"), AdapterSet(retailer="alpha"), max_new_tokens=2)
    message = err.value.message
    assert "sha256:0ther" in message and tiny_fingerprint() in message
    assert err.value.to_dict()["type"] == "adapter_base_mismatch"
    assert rt.stats()["adapters_loaded"] == []  # refused before any weights were read


def test_brand_adapter_serves_its_owner_only(lora_rt: Runtime) -> None:
    acme = AdapterSet(retailer="alpha", brand="acme")
    with pytest.raises(AdapterAccessError) as err:
        lora_rt.generate(user("hi"), acme, tenant="globex", max_new_tokens=2)
    assert "brand/acme belongs to tenant 'acme'" in err.value.message
    assert "tenant 'globex' may not use it" in err.value.message
    assert isinstance(err.value, AccessDeniedError)
    assert err.value.to_dict()["type"] == "adapter_access_denied"
    with pytest.raises(AdapterAccessError, match="a call without a tenant may not use it"):
        lora_rt.generate(user("hi"), acme, tenant=None, max_new_tokens=2)
    # Retailer and task adapters are shared; the owner gets its brand adapter.
    assert (
        lora_rt.generate(
            user("hi"), AdapterSet("beta", None, "creative"), "globex", max_new_tokens=2
        ).tokens
        == 2
    )
    assert lora_rt.generate(user("hi"), acme, "acme", max_new_tokens=2).adapters_active == [
        "retailer/alpha",
        "brand/acme",
    ]


# -- composition ----------------------------------------------------------------------------


def _logits(model: object, ids: torch.Tensor, **kw: object) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=ids, **kw).logits  # type: ignore[operator]


def test_cat_composition_equals_the_adapters_active_together(root: Path) -> None:
    rt = tiny_runtime(root, decode="lora")
    info = rt.prepare(TRIPLES[0], "acme")
    assert info["composition"] == "cat"
    peft = rt.model
    # The composition's new modules are in eval mode too: the shipped adapters' 0.05 LoRA
    # dropout once stayed on for `cat`, so identical calls differed (the tiny ones have none).
    assert not any(m.training for m in peft.modules())
    cat_name = next(n for n in peft.peft_config if n.startswith("cat--"))
    ids = torch.tensor([rt.tokenizer("Plan a campaign for acme on alpha")["input_ids"]])
    composed = _logits(peft, ids, adapter_names=[cat_name])
    peft.base_model.set_adapter(["retailer-alpha", "brand-acme", "task-planning"])
    together = _logits(peft, ids)
    with peft.disable_adapter():
        base = _logits(peft, ids)
    assert (composed - together).abs().max().item() < 1e-4
    assert (composed - base).abs().max().item() > 1e-2  # the adapters do change the model
    single = _logits(peft, ids, adapter_names=["retailer-alpha"])
    assert (composed - single).abs().max().item() > 1e-2
    merged = merged_copy(peft, ["retailer-alpha", "brand-acme", "task-planning"], torch.float32)
    assert (_logits(merged, ids) - together).abs().max().item() < 1e-4
    assert merged.lm_head.weight.data_ptr() == merged.model.embed_tokens.weight.data_ptr()


def test_composition_cache_evicts_least_recently_used(root: Path) -> None:
    rt = tiny_runtime(root, decode="lora", cache_size=2)
    for triple, tenant in zip(TRIPLES[:2], TENANTS, strict=False):
        rt.prepare(triple, tenant)
    rt.prepare(TRIPLES[0], "acme")  # touch: triple 1 is now the oldest
    rt.prepare(TRIPLES[2], "initech")
    stats = rt.stats()
    assert stats["composition_builds"] == 3 and stats["composition_evictions"] == 1
    assert stats["compositions"] == [
        ["retailer-alpha", "brand-acme", "task-planning"],
        ["retailer-gamma", "brand-initech", "task-planning"],
    ]
    cats = [n for n in rt.model.peft_config if n.startswith("cat--")]
    assert len(cats) == 2 and not any("globex" in n for n in cats)  # its weights are freed
    assert rt.prepare(AdapterSet(task="creative"))["composition"] == "single"
    assert rt.prepare(AdapterSet())["composition"] == "base"
    assert rt.stats()["composition_builds"] == 3


def test_merged_path_matches_lora_path_and_caches_per_set(root: Path) -> None:
    lora = tiny_runtime(root, decode="lora")
    merged = tiny_runtime(root, decode="merged", merged_dtype=torch.float32, merged_cache_size=2)
    for triple, tenant, text in zip(TRIPLES[:3], TENANTS, PROMPTS, strict=False):
        a = lora.generate(user(text), triple, tenant, max_new_tokens=12)
        b = merged.generate(user(text), triple, tenant, max_new_tokens=12)
        assert a.text == b.text
        assert (a.composition, b.composition) == ("cat", "merged")
        assert b.decode == "merged/float32"
    stats = merged.stats()
    assert stats["merged_builds"] == 3 and stats["merged_evictions"] == 1
    assert len(stats["merged_models"]) == 2


# -- batching and threads -------------------------------------------------------------------


def _requests() -> list[Request]:
    reqs = [
        Request(user(p), t, tenant, max_new_tokens=10)
        for p, t, tenant in zip(PROMPTS, TRIPLES, TENANTS, strict=True)
    ]
    reqs.append(Request(user(PROMPTS[0]), AdapterSet(), None, max_new_tokens=6))
    reqs.append(Request(user(PROMPTS[1]), AdapterSet(task="creative"), None, max_new_tokens=8))
    return reqs


def test_batched_rows_match_one_by_one(root: Path) -> None:
    rt = tiny_runtime(root, decode="lora", max_batch=8, cache_size=4)
    reqs = _requests()
    alone = [rt.generate_many([r])[0] for r in reqs]
    together = rt.generate_many(reqs)
    assert [g.text for g in together] == [g.text for g in alone]
    assert [g.batch_size for g in together] == [len(reqs)] * len(reqs)
    assert [g.tokens for g in together] == [10, 10, 10, 10, 6, 8]  # each row's own limit
    assert {g.finish_reason for g in together} == {"length"}
    assert [g.composition for g in together] == ["cat"] * 4 + ["base", "single"]


def test_concurrent_calls_give_the_sequential_outputs(root: Path) -> None:
    reqs = _requests() * 2
    sequential = tiny_runtime(root, decode="lora")
    expected = [sequential.generate_many([r])[0].text for r in reqs]
    rt = tiny_runtime(root, decode="lora", cache_size=2, max_batch=4, batch_window_s=0.05)
    results: dict[int, str] = {}
    sizes: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(reqs))

    def call(i: int) -> None:
        try:
            start.wait()
            g = rt.generate_many([reqs[i]])[0]
            results[i] = g.text
            sizes.append(g.batch_size)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(reqs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert [results[i] for i in range(len(reqs))] == expected
    assert max(sizes) > 1  # calls did share batches
    assert len(rt.stats()["compositions"]) <= 2  # a batch never outgrows the cache


def test_merged_path_batches_rows_of_one_adapter_set(root: Path) -> None:
    rt = tiny_runtime(root, decode="merged", merged_dtype=torch.float32, max_batch=4)
    reqs = [Request(user(p), TRIPLES[0], "acme", max_new_tokens=5) for p in PROMPTS[:3]]
    reqs.append(Request(user(PROMPTS[3]), TRIPLES[1], "globex", max_new_tokens=5))
    out = rt.generate_many(reqs)
    assert [g.batch_size for g in out] == [3, 3, 3, 1]


# -- structured output ----------------------------------------------------------------------


class Line(BaseModel):
    retailer: Literal["alpha", "beta", "gamma", "delta"]
    budget: int = Field(ge=0, le=100_000)


class Plan(BaseModel):
    objective: Literal["awareness", "sales", "traffic"]
    lines: list[Line] = Field(min_length=1, max_length=3)
    always_on: bool
    headline: str = Field(max_length=24)


def test_constrained_decoding_always_yields_schema_valid_json(lora_rt: Runtime) -> None:
    reqs = [
        Request(user(p), t, tenant, max_new_tokens=120, json_schema=Plan)
        for p, t, tenant in zip(PROMPTS, TRIPLES, TENANTS, strict=True)
    ]
    reqs += [Request(user(p), AdapterSet(), None, 120, Plan) for p in PROMPTS]
    for gen in lora_rt.generate_many(reqs):
        assert isinstance(gen.parsed, Plan), gen.text
        assert Plan.model_validate_json(gen.text) == gen.parsed
        assert not gen.repaired and not gen.fallback and gen.error is None
        assert gen.finish_reason == "stop"
        assert " " not in gen.text.split('"headline"')[0]  # compact JSON, no whitespace


def _passes(rt: Runtime) -> list[int]:
    """A counter of the model's forward passes (the LoRA-wrapped model's outermost call)."""
    calls = [0]
    rt._lora.model.register_forward_hook(  # noqa: SLF001 - the model the LoRA path decodes on
        lambda *_: calls.__setitem__(0, calls[0] + 1)
    )
    return calls


def test_forced_tokens_share_a_pass_and_the_answers_hold(root: Path) -> None:
    """Fast-forward (`adapters.decoding.ForwardLoop`): tokens the grammar forces (the JSON
    keys and punctuation here) ride in the next pass instead of one pass each; answers stay
    schema-valid; a batch whose rows force different runs (left-padded inside each pass) gives
    each row's answer alone; and the plain `generate` path still serves the same schema."""
    fast = tiny_runtime(root, decode="lora", max_batch=8, cache_size=4)
    slow = tiny_runtime(root, decode="lora", max_batch=8, cache_size=4, fast_forward=False)
    reqs = [
        Request(user(p), t, tenant, max_new_tokens=120, json_schema=Plan)
        for p, t, tenant in zip(PROMPTS, TRIPLES, TENANTS, strict=True)
    ]
    passes = _passes(fast)
    alone = []
    for r in reqs:
        before = passes[0]
        [g] = fast.generate_many([r])
        assert isinstance(g.parsed, Plan) and g.finish_reason == "stop", g.text
        # {"objective":"…","lines":[{"retailer":"…","budget":…}],"always_on":…,"headline":"…"}
        assert g.forced_tokens >= 10
        assert passes[0] - before <= g.tokens - g.forced_tokens + 1  # the prompt's pass too
        alone.append(g)
    together = fast.generate_many(reqs)
    assert [g.text for g in together] == [g.text for g in alone]
    assert [g.batch_size for g in together] == [len(reqs)] * len(reqs)
    for g in slow.generate_many(reqs):
        assert isinstance(g.parsed, Plan) and g.forced_tokens == 0


def test_worked_examples_are_computed_once_per_model_and_the_answers_hold(root: Path) -> None:
    """`adapters.prefixes.PrefixCache`: a chat's turns before its last user message (a system
    message, an example asked and answered) are kept computed per model; a later call with the
    same turns computes only its own. The answers are those of each prompt computed whole,
    alone and in a batch beside a row without examples; a repair turn keeps nothing."""
    from adapters.structured import SentenceGrammar

    grammar = SentenceGrammar(min_words=3, max_words=8)
    example = [
        {"role": "system", "content": "You explain retail media plans in short words. " * 12},
        {"role": "user", "content": "Why does Shop A get most of the budget? " * 8},
        {"role": "assistant", "content": "Its curves still pay back each extra dollar."},
    ]
    reqs = [Request([*example, *user(p)], AdapterSet(), None, 30, grammar) for p in PROMPTS[:3]]
    plain = Request(user(PROMPTS[3]), AdapterSet(), None, 30, grammar)
    whole = tiny_runtime(root, decode="merged", merged_dtype=torch.float32)
    whole._decoder.prefixes = None  # noqa: SLF001 - every prompt computed whole
    expected = [whole.generate_many([r])[0].text for r in [*reqs, plain]]
    kept = tiny_runtime(root, decode="merged", merged_dtype=torch.float32)
    jobs = [kept._job(kept._plan(r), r) for r in [*reqs, plain]]  # noqa: SLF001
    assert jobs[0].prefix_len >= 128 and jobs[-1].prefix_len == 0
    assert jobs[0].prompt[: jobs[0].prefix_len] == jobs[1].prompt[: jobs[1].prefix_len]
    alone = [kept.generate_many([r])[0] for r in reqs]
    assert [g.text for g in alone] == expected[:3]
    assert kept.stats()["prefix_misses"] == 1 and kept.stats()["prefix_hits"] == 2
    assert alone[0].prompt_tokens == len(jobs[0].prompt)  # the whole prompt, still counted
    together = kept.generate_many([*reqs, plain])
    assert [g.text for g in together] == expected
    assert kept.stats()["prefix_hits"] == 5
    from adapters.runtime import Generation

    bad = Generation(text="{", error="invalid JSON")
    repair = kept._job(kept._plan(reqs[0]), reqs[0], repair_of=bad)  # noqa: SLF001
    assert repair.prefix_len == 0


def test_an_answer_the_grammar_fixes_costs_one_pass(root: Path) -> None:
    class Fixed(BaseModel):
        status: Literal["approved_for_the_whole_flight"]

    rt = tiny_runtime(root, decode="lora")
    passes = _passes(rt)
    [g] = rt.generate_many([Request(user("Status?"), AdapterSet(), None, 60, Fixed)])
    assert g.parsed == Fixed(status="approved_for_the_whole_flight")
    assert g.forced_tokens == g.tokens > 5 and passes[0] == 1  # the prompt's pass only
    assert g.finish_reason == "stop"


def test_each_answer_records_how_far_the_grammar_bent_the_model(root: Path) -> None:
    """`chosen_logprob`: the mean log-probability of the tokens the model chose, under its own
    scores before the grammar's mask. A grammar that forces everything leaves nothing chosen
    (None); one that narrows every choice to a few words the model does not favour costs
    more than free-ish words; the plain `generate` path does not measure it."""
    from adapters.structured import SentenceGrammar

    class Fixed(BaseModel):
        status: Literal["approved_for_the_whole_flight"]

    rt = tiny_runtime(root, decode="lora")
    [fixed] = rt.generate_many([Request(user("Status?"), AdapterSet(), None, 60, Fixed)])
    assert fixed.chosen_logprob is None  # every token forced
    narrow = SentenceGrammar(min_words=4, max_words=6, lexicon=frozenset({"zebra", "quartz"}))
    wide = SentenceGrammar(min_words=4, max_words=6)
    got = {}
    for name, grammar in (("narrow", narrow), ("wide", wide)):
        [g] = rt.generate_many([Request(user("Why?"), AdapterSet(), None, 40, grammar)])
        assert g.chosen_logprob is not None and g.tokens > g.forced_tokens
        assert -50.0 <= g.chosen_logprob <= 0.0
        assert g.metadata()["chosen_logprob"] == g.chosen_logprob
        got[name] = g.chosen_logprob
    assert got["narrow"] < got["wide"]
    slow = tiny_runtime(root, decode="lora", fast_forward=False)
    [g] = slow.generate_many([Request(user("Why?"), AdapterSet(), None, 40, wide)])
    assert g.chosen_logprob is None
    # No NaN or infinity reaches a record (a model that scored a token -inf or NaN).
    from adapters.decoding import LOGPROB_FLOOR, _finite_logprob

    assert [_finite_logprob(v) for v in (float("nan"), float("-inf"), -1.5)] == [
        LOGPROB_FLOOR,
        LOGPROB_FLOOR,
        -1.5,
    ]


def test_json_schema_dict_gives_a_validated_dict(lora_rt: Runtime) -> None:
    schema = {
        "type": "object",
        "properties": {
            "retailer": {"enum": ["alpha", "beta"]},
            "share": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["retailer", "share"],
    }
    gen = lora_rt.generate(user(PROMPTS[2]), max_new_tokens=40, json_schema=schema)
    assert isinstance(gen.parsed, dict) and set(gen.parsed) == {"retailer", "share"}
    assert gen.parsed["retailer"] in ("alpha", "beta") and 0 <= gen.parsed["share"] <= 1


class Choice(BaseModel):
    retailer: Literal["alpha", "beta", "gamma", "delta"]


def test_validation_failure_gets_one_repair_turn(lora_rt: Runtime) -> None:
    seen: list[str] = []

    class Picky(Choice):
        @field_validator("retailer")
        @classmethod
        def not_first_time(cls, value: str) -> str:
            seen.append(value)
            if len(seen) == 1:
                raise ValueError("pick the retailer named in the brief")
            return value

    gen = lora_rt.generate(user(PROMPTS[0]), max_new_tokens=20, json_schema=Picky)
    assert gen.repaired and not gen.fallback and gen.error is None
    assert isinstance(gen.parsed, Picky) and len(seen) == 2
    once = lora_rt.generate(user(PROMPTS[0]), max_new_tokens=20, json_schema=Choice)
    assert not once.repaired and gen.tokens > once.tokens  # both attempts are counted


def test_second_failure_is_a_recorded_fallback(lora_rt: Runtime) -> None:
    class Never(Choice):
        @field_validator("retailer")
        @classmethod
        def refuse(cls, value: str) -> str:
            raise ValueError("no retailer is acceptable")

    gen = lora_rt.generate(user(PROMPTS[0]), max_new_tokens=20, json_schema=Never)
    assert gen.fallback and not gen.repaired and gen.parsed is None
    assert "no retailer is acceptable" in (gen.error or "")
    with pytest.raises(StructuredOutputError, match="after a repair turn") as err:
        lora_rt.generate(user(PROMPTS[0]), max_new_tokens=20, json_schema=Never, on_invalid="raise")
    assert err.value.generation is not None and err.value.generation.fallback


def test_cut_off_json_falls_back_with_the_reason(lora_rt: Runtime) -> None:
    gen = lora_rt.generate(user(PROMPTS[0]), max_new_tokens=3, json_schema=Plan)
    assert gen.fallback and gen.finish_reason == "length"
    assert "stopped before the JSON was complete" in (gen.error or "")


# -- prompts and configuration --------------------------------------------------------------


def test_prompt_uses_the_shared_task_system_message(lora_rt: Runtime) -> None:
    text = lora_rt.render_prompt(user("hi"), AdapterSet(task="creative"))
    assert prompts.SYSTEM_MESSAGES["creative"] in text and "SmolLM" not in text
    assert prompts.DEFAULT_SYSTEM in lora_rt.render_prompt(user("hi"))
    own = [{"role": "system", "content": "Be terse."}, *user("hi")]
    assert "Be terse." in lora_rt.render_prompt(own, AdapterSet(task="planning"))
    with_schema = lora_rt.render_prompt(user("hi"), json_schema=Choice)
    assert "Reply with only a JSON object" in with_schema and '"title"' not in with_schema
    laid_out = user("hi\n\n" + prompts.schema_instruction(Choice.model_json_schema()))
    assert lora_rt.render_prompt(laid_out, json_schema=Choice).count("Reply with only") == 1
    assert (
        prompts.chat_messages("planning", "q", "a")[0]["content"]
        == (prompts.SYSTEM_MESSAGES["planning"])
    )


def test_bad_calls_are_refused_with_reasons(lora_rt: Runtime) -> None:
    with pytest.raises(RuntimeConfigError, match="at least one message"):
        lora_rt.generate([])
    with pytest.raises(RuntimeConfigError, match="a message is"):
        lora_rt.generate([{"role": "tool", "content": "x"}])
    with pytest.raises(RuntimeConfigError, match="max_new_tokens"):
        lora_rt.generate(user("hi"), max_new_tokens=0)
    with pytest.raises(RuntimeConfigError, match="decode is"):
        tiny_runtime(Path(os.devnull), decode="fast")  # type: ignore[arg-type]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_4bit_needs_cuda() -> None:
    with pytest.raises(QuantizationUnavailableError, match="needs a CUDA GPU"):
        Runtime.load(load_in_4bit=True)


# -- the real base model --------------------------------------------------------------------


def test_the_number_of_merged_copies_kept_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`RMN_MERGED_COPIES` sets how many merged copies `Runtime.load` keeps (fewer on a small
    machine); a value that is not a whole number of 1 or more is refused, naming it."""
    from adapters import runtime as rt
    from adapters.testing import tiny_llama

    monkeypatch.delenv(rt.MERGED_COPIES_ENV, raising=False)
    assert rt.merged_copies_from_env() == rt.MERGED_CACHE_SIZE
    monkeypatch.setattr(rt, "load_base_model", lambda *a, **k: tiny_llama())
    monkeypatch.setenv(rt.MERGED_COPIES_ENV, " 4 ")
    assert rt.Runtime.load(root=Path("/nonexistent"))._merged.cache_size == 4
    for bad in ("0", "four", "-2", "2.5"):
        monkeypatch.setenv(rt.MERGED_COPIES_ENV, bad)
        with pytest.raises(rt.RuntimeConfigError, match="RMN_MERGED_COPIES must be a whole"):
            rt.merged_copies_from_env()
