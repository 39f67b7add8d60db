"""Composing LoRA adapters on the shared base: loading each once, the `cat` compositions, and
per adapter set a copy of the weights with the composition merged in.

* no adapter: the base model;
* one adapter: that adapter as trained;
* two or three: one adapter built by `add_weighted_adapter(combination_type="cat")`, which
  stacks the A and B matrices (rank r1+r2+r3), so B·A is exactly the sum of the adapters' updates.
  Built in about 0.5 s and kept in an LRU cache of `cache_size` compositions (`LoraBank`).

Measured on SmolLM2-135M, r=16 on all linear layers, 2 CPU cores (see `rmn bench llm`):
`cat` matches the three adapters active at once (max logit difference ~1e-4) and decodes as
fast as a single adapter, while several active adapters (`set_adapter([...])`) run three LoRA
paths per layer and are 30-40 % slower; `linear` and `svd` merges are approximations far from
the exact sum, so they are not used.

`MergedBank` keeps, per adapter set, a copy of the weights with the composition added in
(W + sum of B·A, `merged_copy`) in its own LRU cache, for the runtime's "merged" decode path.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch

from adapters.registry import AdapterEntry
from tools.errors import RMNError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

BASE_ROW = "__base__"  # PEFT's adapter name for "no adapter" in a mixed batch


class AdapterLoadError(RMNError):
    """Adapter files that PEFT cannot apply to the loaded base (shapes, module names)."""

    kind = "adapter_load_failed"


class LoraBank:
    """The shared model with every adapter loaded once, and the LRU of `cat` compositions."""

    def __init__(self, model: PreTrainedModel, cache_size: int) -> None:
        self.model: Any = model
        self.wrapped = False
        self.loaded: set[str] = set()
        self.compositions: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self.cache_size = cache_size
        self.builds = 0
        self.evictions = 0
        self.build_seconds: list[float] = []

    def ensure_loaded(self, entry: AdapterEntry) -> None:
        if entry.peft_name in self.loaded:
            return
        from peft import PeftModel

        try:
            with quiet_libraries():
                if not self.wrapped:
                    self.model = PeftModel.from_pretrained(
                        self.model, str(entry.path), adapter_name=entry.peft_name
                    )
                    self.model.eval()
                    self.wrapped = True
                else:
                    self.model.load_adapter(str(entry.path), adapter_name=entry.peft_name)
        except (RuntimeError, ValueError, KeyError, OSError) as err:
            raise AdapterLoadError(
                f"{entry.name} at {entry.path} cannot be applied to this base model: {err}",
                adapter=entry.name,
            ) from None
        self.loaded.add(entry.peft_name)

    def adapter_name(self, entries: Sequence[AdapterEntry], pinned: set[str]) -> tuple[str, str]:
        """(PEFT adapter name for a row, composition kind); builds a composition on a miss."""
        if not entries:
            return BASE_ROW, "base"
        for entry in entries:
            self.ensure_loaded(entry)
        if len(entries) == 1:
            return entries[0].peft_name, "single"
        key = tuple(e.peft_name for e in entries)
        name = self.compositions.get(key)
        if name is not None:
            self.compositions.move_to_end(key)
            return name, "cat"
        while len(self.compositions) >= self.cache_size:
            victim = next((k for k, n in self.compositions.items() if n not in pinned), None)
            if victim is None:
                break
            self.model.delete_adapter(self.compositions.pop(victim))
            self.evictions += 1
        name = "cat--" + "--".join(key)
        started = time.perf_counter()
        with quiet_libraries():
            self.model.add_weighted_adapter(
                list(key), [1.0] * len(key), name, combination_type="cat"
            )
        # The new adapter's modules are created in training mode: without this its LoRA
        # dropout (0.05) stayed on at inference, so two identical calls differed (max logit
        # difference 0.77 measured on alpha+acme+creative) and `cat` missed the exact sum.
        self.model.eval()
        self.build_seconds.append(time.perf_counter() - started)
        self.builds += 1
        self.compositions[key] = name
        return name, "cat"


class MergedBank:
    """Per adapter set, a model whose weights have the composition added in, in an LRU."""

    def __init__(self, lora: LoraBank, dtype: torch.dtype, cache_size: int) -> None:
        self.lora = lora
        self.dtype = dtype
        self.cache_size = cache_size
        self.models: OrderedDict[tuple[str, ...], PreTrainedModel] = OrderedDict()
        self.builds = 0
        self.evictions = 0
        self.build_seconds: list[float] = []

    def get(self, entries: Sequence[AdapterEntry]) -> PreTrainedModel:
        key = tuple(e.peft_name for e in entries)
        model = self.models.get(key)
        if model is not None:
            self.models.move_to_end(key)
            return model
        for entry in entries:
            self.lora.ensure_loaded(entry)
        while len(self.models) >= self.cache_size:
            self.models.popitem(last=False)
            self.evictions += 1
        started = time.perf_counter()
        model = merged_copy(self.lora.model, list(key), self.dtype)
        self.build_seconds.append(time.perf_counter() - started)
        self.builds += 1
        self.models[key] = model
        return model


def merged_copy(
    model: Any, adapter_names: Sequence[str], dtype: torch.dtype | None = None
) -> PreTrainedModel:
    """A new model whose weights are the base weights plus the sum of the named adapters'
    updates (exactly what `cat` computes on the fly), in `dtype`. Tensors the adapters do not
    touch are shared with the base when the dtype is the same."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model() if isinstance(model, PeftModel) else model
    merged_weights: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for module_name, module in base.named_modules():
            if isinstance(module, LoraLayer):
                weight = _merged_weight(module, adapter_names)
                if weight is not None:
                    merged_weights[f"{module_name}.weight"] = weight
        state: dict[str, torch.Tensor] = {}
        converted: dict[int, torch.Tensor] = {}  # by storage, so tied weights stay tied
        for key, tensor in base.state_dict().items():
            if ".lora_" in key:
                continue
            key = key.replace(".base_layer.", ".")
            target = dtype or tensor.dtype
            if key in merged_weights:
                state[key] = merged_weights.pop(key).to(target)
            else:
                ptr = tensor.data_ptr()
                if ptr not in converted:
                    converted[ptr] = tensor if tensor.dtype == target else tensor.to(target)
                state[key] = converted[ptr]
        with torch.device("meta"), quiet_libraries():
            merged = type(base)(copy.deepcopy(base.config))
        merged.load_state_dict(state, strict=True, assign=True)
        # Non-persistent buffers (rotary frequencies) are not in the state dict.
        buffers = dict(base.named_buffers())
        for name, _ in list(merged.named_buffers()):
            owner, _, attr = name.rpartition(".")
            merged.get_submodule(owner)._buffers[attr] = buffers[name]
        merged.tie_weights()
    merged.generation_config = copy.deepcopy(base.generation_config)
    merged.eval()
    return merged


def _merged_weight(module: Any, adapter_names: Sequence[str]) -> torch.Tensor | None:
    """W + sum of the adapters' B·A·scaling for one LoRA layer, in float32, or None when none
    of the adapters touches it. For linear layers the sum is one rank-(r1+r2+r3) product
    (the `cat` stacking), a single pass over W instead of one per adapter."""
    present = [n for n in adapter_names if n in module.lora_A or n in module.lora_embedding_A]
    if not present:
        return None
    weight = module.get_base_layer().weight.float()
    linear = all(n in module.lora_A for n in present) and not getattr(
        module, "fan_in_fan_out", False
    )
    if not linear:
        out = weight.clone()
        for name in present:
            out += module.get_delta_weight(name).float()
        return out
    lora_a = torch.cat([module.lora_A[n].weight.float() * module.scaling[n] for n in present])
    lora_b = torch.cat([module.lora_B[n].weight.float() for n in present], dim=1)
    return torch.addmm(weight, lora_b, lora_a)


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """PEFT and transformers warn about training-time concerns (gradient checkpointing,
    untied heads) while loading adapters for inference; users cannot act on those."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
