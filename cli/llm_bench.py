"""`rmn bench llm`: base-model load times, adapter switching and composition, decode speed."""

from __future__ import annotations

from typing import Any

import typer

from cli.common import JsonOption, emit, progress_enabled, user_errors


def _cpu_lines(r: dict[str, Any]) -> list[str]:
    cpu, path = r["cpu"], r["decode_path"]
    return [
        f"cpu flags: {' '.join(cpu['flags']) or '-'}; torch dispatch {cpu['torch_capability']}, "
        f"oneDNN cap {cpu['onednn_max_cpu_isa'] or '-'}; native bf16: {cpu['native_bf16']}",
        f"decode path chosen: merged/{path['label']} ({path['reason']})",
    ]


def _human_paths(r: dict[str, Any]) -> str:
    lines = _cpu_lines(r)
    lines.append(
        f"tokens/s, composed triple merged, batch 1, {r['new_tokens']} new tokens, "
        f"median of {r['rounds']} ({r['threads']} threads):"
    )
    quality = r["quality_vs_fp32_composed"]
    for name, value in r["tok_s"].items():
        q = quality[name]
        lines.append(
            f"  {name:<36} {value:>7.2f}  x{r['vs_fp32'][name]:.2f} fp32  top-1 agreement "
            f"{q['top1_agreement']:.3f} (worst prompt {q['worst_prompt']:.3f})"
        )
    rt = r["runtime"]
    lines.append(f"runtime end to end ({rt['decode']}): {rt['tok_s_median']} tok/s")
    return "\n".join(lines)


def _human(r: dict[str, Any]) -> str:
    lines = _cpu_lines(r)
    cold = r.get("cold_load")
    if isinstance(cold, dict) and "from_gguf_s" in cold:
        lines.append(
            f"cold load (GGUF -> safetensors, empty cache): {cold['from_gguf_s']} s "
            f"(+{cold['imports_s']} s imports)"
        )
    lines.append(f"warm load: {r['warm_load_s']} s   adapters: {r['adapters']}")
    lines.append(
        f"adapter load {r['adapter_load_s_p50']} s, cat build {r['composition_build_s_p50']} s "
        f"({r['composition_mb']} MB), merged build {r['merged_build_s_p50']} s, "
        f"switch p50 {r['adapter_switch_ms_p50']} ms (PEFT set_adapter "
        f"{r['peft_set_adapter_ms_p50']} ms)"
    )
    lines.append(f"tokens/s, batch 1, {r['new_tokens']} new tokens, median of {r['rounds']}:")
    quality = r["quality_vs_fp32_composed"]
    for name, value in r["tok_s"].items():
        q = quality.get(name)
        agree = f"  top-1 agreement {q['top1_agreement']:.3f}" if q else ""
        lines.append(f"  {name:<28} {value:>7.2f}  x{r['vs_base'][name]:.2f} base{agree}")
    b = r["batched"]
    lines.append(
        f"4 requests, different triples: batched {b['batched_tok_s']} tok/s vs sequential "
        f"{b['sequential_tok_s']} ({b['batched_vs_sequential']}x, same tokens: "
        f"{b['same_tokens_as_sequential']}); merged one by one {b['merged_sequential_tok_s']}"
    )
    s = r["structured"]
    lines.append(f"constrained JSON ({s['decode']}): valid={s['valid']} {s['tok_s']} tok/s")
    lines.append(f"static cache + compile: {r['static_cache_compile']}")
    for key, t in r["targets"].items():
        if "target" in t:
            lines.append(
                f"  target {key}: {t['value']} ({t['target']}) {'ok' if t['met'] else 'MISSED'}"
            )
    return "\n".join(lines)


def llm(
    json: bool = JsonOption,
    new_tokens: int = typer.Option(64, "--new-tokens", min=8, help="Tokens per generation."),
    rounds: int = typer.Option(3, "--rounds", min=1, help="Timed rounds; medians reported."),
    cold: bool = typer.Option(
        True, "--cold/--no-cold", help="Also time a GGUF conversion in a fresh process."
    ),
    compile_model: bool = typer.Option(
        False, "--compile", help="Also time static KV cache + torch.compile (minutes on CPU)."
    ),
    threads: int = typer.Option(0, "--threads", min=0, help="Torch threads (0: default)."),
    paths_only: bool = typer.Option(
        False,
        "--paths-only",
        help="Only the merged decode paths (fp32, bf16, int8 weight-only) and the runtime's "
        "choice, with top-1 agreement over several prompts (about a minute).",
    ),
) -> None:
    """Time the LLM runtime: loads, adapter switching and composition, tokens/s per decode path.
    The CPU flags seen and the decode path the runtime chose are part of the report."""
    with user_errors(json):
        from adapters.bench import run_llm_bench
        from adapters.bench_paths import run_decode_paths_bench

        log = (lambda line: typer.echo(line, err=True)) if progress_enabled() else None
        if paths_only:
            emit(run_decode_paths_bench(new_tokens, rounds, threads, log), json, _human_paths)
            return
        emit(run_llm_bench(new_tokens, rounds, cold, compile_model, threads, log), json, _human)
