"""Small stand-ins for tests and benchmarks: a tiny randomly initialised Llama that shares
SmolLM2's tokenizer, and random LoRA adapter folders in the registry layout.

The tiny model runs a decode step in about a millisecond, so tests exercise the real code paths
(PEFT composition, constrained decoding, batching) without the 135M-parameter base.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.base import ensure_base_weights
from adapters.registry import (
    PEFT_WEIGHTS_FILE,
    AdapterMetadata,
    AdapterRegistry,
    Kind,
    PeftSpec,
    TrainingCard,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from adapters.runtime import Runtime

TINY_BASE_MODEL = "tiny-random-llama"
DEFAULT_TARGETS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


def tiny_fingerprint(seed: int = 0) -> str:
    """The fingerprint tiny bases and their adapters record: one per seed, as the weights are."""
    return f"test:{TINY_BASE_MODEL}-seed{seed}"


@lru_cache(maxsize=1)
def smollm2_tokenizer() -> PreTrainedTokenizerBase:
    """The real SmolLM2 tokenizer (and chat template), from the local weight cache."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(ensure_base_weights(progress=False))


def tiny_llama(
    seed: int = 0,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A randomly initialised Llama (eval mode, float32) with SmolLM2's vocabulary and tokenizer.
    The same seed gives the same weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.eval()
    return model, tokenizer


def write_random_adapter(
    root: Path,
    kind: Kind,
    adapter_id: str,
    model: PreTrainedModel,
    *,
    base_fingerprint: str,
    base_model: str = TINY_BASE_MODEL,
    owner_tenant: str | None = None,
    r: int = 8,
    alpha: float = 16.0,
    target_modules: Sequence[str] = DEFAULT_TARGETS,
    seed: int = 0,
    scale: float = 0.05,
    stacked_on: str | None = None,
) -> Path:
    """Write `<root>/<kind>/<adapter_id>/` with seeded random LoRA weights shaped for `model`,
    a PEFT config and `metadata.json`. `model` is only read. `scale` is the std of lora_B: large
    enough that each adapter visibly changes the logits. `stacked_on` (`kind/id`) records, as
    `rmn train sft --stack-on` does, the adapter this one is composed on top of."""
    import torch
    from peft import LoraConfig
    from safetensors.torch import save_file

    folder = Path(root) / kind / adapter_id
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    targets = set(target_modules)
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or name.rsplit(".", 1)[-1] not in targets:
            continue
        bound = 1 / math.sqrt(module.in_features)
        lora_a = (torch.rand(r, module.in_features, generator=gen) * 2 - 1) * bound
        lora_b = torch.randn(module.out_features, r, generator=gen) * scale
        tensors[f"base_model.model.{name}.lora_A.weight"] = lora_a.contiguous()
        tensors[f"base_model.model.{name}.lora_B.weight"] = lora_b.contiguous()
    if not tensors:
        raise ValueError(f"no Linear modules named {sorted(targets)} in the model")
    save_file(tensors, str(folder / PEFT_WEIGHTS_FILE), metadata={"format": "pt"})
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        target_modules=sorted(targets),
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=base_model,
    )
    config.save_pretrained(str(folder))
    AdapterMetadata(
        kind=kind,
        id=adapter_id,
        owner_tenant=owner_tenant,
        base_model=base_model,
        base_fingerprint=base_fingerprint,
        peft=PeftSpec(r=r, alpha=alpha, target_modules=sorted(targets)),
        training=TrainingCard(
            dataset="random",
            rows=0,
            splits={},
            steps=0,
            command=f"write_random_adapter(seed={seed}, scale={scale})",
            **({"stacked_on": {"adapter": stacked_on}} if stacked_on else {}),
        ),
        eval={},
        created_at=datetime.now(UTC),
    ).write(folder)
    return folder


def write_standard_adapters(
    root: Path,
    model: PreTrainedModel,
    *,
    base_fingerprint: str,
    base_model: str = TINY_BASE_MODEL,
    r: int = 8,
    scale: float = 0.05,
    target_modules: Sequence[str] = DEFAULT_TARGETS,
) -> Path:
    """The product's adapter catalogue as random adapters: retailers alpha..delta, brands (each
    owned by the tenant of the same name, stacked on task/creative as the product trains them)
    and the planning and creative tasks."""
    ids: list[tuple[Kind, str]] = [
        *(("retailer", i) for i in ("alpha", "beta", "gamma", "delta")),
        *(("brand", i) for i in ("acme", "globex", "initech", "brand_x")),
        *(("task", i) for i in ("planning", "creative")),
    ]
    for seed, (kind, adapter_id) in enumerate(ids, start=1):
        write_random_adapter(
            root,
            kind,
            adapter_id,
            model,
            base_fingerprint=base_fingerprint,
            base_model=base_model,
            owner_tenant=adapter_id if kind == "brand" else None,
            r=r,
            seed=seed,
            scale=scale,
            target_modules=target_modules,
            stacked_on="task/creative" if kind == "brand" else None,
        )
    return Path(root)


def tiny_runtime(adapters_root: Path, *, seed: int = 0, **options: Any) -> Runtime:
    """A runtime on a fresh tiny Llama (the runtime wraps its model with PEFT, so each runtime
    gets its own) and the adapters under `adapters_root`, written for `tiny_fingerprint(seed)`.
    `options` go to `Runtime` (decode, cache_size, batch_window_s, ...)."""
    from adapters.runtime import Runtime

    model, tokenizer = tiny_llama(seed)
    return Runtime(
        model,
        tokenizer,
        base_fingerprint=tiny_fingerprint(seed),
        registry=AdapterRegistry(adapters_root),
        model_name=TINY_BASE_MODEL,
        **options,
    )
