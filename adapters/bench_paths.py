"""`rmn bench llm --paths-only`: only the merged decode paths of the composed triple
(`run_decode_paths_bench`): float32, bfloat16, int8 weight-only with float32 or bfloat16
activations, and the runtime's choice end to end, with top-1 agreement over several prompts
(`AGREEMENT_PROMPTS`). Run it under `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
MKL_ENABLE_INSTRUCTIONS=AVX2` to see what an AVX2-only CPU gets. Apart from the full bench
(`adapters.bench`, whose adapters, prompts and timing helpers it uses; that module does not
import this one) so each stays one entry point.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from adapters.base import base_fingerprint, load_base_model, quiet_progress
from adapters.bench import (
    LONG_PROMPT,
    SHORT_PROMPT,
    TRIPLES,
    _adapters,
    _agreement,
    _encode,
    _generate,
    _int8_models,
    _path_report,
    _timed,
)
from adapters.composition import merged_copy
from adapters.decoding import cpu_info
from adapters.runtime import Runtime

AGREEMENT_PROMPTS = [
    SHORT_PROMPT,
    "Write a headline for Globex running shoes.",
    "Split $2,500 between gamma search and display.",
    "Summarise the brief for Brand X in one line.",
    LONG_PROMPT,
]


def run_decode_paths_bench(
    new_tokens: int = 64,
    rounds: int = 3,
    threads: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Only the merged decode paths of the composed triple (`rmn bench llm --paths-only`):
    tokens/s (batch 1, short prompt, prefill included) of float32, bfloat16 and int8 weight-only
    with float32 / bfloat16 activations, round-robin, medians and per-round ratios to float32;
    the runtime's chosen path end to end (`Runtime.generate`, its own EOS); and top-1 agreement
    with the float32 `cat` composition teacher-forced on its greedy continuations of
    `AGREEMENT_PROMPTS` (`new_tokens` positions each)."""
    began = time.perf_counter()

    def stage(name: str) -> None:
        if log is not None:
            log(f"[{time.perf_counter() - began:6.1f} s] {name}")

    if threads:
        torch.set_num_threads(threads)
    n = new_tokens
    result: dict[str, Any] = {
        "new_tokens": n,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "cpu": cpu_info().to_dict(),
        "emulation_env": {
            k: os.environ.get(k)
            for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
        },
    }
    with quiet_progress():
        model, tokenizer = load_base_model(progress=False)
    fingerprint = base_fingerprint()
    with tempfile.TemporaryDirectory(prefix="rmn-llm-paths-") as tmp:
        registry, source = _adapters(Path(tmp), model, fingerprint)
        result["adapters"] = source
        rt = Runtime(model, tokenizer, base_fingerprint=fingerprint, registry=registry,
                     decode="lora", model_name="SmolLM2-135M-Instruct")  # fmt: skip
        result["decode_path"] = _path_report(rt.decode_choice)
        names = [e.peft_name for e in rt.registry.resolve(TRIPLES[0], "acme", fingerprint)]
        cat = rt.adapter_name(TRIPLES[0], "acme")
        peft = rt.model  # a PeftModel only once an adapter is loaded
        stage("building the merged paths")
        models = {
            "merged_fp32": merged_copy(peft, names, torch.float32),
            "merged_bf16": merged_copy(peft, names, torch.bfloat16),
            **_int8_models(peft, names),
        }
        enc = _encode(rt, SHORT_PROMPT, "planning")
        levers: dict[str, Callable[[], torch.Tensor]] = {
            k: (lambda m=m: _generate(m, enc, n)) for k, m in models.items()
        }
        for m in models.values():
            _generate(m, enc, 2)  # first-call allocations are not what we measure
        seconds: dict[str, list[float]] = {k: [] for k in levers}
        for i in range(rounds):
            for name, fn in levers.items():
                stage(f"round {i + 1}/{rounds}: {name}")
                seconds[name].append(_timed(fn)[0])
        result["tok_s"] = {k: round(n / statistics.median(v), 2) for k, v in seconds.items()}
        result["vs_fp32"] = {
            k: round(statistics.median(seconds["merged_fp32"][i] / v[i] for i in range(rounds)), 3)
            for k, v in seconds.items()
        }
        stage("the runtime's chosen path end to end")
        rt.decode = "merged"
        rt.prepare(TRIPLES[0], "acme")
        runs = []
        for _ in range(rounds):
            gen = rt.generate([{"role": "user", "content": SHORT_PROMPT}], TRIPLES[0], "acme",
                              max_new_tokens=n)  # fmt: skip
            runs.append(gen.tokens / gen.seconds)
        result["runtime"] = {
            "decode": gen.decode,
            "tok_s_median": round(statistics.median(runs), 2),
            "tokens": gen.tokens,
        }
        stage("top-1 agreement with float32 over the prompts")
        result["quality_vs_fp32_composed"] = _agreement_over(rt, peft, cat, models, n, stage)
    stage("done")
    return result


def _agreement_over(
    rt: Runtime,
    peft: Any,
    cat: str,
    models: dict[str, Any],
    n: int,
    stage: Callable[[str], None],
) -> dict[str, dict[str, Any]]:
    """Top-1 agreement with the float32 `cat` composition over every prompt of
    `AGREEMENT_PROMPTS` (the mean over prompts of `n` positions each), and the worst prompt's.
    The continuations are the merged float32 copy's (the same sum as `cat`, logits within
    1e-4, and faster to decode)."""
    agree: dict[str, list[float]] = {k: [] for k in models}
    for i, text in enumerate(AGREEMENT_PROMPTS):
        stage(f"agreement: prompt {i + 1}/{len(AGREEMENT_PROMPTS)}")
        enc = _encode(rt, text, "planning")
        reference = _generate(models["merged_fp32"], enc, n)
        got = _agreement(peft, cat, reference, enc["input_ids"].shape[1], models, [])
        for k, q in got.items():
            agree[k].append(q["top1_agreement"])  # of n positions each
    return {
        k: {
            "top1_agreement": round(sum(v) / len(v), 3),
            "worst_prompt": min(v),
            "positions": n * len(v),
        }
        for k, v in agree.items()
    }
