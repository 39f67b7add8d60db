"""The base models adapters are trained on, and batched greedy generation for the eval.

Two bases: the product's SmolLM2-135M-Instruct (`adapters.base`) and, for tests, the tiny random
Llama of `adapters.testing`, which shares SmolLM2's tokenizer. Each records its own fingerprint
in the adapters trained on it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adapters.base import BASE_MODEL_ID, base_fingerprint, ensure_base_weights, load_base_model
from adapters.testing import TINY_BASE_MODEL, tiny_fingerprint, tiny_llama
from tools.errors import RMNError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SMOLLM2 = "smollm2"
TINY = "tiny-random-llama"
BASES = (SMOLLM2, TINY)

Loader = Callable[["torch.dtype", bool], tuple["PreTrainedModel", "PreTrainedTokenizerBase"]]


class UnknownBaseError(RMNError):
    kind = "unknown_base_model"


class QLoRAUnavailableError(RMNError):
    """4-bit training asked for on a machine without CUDA."""

    kind = "qlora_needs_cuda"


@dataclass(frozen=True)
class BaseModelSpec:
    """A base model: its name as adapters record it, its fingerprint, and how to load it."""

    key: str  # what `--base` takes
    name: str
    fingerprint: str
    loader: Loader

    def load(
        self, dtype: torch.dtype, qlora: bool = False
    ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        return self.loader(dtype, qlora)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def require_cuda_for_qlora() -> None:
    if not cuda_available():
        raise QLoRAUnavailableError(
            "--qlora trains on a 4-bit quantized base, which needs a CUDA GPU (bitsandbytes "
            "kernels); no CUDA device is visible here. Run without --qlora to train in "
            "bf16/fp32 on this machine, or run on a machine with a GPU.",
            cuda=False,
        )


def _load_smollm2(
    dtype: torch.dtype, qlora: bool
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    if not qlora:
        return load_base_model(dtype, progress=False)
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    require_cuda_for_qlora()
    path = ensure_base_weights(progress=False)
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        path, quantization_config=quant, dtype=torch.bfloat16, device_map={"": 0}
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model, AutoTokenizer.from_pretrained(path)


def _tiny_loader(seed: int) -> Loader:
    def load(dtype: torch.dtype, qlora: bool) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if qlora:
            require_cuda_for_qlora()
        model, tokenizer = tiny_llama(seed)
        return model.to(dtype), tokenizer

    return load


def smollm2_base() -> BaseModelSpec:
    return BaseModelSpec(SMOLLM2, BASE_MODEL_ID, base_fingerprint(), _load_smollm2)


def tiny_base(seed: int = 0) -> BaseModelSpec:
    return BaseModelSpec(TINY, TINY_BASE_MODEL, tiny_fingerprint(seed), _tiny_loader(seed))


def get_base(key: str = SMOLLM2) -> BaseModelSpec:
    """`smollm2` (the product's base) or `tiny-random-llama` (tests and smoke runs)."""
    if key == SMOLLM2:
        return smollm2_base()
    if key == TINY:
        return tiny_base()
    raise UnknownBaseError(f"unknown base model {key!r}; known: {', '.join(BASES)}", base=key)


def base_for_adapter(base_model: str, fingerprint: str) -> BaseModelSpec:
    """The base an adapter's metadata names; refuses a fingerprint this machine cannot load."""
    if base_model == TINY_BASE_MODEL:
        match = re.search(r"seed(\d+)$", fingerprint)
        spec = tiny_base(int(match.group(1)) if match else 0)
    else:
        spec = smollm2_base()
    if spec.fingerprint != fingerprint:
        raise UnknownBaseError(
            f"the adapter was trained on base {base_model} {fingerprint}, but the installed "
            f"base is {spec.name} {spec.fingerprint}: retrain the adapter on this base",
            adapter_fingerprint=fingerprint,
            base_fingerprint=spec.fingerprint,
        )
    return spec


def quiet_libraries(progress: bool) -> None:
    import datasets
    import transformers

    warnings.filterwarnings(
        "ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning
    )
    # PEFT looks for the base's config on a hub when saving checkpoints; offline, it only warns.
    warnings.filterwarnings("ignore", message=r"Unable to fetch remote file", category=UserWarning)
    warnings.filterwarnings("ignore", message=r"Could not find a config file", category=UserWarning)
    if not progress:
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[list[dict[str, str]]],
    max_new_tokens: int,
    batch_size: int = 8,
    on_batch: Callable[[int], Any] | None = None,
) -> list[str]:
    """Greedy completions of chat prompts, batched with left padding."""
    import torch

    texts = [
        tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
        for c in conversations
    ]
    # Shortest first keeps padding, and so wasted compute, low inside each batch.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: list[str] = [""] * len(texts)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(model.device)
            with torch.inference_mode():
                out = model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                )
            new = out[:, enc["input_ids"].shape[1] :]
            for i, row in zip(idx, new, strict=True):
                outputs[i] = tokenizer.decode(row, skip_special_tokens=True).strip()
            if on_batch is not None:
                on_batch(len(idx))
    finally:
        tokenizer.padding_side = side
    return outputs
