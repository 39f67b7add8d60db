"""`rmn bench llm`: load times, adapter switching and composition, and decode speed per path.

Every throughput figure is greedy decoding of a fixed prompt with exactly `new_tokens` new
tokens (EOS suppressed until then), prefill included, batch 1 unless stated. Configurations are
measured round-robin for `rounds` rounds and the median is reported, with ratios taken within
each round, so a neighbour's load on a shared machine skews figures and ratios less. Levers that
approximate the float32 weights report top-1 agreement with the float32 composed model
(teacher-forced on its greedy continuation) next to their speed.

The report names the CPU flags and torch/oneDNN dispatch the run saw (`cpu`) and the merged
path the runtime chose from them (`decode_path`, `adapters.decoding.choose_decode_path`).
`rmn bench llm --paths-only` (only the merged paths) is `adapters.bench_paths`, on the adapters,
prompts and timing helpers here.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field

from adapters.base import base_fingerprint, load_base_model, quiet_progress
from adapters.composition import merged_copy, quiet_libraries
from adapters.decoding import DecodeChoice, cpu_info
from adapters.fused import int8_decode_copy
from adapters.quantize import int8_weight_only_available
from adapters.registry import AdapterRegistry, AdapterSet
from adapters.runtime import Runtime
from adapters.testing import write_standard_adapters

TRIPLES = [
    AdapterSet("alpha", "acme", "planning"),
    AdapterSet("beta", "globex", "creative"),
    AdapterSet("gamma", "initech", "planning"),
    AdapterSet("delta", "brand_x", "creative"),
]
TENANTS = ["acme", "globex", "initech", "brand_x"]
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SHORT_PROMPT = "Plan a March campaign for Acme coffee on alpha with $10,000."
LONG_PROMPT = (
    "Brief from Acme Coffee Co. We are launching our spring single-origin range and want to "
    "reach lapsed buyers and new coffee shoppers across the retailers we already work with. "
    "Total budget is $48,000 for March 3 to April 27, split roughly 50/30/20 across alpha, beta "
    "and gamma, with delta as an optional test cell if the first four weeks beat a ROAS of 3.5. "
    "Creative must lead with the origin story, avoid health claims, use the approved product "
    "names only, and keep headlines under 40 characters. Audiences: category buyers in the last "
    "180 days who have not bought Acme in 90 days, plus new-to-category shoppers in urban "
    "stores. Measurement: incremental sales via the clean room, weekly pacing reports, and a "
    "holdout of 10 percent on beta. Keep frequency under three per week per shopper and pause "
    "any line whose cost per incremental unit exceeds $6. Summarise the plan in one paragraph."
)

TARGETS = {
    "warm_load_s": ("<", 2.0),
    "adapter_switch_ms_p50": ("<", 25.0),
    "composed_cat_vs_base": (">=", 0.8),
    "composed_production_vs_base": (">=", 0.8),
    "batched_vs_sequential": (">=", 1.8),
    "composed_tok_s_production": (">=", 30.0),
}


def run_llm_bench(
    new_tokens: int = 64,
    rounds: int = 3,
    cold: bool = True,
    compile_model: bool = False,
    threads: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """All figures in one dict (see the module docstring); `log` gets one line per stage."""
    began = time.perf_counter()

    def stage(name: str) -> None:
        if log is not None:
            log(f"[{time.perf_counter() - began:6.1f} s] {name}")

    if threads:
        torch.set_num_threads(threads)
    result: dict[str, Any] = {
        "new_tokens": new_tokens,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "cpu": cpu_info().to_dict(),
    }
    result["cpu_bf16"] = result["cpu"]["native_bf16"]
    if cold:
        stage("cold load from the GGUF in a fresh process")
        result["cold_load"] = _cold_load()
    stage("warm loads")

    loads = []
    for _ in range(3):
        started = time.perf_counter()
        with quiet_progress():
            model, tokenizer = load_base_model(progress=False)
        loads.append(time.perf_counter() - started)
    result["warm_load_s"] = round(statistics.median(loads), 3)
    fingerprint = base_fingerprint()

    with tempfile.TemporaryDirectory(prefix="rmn-llm-bench-") as tmp:
        registry, source = _adapters(Path(tmp), model, fingerprint)
        result["adapters"] = source
        stage(f"adapters: {source}; load, compose, switch")
        rt = Runtime(
            model,
            tokenizer,
            base_fingerprint=fingerprint,
            registry=registry,
            decode="lora",
            cache_size=4,
            model_name="SmolLM2-135M-Instruct",
        )
        result["decode_path"] = _path_report(rt.decode_choice)
        result.update(_adapter_costs(rt))
        result.update(_throughput(rt, new_tokens, rounds, compile_model, stage))
        stage("4 concurrent requests: batched vs sequential")
        result["batched"] = _batched(rt, new_tokens, max(1, rounds - 1))
        stage("constrained JSON on the production path")
        result["structured"] = _structured(rt)
    stage("done")
    result["targets"] = _targets(result)
    return result


# -- loading ----------------------------------------------------------------------------------


def _cold_load() -> dict[str, Any]:
    """Convert the GGUF and load it in a fresh process with an empty cache."""
    code = (
        "import json, time\n"
        "t0 = time.perf_counter()\n"
        "from adapters.base import load_base_model\n"
        "t1 = time.perf_counter()\n"
        "load_base_model(progress=False)\n"
        "t2 = time.perf_counter()\n"
        "print(json.dumps({'import_s': t1 - t0, 'load_s': t2 - t1}))\n"
    )
    with tempfile.TemporaryDirectory(prefix="rmn-cold-") as cache:
        env = {**os.environ, "RMN_CACHE_DIR": cache, "HF_HUB_OFFLINE": "1"}
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
        )
        wall = time.perf_counter() - started
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    inner = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "from_gguf_s": round(inner["load_s"], 2),
        "imports_s": round(inner["import_s"], 2),
        "process_s": round(wall, 2),
    }


def _adapters(tmp: Path, model: Any, fingerprint: str) -> tuple[AdapterRegistry, str]:
    """The installed adapters when every one the benchmark triples name is there for this
    base; else random ones shaped like the installed adapters (rank, target modules), or r=16
    on every linear layer when none is installed."""
    installed = [
        e for e in AdapterRegistry().entries() if e.metadata.base_fingerprint == fingerprint
    ]
    needed = {(k, i) for t in TRIPLES for k, i in t.items()}
    if needed <= {(e.metadata.kind, e.metadata.id) for e in installed}:
        return AdapterRegistry(), "trained"
    r, targets = 16, ALL_LINEAR
    if installed:
        r, targets = installed[0].metadata.peft.r, tuple(installed[0].metadata.peft.target_modules)
    write_standard_adapters(
        tmp,
        model,
        base_fingerprint=fingerprint,
        base_model="SmolLM2-135M-Instruct",
        r=r,
        scale=0.02,
        target_modules=targets,
    )
    return AdapterRegistry(tmp), f"random (r={r}, {', '.join(targets)})"


def _adapter_costs(rt: Runtime) -> dict[str, Any]:
    loads = []
    for kind, adapter_id in sorted({p for t in TRIPLES for p in t.items()}):
        tenant = adapter_id if kind == "brand" else None
        loads.append(rt.prepare(AdapterSet(**{kind: adapter_id}), tenant)["seconds"])
    builds = [rt.prepare(t, tenant)["seconds"] for t, tenant in zip(TRIPLES, TENANTS, strict=True)]
    peft = rt.model
    singles = ["retailer-alpha", "brand-acme", "task-planning"]
    switches = []
    for i in range(30):
        started = time.perf_counter()
        peft.set_adapter(singles[i % 3])
        switches.append(time.perf_counter() - started)
    # What a call pays to route its rows to their adapters (PEFT forward hooks per LoRA layer).
    routes = []
    cats = [rt.adapter_name(t, tenant) for t, tenant in zip(TRIPLES, TENANTS, strict=True)]
    for i in range(30):
        started = time.perf_counter()
        with peft.base_model._enable_peft_forward_hooks(adapter_names=[cats[i % len(cats)]]):
            pass
        routes.append(time.perf_counter() - started)
    merged_builds = []
    for t in TRIPLES[:2]:
        entries = rt.registry.resolve(t, TENANTS[TRIPLES.index(t)], rt.base_fingerprint)
        started = time.perf_counter()
        merged_copy(peft, [e.peft_name for e in entries], torch.bfloat16)
        merged_builds.append(time.perf_counter() - started)
    triple_mb = (
        sum(p.numel() * p.element_size() for n, p in peft.named_parameters() if cats[0] in n)
        / 2**20
    )
    return {
        "adapter_load_s_p50": round(statistics.median(loads), 3),
        "composition_build_s_p50": round(statistics.median(builds), 3),
        "composition_mb": round(triple_mb, 1),
        "merged_build_s_p50": round(statistics.median(merged_builds), 3),
        "adapter_switch_ms_p50": round(statistics.median(routes) * 1000, 2),
        "peft_set_adapter_ms_p50": round(statistics.median(switches) * 1000, 2),
    }


# -- decoding ---------------------------------------------------------------------------------


def _encode(rt: Runtime, text: str, task: str | None) -> dict[str, torch.Tensor]:
    prompt = rt.render_prompt([{"role": "user", "content": text}], AdapterSet(task=task))
    return rt.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)


def _generate(model: Any, enc: dict[str, torch.Tensor], n: int, **kw: Any) -> torch.Tensor:
    with torch.inference_mode(), quiet_libraries():
        return model.generate(
            **enc, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=2, **kw
        )


def _timed(fn: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def _throughput(
    rt: Runtime, n: int, rounds: int, compile_model: bool, stage: Callable[[str], None]
) -> dict[str, Any]:
    peft = rt.model
    names = [e.peft_name for e in rt.registry.resolve(TRIPLES[0], "acme", rt.base_fingerprint)]
    cat = rt.adapter_name(TRIPLES[0], "acme")
    enc = _encode(rt, SHORT_PROMPT, "planning")
    long_enc = _encode(rt, LONG_PROMPT, "planning")
    merged32 = merged_copy(peft, names, torch.float32)
    merged16 = merged_copy(peft, names, torch.bfloat16)
    levers: dict[str, Callable[[], torch.Tensor]] = {}

    def several() -> torch.Tensor:
        peft.base_model.set_adapter(names)
        try:
            return _generate(peft, enc, n)
        finally:
            peft.set_adapter(names[0])

    def base() -> torch.Tensor:
        with peft.disable_adapter():
            return _generate(peft, enc, n)

    levers["base"] = base
    levers["one_adapter"] = lambda: _generate(peft, enc, n, adapter_names=[names[0]])
    levers["composed_cat"] = lambda: _generate(peft, enc, n, adapter_names=[cat])
    levers["composed_several_active"] = several
    levers["merged_fp32"] = lambda: _generate(merged32, enc, n)
    levers["merged_bf16"] = lambda: _generate(merged16, enc, n)
    stage("building the decode levers")
    int8_dynamic = _int8_dynamic(merged_copy(peft, names, torch.float32))
    levers["merged_int8_dynamic"] = lambda: _generate(int8_dynamic, enc, n)
    int8 = _int8_models(peft, names)
    for label, model in int8.items():
        levers[label] = lambda model=model: _generate(model, enc, n)
    levers["merged_bf16_long_prompt"] = lambda: _generate(merged16, long_enc, n)

    _generate(peft, enc, 4)  # first-call allocations are not what we measure
    seconds: dict[str, list[float]] = {k: [] for k in levers}
    outputs: dict[str, torch.Tensor] = {}
    for i in range(rounds):
        for name, fn in levers.items():
            stage(f"round {i + 1}/{rounds}: {name}")
            dt, outputs[name] = _timed(fn)
            seconds[name].append(dt)
    tok_s = {k: round(n / statistics.median(v), 2) for k, v in seconds.items()}
    ratios = {
        k: round(statistics.median(seconds["base"][i] / v[i] for i in range(rounds)), 3)
        for k, v in seconds.items()
    }
    out: dict[str, Any] = {
        "tok_s": tok_s,
        "vs_base": ratios,
        "prompt_tokens": {
            "short": enc["input_ids"].shape[1],
            "long": long_enc["input_ids"].shape[1],
        },
        "quality_vs_fp32_composed": _agreement(
            peft,
            cat,
            outputs["composed_cat"],
            enc["input_ids"].shape[1],
            {
                "composed_several_active": None,
                "merged_fp32": merged32,
                "merged_bf16": merged16,
                "merged_int8_dynamic": int8_dynamic,
                **int8,
            },
            names,
        ),
    }
    if compile_model:
        out["static_cache_compile"] = _compiled(merged_copy(peft, names, torch.bfloat16), enc, n)
    else:
        out["static_cache_compile"] = "skipped (--compile): inductor needs minutes on 2 cores"
    return out


def _agreement(
    peft: Any,
    cat: str,
    reference: torch.Tensor,
    prompt_len: int,
    models: dict[str, Any],
    names: list[str],
) -> dict[str, dict[str, float]]:
    """Top-1 agreement and max logit difference against the float32 `cat` composition,
    teacher-forced on its own greedy continuation. A merged copy reads it as it decodes: the
    prompt in one pass, then one token a pass with the cache, so a copy that multiplies wide
    passes and single tokens differently (`adapters.quantize`, `wide_rows`) is measured on the
    path each token takes when served."""
    with torch.inference_mode():
        ref = peft(input_ids=reference, adapter_names=[cat]).logits[0, prompt_len - 1 : -1]
        out = {}
        for label, model in models.items():
            if model is None:  # the three adapters active at once, on the shared model
                peft.base_model.set_adapter(names)
                got = peft(input_ids=reference).logits[0, prompt_len - 1 : -1].float()
                peft.set_adapter(names[0])
            else:
                got = stepwise_logits(model, reference, prompt_len)
            out[label] = {
                "top1_agreement": round(
                    (got.argmax(-1) == ref.argmax(-1)).float().mean().item(), 3
                ),
                "max_logit_diff": round((got - ref).abs().max().item(), 5),
            }
    return out


def stepwise_logits(model: Any, ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """The logits predicting `ids[0, prompt_len:]`, read as decoding reads them: the prompt
    in one pass, then each next token alone with the KV cache."""
    from transformers import DynamicCache

    cache = DynamicCache()
    step = model(input_ids=ids[:, :prompt_len], cache=cache, use_cache=True)
    rows = [step.logits[0, -1]]
    for t in range(prompt_len, ids.shape[1] - 1):
        step = model(input_ids=ids[:, t : t + 1], cache=cache, use_cache=True)
        rows.append(step.logits[0, -1])
    return torch.stack(rows).float()


def _int8_dynamic(model: Any) -> Any:
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def _int8_models(peft: Any, names: list[str]) -> dict[str, Any]:
    """The composed triple merged and made int8 weight-only (`adapters.quantize`, the serving
    code), multiplying in bfloat16: in a bfloat16 copy, and in a float32 copy (the AVX2 path:
    only the matmul's inputs are bfloat16), passes of `WIDE_ROWS` rows or more on the copy's
    float weights; each also with its decoder layers fused (`adapters.fused`), as served. Not
    with float32 activations: torch's kernel is scalar for them (2-10x slower than the float32
    linear, see `adapters.decoding`)."""
    if not int8_weight_only_available(torch.bfloat16):
        return {}
    return {
        f"merged_int8_weight_only_{label}{'_fused' if fuse else ''}": int8_decode_copy(
            merged_copy(peft, names, dtype), torch.bfloat16, fuse=fuse
        )
        for dtype, label in ((torch.bfloat16, "bf16"), (torch.float32, "fp32_bf16mm"))
        for fuse in (False, True)
    }


def _path_lever(choice: DecodeChoice) -> str:
    """The throughput lever that is the runtime's chosen merged path."""
    if choice.path == "int8":
        bf16 = choice.dtype == torch.bfloat16
        fused = "_fused" if choice.fused else ""
        return f"merged_int8_weight_only_{'bf16' if bf16 else 'fp32_bf16mm'}{fused}"
    return f"merged_{choice.path}"


