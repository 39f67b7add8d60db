"""The real model, end to end of each language step that uses it: SmolLM2-135M with the
bundled adapters writes ad copy, the reflection's sentences, constrained JSON, and the shipped
adapters still beat the base on held-out items. Slow (the model loads and decodes on CPU), so
these live here and not with the unit tests of the same modules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
from creative_support import as_copy, review
from plan_support import make_plan
from pydantic import BaseModel

from adapters.base import (
    BASE_MODEL_ID,
    base_fingerprint,
    load_base_model,
)
from adapters.chat_model import RMNChatModel
from adapters.prompts import system_message
from adapters.registry import (
    KINDS,
    AdapterMetadata,
    AdapterRegistry,
    AdapterSet,
    adapters_root,
)
from adapters.runtime import Generation, Runtime
from adapters.testing import (
    write_random_adapter,
)
from adapters.training.evaluate import (
    PRIMARY_METRIC,
    evaluate_adapter,
    role_of,
)
from tools.brief.dataset import PLANNING_GATE_SETS
from tools.creative import (
    CopyRequest,
    write_copy,
)
from tools.creative.binding import stacked_on
from tools.plan.reflection import (
    confidence,
    reflect,
    signals_from,
)
from tools.plan.reflection_words import BIAS_CHECKS, OPENINGS, SENTENCE_TOKENS
from tools.plan.vocabulary import GENERAL_WORDS, unknown_words, words_of

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- ad copy from the bundled model and its adapters (test_creative.py) -------------


@pytest.fixture(scope="module")
def real_llm() -> RMNChatModel:
    from adapters.runtime import Runtime

    return RMNChatModel(runtime=Runtime.load())


def test_real_model_writes_compliant_copy_with_the_bundled_adapter(real_llm: RMNChatModel) -> None:
    request = CopyRequest(
        retailer_id="beta",
        brand_id="acme",
        product_name="Acme Honey Granola Bars",
        placement="sponsored_product",
        max_attempts=1,
    )
    result = write_copy(real_llm, request)
    assert len(result.variants) == 2 and result.attempts == 1
    written = [v for v in result.variants if v.path != "fallback"]
    assert written, result.failures  # the trained adapter writes usable copy on its own
    assert result.category == "snacks"
    for v in result.variants:
        assert review(as_copy(v), request, "sponsored_product", "snacks") == []
    registry = real_llm.runtime.registry
    installed = {e.name for e in registry.entries()}
    # brand/acme is composed only where it was trained on top of the installed task/creative
    # (the bundled one was trained alone: composing it wrote loops).
    brand = registry.get("brand", "acme") if "brand/acme" in installed else None
    creative = registry.get("task", "creative") if "task/creative" in installed else None
    stacked = brand is not None and creative is not None and stacked_on(brand, creative)
    names = ("retailer/beta", "brand/acme", "task/creative")
    expected = [
        registry.versioned_name(n)
        for n in names
        if n in installed and (n != "brand/acme" or stacked)
    ]
    for v in written:
        assert v.adapters == expected
        # What a rating of it stores: the exact conversation, the task's system message first
        # and the answer format last, as the model was given it.
        assert v.prompt is not None and v.prompt[0] == {
            "role": "system",
            "content": system_message("creative" if creative is not None else None),
        }
        assert "JSON" in v.prompt[-1]["content"]


# --- the reflection's sentences from the real model (test_reflection.py) --------------


def test_real_model_reflection(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapters.runtime import Runtime

    llm = RMNChatModel(runtime=Runtime.load())
    calls: list[Generation] = []
    generate = llm.runtime.generate_many

    def spy(*args: object, **kwargs: object) -> list[Generation]:
        gens = generate(*args, **kwargs)  # type: ignore[arg-type]
        calls.extend(gens)
        return gens

    monkeypatch.setattr(llm.runtime, "generate_many", spy)
    plan = make_plan()
    s = signals_from(plan, curve_cv=0.2, coverage=0.9, flags=0)
    memory = ["2025-01-02 t-0: approved $60,000 over alpha+beta"]
    r = reflect(plan, s, memory, llm, 0.8)
    # One call a sentence, in one batch, on the base model; the numbers stay computed.
    assert len(calls) == 3 and all(c.tokens <= 2 * SENTENCE_TOKENS for c in calls)
    assert all(c.adapters_active == [] for c in calls) and r.confidence == confidence(s)
    # Seeded and greedy, SmolLM2-135M ends each opening after a worked example of the same
    # kind. Without the example its words were words (the lexicon) but read poorly ("..., so
    # the plan is not very safe."); with it, on 78 held-out plans, 232 of 234 sentences were
    # the example's ending word for word. Another decode path (int8 on AVX2) may pick other
    # words, so what is asserted is what the grammar and the lexicon guarantee.
    template = reflect(plan, s, memory, None, 0.8)
    texts = [c.parsed for c in calls]
    assert all(isinstance(t, str) for t in texts)
    for text, opening, call in zip(texts, OPENINGS, calls, strict=True):
        assert isinstance(text, str) and text.startswith(opening)
        shown = [m["content"] for m in call.messages]
        shown += [template.risk_assessment.summary, template.bias_checkpoint]
        shown += template.alternate_frames
        assert unknown_words(text, shown) == []
        allowed = {w.lower() for w in GENERAL_WORDS | words_of(shown)}
        assert {w.lower() for w in re.findall(r"[A-Za-z]+", text)} <= allowed
    assert template.written_by == "template"
    if r.written_by == "llm":
        assert r.words_reason is None
        # the bias sentence is the model's, followed by the code's check (`BIAS_CHECKS`)
        check = BIAS_CHECKS["anchoring"]
        assert [r.risk_assessment.summary, r.bias_checkpoint, r.alternate_frames[0]] == [
            texts[0], f"{texts[1]} {check}", texts[2]]  # fmt: skip
    else:  # refused for what it says, never for a word that is not one
        assert r.words_reason is not None and "not English" not in r.words_reason


# --- the real base model in the runtime (test_runtime.py) --------------------------


@pytest.fixture(scope="module")
def real_rt(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    model, _ = load_base_model()
    root = tmp_path_factory.mktemp("real-adapters")
    for kind, name in (("retailer", "alpha"), ("task", "planning")):
        write_random_adapter(
            root,
            kind,
            name,
            model,
            base_fingerprint=base_fingerprint(),
            base_model="SmolLM2-135M-Instruct",
            r=4,
            seed=3,
            scale=0.01,
        )
    del model
    return Runtime.load(root=root, decode="merged")


def test_real_model_loads_with_its_fingerprint(real_rt: Runtime) -> None:
    assert real_rt.base_fingerprint == base_fingerprint()
    assert real_rt.model_name == "SmolLM2-135M-Instruct"
    assert real_rt.model.config.num_hidden_layers == 30


class RetailerPick(BaseModel):
    retailer: Literal["alpha", "beta", "gamma", "delta"]


def test_real_model_constrained_generation(real_rt: Runtime) -> None:
    brief = "Acme wants to run its spring coffee campaign on the retailer gamma. Which retailer?"
    gen = real_rt.generate(
        [{"role": "user", "content": brief}],
        AdapterSet(retailer="alpha", task="planning"),
        max_new_tokens=16,
        json_schema=RetailerPick,
    )
    assert isinstance(gen.parsed, RetailerPick) and not gen.fallback
    assert gen.text.startswith('{"retailer":"') and gen.composition == "merged"
    assert gen.adapters_active == ["retailer/alpha", "task/planning"]


# --- the shipped adapters, re-scored (test_training.py) -----------------------------


def _shipped() -> list[Path]:
    root = adapters_root()
    return sorted(p for kind in KINDS for p in (root / kind).glob("*") if p.is_dir())


# Re-scored with the real model through the eval harness with a limit, base and adapter on the
# same first held-out items: a retailer adapter (short exact policy answers) and the planning
# adapter (brief fields as JSON). The cost is per adapter (a base load, two decodes), hardly per
# item. Measured on a shared, busy machine: one thread spent 18 CPU s on delta's 8 items and 51
# on planning's 4 (96 new tokens); delta's 8 took 12 s of wall time at its quietest.
RESCORED = (("retailer/delta", 8), ("task/planning", 4))


def test_shipped_adapters_beat_the_base_on_their_primary_metric() -> None:
    shipped = _shipped()
    if not shipped:
        pytest.skip("no trained adapters in this checkout")
    registry = AdapterRegistry()
    assert registry.invalid == {}
    for folder in shipped:
        meta = AdapterMetadata.read(folder)
        role = meta.id if meta.kind == "task" else meta.kind
        primary = PRIMARY_METRIC[role]
        gate = meta.eval.get("gate", {})
        if meta.kind == "brand" and "served" in gate:
            # Promoted by the served gate (`adapters.training.served`): judged on the copy the
            # product writes with it against the copy without it, not on the free eval.
            assert gate["primary_metric"] == "compliant_as_written" and gate["beats_current"]
            new, old = gate["candidate"], gate["current"]
            assert (new["score"], new["secondary"]) > (old["score"], old["secondary"]), folder
            assert gate["served"]["composed"] == gate["served"]["variants"] >= 80, folder
        elif (meta.kind, meta.id) == ("task", "planning") and "served" in gate:
            # Promoted by the planning gate (`adapters.training.served_planning`): the model
            # alone under the grammar on the clean hand-written sets, against the version it
            # replaced; the free eval's base comparison is re-scored below (RESCORED).
            assert gate["primary_metric"] == "field_accuracy" and gate["beats_current"]
            assert gate["candidate"]["score"] > gate["current"]["score"], folder
            assert gate["served"]["sets"] == list(PLANNING_GATE_SETS)
            assert gate["served"]["briefs"] >= 500, folder
        else:
            assert meta.eval.get("primary_metric") == primary, folder
            base, tuned = meta.eval["base"][primary], meta.eval["adapter"][primary]
            assert 0 <= base < tuned <= 1, (folder, base, tuned)
            # A brand's held-out split is one product line in four
            # (tools/creative/products.py), 2-3 rows a line: 8-12 items for the four brands.
            assert meta.eval["items"] >= (8 if meta.kind == "brand" else 20)
        assert 8 <= meta.peft.r <= 16
        assert (folder / "adapter_model.safetensors").stat().st_size < 8 * 2**20
        card = meta.training.model_dump()
        assert card["command"].startswith("rmn train ") and card["seconds"] > 0
        assert meta.base_model == BASE_MODEL_ID
        assert meta.base_fingerprint == base_fingerprint()
        if meta.kind == "brand":
            assert meta.owner_tenant == meta.id
    installed = {f"{folder.parent.name}/{folder.name}" for folder in shipped}
    for adapter, items in RESCORED:
        assert adapter in installed
        result = evaluate_adapter(adapter, limit=items, write=False)
        primary = PRIMARY_METRIC[role_of(*adapter.split("/"))]
        assert result["items"] == items and result["primary_metric"] == primary
        base, tuned = result["base"][primary], result["adapter_scores"][primary]
        assert 0 <= base < tuned <= 1, (adapter, base, tuned)


def test_a_brand_version_is_scored_on_its_copy_as_served() -> None:
    # The versions gate scores a brand adapter on the creative tool's copy of its brand's
    # held-out products (`adapters.training.served`), through a temporary adapters root that
    # serves the version asked for: composed where the runtime composes it (brand_x's current
    # version, stacked on the installed task/creative), left out and said so where it does not
    # (initech's v1, trained on an earlier task/creative).
    from adapters.training.served import served_scores
    from adapters.versions import read_manifest

    root = adapters_root()
    current = read_manifest(root / "brand" / "brand_x").current
    composed = served_scores(root, "brand", "brand_x", current, seeds=(100,), plans=1)
    served = composed["served"]
    assert served["variants"] > 0 and served["composed"] == served["variants"]
    assert "served_as" not in composed
    assert all(0.0 <= v <= 1.0 for v in composed["scores"].values())
    assert composed["primary_metric"] == "compliant_as_written"
    left_out = served_scores(root, "brand", "initech", "v1", seeds=(100,), plans=1)
    assert left_out["served"]["composed"] == 0
    assert left_out["served_as"] == "without brand/initech (the runtime leaves v1 out)"