def _path_report(choice: DecodeChoice) -> dict[str, Any]:
    return {**choice.to_dict(), "lever": _path_lever(choice)}


def _compiled(model: Any, enc: dict[str, torch.Tensor], n: int) -> dict[str, Any]:
    try:
        model.forward = torch.compile(model.forward, dynamic=False)
        started = time.perf_counter()
        _generate(model, enc, n, cache_implementation="static")
        first = time.perf_counter() - started
        dt, _ = _timed(lambda: _generate(model, enc, n, cache_implementation="static"))
        return {"compile_and_first_run_s": round(first, 1), "tok_s": round(n / dt, 2)}
    except Exception as err:  # noqa: BLE001 - a lever that fails is reported, not fatal
        return {"error": f"{type(err).__name__}: {str(err)[:200]}"}


def _batched(rt: Runtime, n: int, rounds: int) -> dict[str, Any]:
    """Four requests with different triples: one mixed batch (one composed adapter per row)
    against the same four one after another; and the merged bfloat16 path one by one."""
    peft = rt.model
    tok = rt.tokenizer
    texts = [
        SHORT_PROMPT,
        "Write a headline for Globex running shoes.",
        "Split $2,500 between gamma search and display.",
        "Summarise the brief for Brand X in one line.",
    ]
    rows = []
    for t, tenant, text in zip(TRIPLES, TENANTS, texts, strict=True):
        entries = rt.registry.resolve(t, tenant, rt.base_fingerprint)
        name = rt.adapter_name(t, tenant)
        rows.append(
            (
                name,
                entries,
                tok(
                    rt.render_prompt([{"role": "user", "content": text}], t),
                    add_special_tokens=False,
                )["input_ids"],
            )
        )
    width = max(len(ids) for _, _, ids in rows)
    input_ids = torch.full((4, width), rt.pad_token_id)
    mask = torch.zeros((4, width), dtype=torch.long)
    for i, (_, _, ids) in enumerate(rows):
        input_ids[i, width - len(ids) :] = torch.tensor(ids)
        mask[i, width - len(ids) :] = 1
    merged = [_served_copy(rt, [e.peft_name for e in entries]) for _, entries, _ in rows]
    batch_s, seq_s, merged_s, same = [], [], [], True
    for _ in range(rounds):
        dt, out = _timed(
            lambda: _generate(
                peft,
                {"input_ids": input_ids, "attention_mask": mask},
                n,
                adapter_names=[r[0] for r in rows],
            )
        )
        batch_s.append(dt)
        started = time.perf_counter()
        for i, (name, _, ids) in enumerate(rows):
            one = _generate(peft, {"input_ids": torch.tensor([ids])}, n, adapter_names=[name])
            same = same and torch.equal(one[0, len(ids) :], out[i, width:])
        seq_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        for model, (_, _, ids) in zip(merged, rows, strict=True):
            _generate(model, {"input_ids": torch.tensor([ids])}, n)
        merged_s.append(time.perf_counter() - started)
    total = 4 * n
    return {
        "requests": 4,
        "batched_tok_s": round(total / statistics.median(batch_s), 2),
        "sequential_tok_s": round(total / statistics.median(seq_s), 2),
        "batched_vs_sequential": round(
            statistics.median(s / b for s, b in zip(seq_s, batch_s, strict=True)), 3
        ),
        "same_tokens_as_sequential": same,
        "merged_sequential_tok_s": round(total / statistics.median(merged_s), 2),
        "merged_dtype": str(rt.merged_dtype).removeprefix("torch."),
        "merged_path": rt.decode_choice.label,
    }


def _served_copy(rt: Runtime, names: list[str]) -> Any:
    """A merged copy of `names` as the runtime serves it (its chosen path)."""
    model = merged_copy(rt.model, names, rt.merged_dtype)
    if rt.decode_choice.path == "int8":
        choice = rt.decode_choice
        int8_decode_copy(model, choice.act_dtype or rt.merged_dtype, fuse=choice.fused)
    return model


def _structured(rt: Runtime) -> dict[str, Any]:
    """One constrained call end to end on the production path (merged, cached triple)."""

    class Pick(BaseModel):
        retailer: Literal["alpha", "beta", "gamma", "delta"]
        budget: int = Field(ge=0, le=1_000_000)
        month: Literal["march", "april", "may"]

    rt.decode = "merged"  # the production path, on the adapters already loaded
    try:
        rt.prepare(TRIPLES[0], "acme")
        gen = rt.generate(
            [{"role": "user", "content": SHORT_PROMPT}],
            TRIPLES[0],
            "acme",
            max_new_tokens=48,
            json_schema=Pick,
        )
    finally:
        rt.decode = "lora"
    return {
        "valid": gen.parsed is not None,
        "text": gen.text,
        "tokens": gen.tokens,
        "seconds": round(gen.seconds, 3),
        "tok_s": round(gen.tokens / gen.seconds, 2) if gen.seconds else None,
        "decode": gen.decode,
    }


def _targets(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    best = r["decode_path"]["lever"]
    values = {
        "warm_load_s": r["warm_load_s"],
        "adapter_switch_ms_p50": r["adapter_switch_ms_p50"],
        "composed_cat_vs_base": r["vs_base"]["composed_cat"],
        "composed_production_vs_base": r["vs_base"][best],
        "batched_vs_sequential": r["batched"]["batched_vs_sequential"],
        "composed_tok_s_production": r["tok_s"][best],
    }
    out = {}
    for key, (op, target) in TARGETS.items():
        value = values[key]
        met = value < target if op == "<" else value >= target
        out[key] = {"value": value, "target": f"{op} {target}", "met": met}
    out["production_path"] = {"value": best}
    return out
