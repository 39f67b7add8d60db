"""`rmn train`: train LoRA adapters (SFT, then optionally DPO) and write them to `adapters/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.common import JsonOption, emit, progress_enabled, user_errors

app = typer.Typer(
    help="Train LoRA adapters on the base model (SFT, DPO); writes adapters/<kind>/<name>/.",
    no_args_is_help=True,
)

KindOption = typer.Option(..., "--kind", help="retailer, brand or task.")
NameOption = typer.Option(
    ..., "--name", help="Adapter id: alpha..delta, acme/globex/..., planning or creative."
)
RankOption = typer.Option(16, "--rank", min=1, max=256, help="LoRA rank.")
AlphaOption = typer.Option(None, "--alpha", help="LoRA alpha (default: 2 x rank).")
BatchOption = typer.Option(4, "--batch-size", min=1, help="Rows per step.")
AccumOption = typer.Option(1, "--grad-accum", min=1, help="Gradient accumulation steps.")
MaxLengthOption = typer.Option(
    512, "--max-length", min=32, help="Truncate rows to this many tokens."
)
TargetsOption = typer.Option(
    "attention", "--targets", help="LoRA target modules: attention (q,k,v,o) or all-linear."
)
PrecisionOption = typer.Option(
    "bf16", "--precision", help="bf16 (mixed, about 2x faster on CPUs with AVX-512 BF16) or fp32."
)
SeedOption = typer.Option(0, "--seed", help="Seeds the data split, sampling and initialization.")
QloraOption = typer.Option(
    False, "--qlora", help="Train on a 4-bit quantized base (bitsandbytes; needs CUDA)."
)
ResumeOption = typer.Option(
    False, "--resume", help="Continue from the last checkpoint of an interrupted run."
)
SaveEveryOption = typer.Option(20, "--save-every", min=1, help="Checkpoint every N steps.")
OutOption = typer.Option(None, "--out", help="Adapters root (default: adapters/).")
EvalOption = typer.Option(
    False, "--eval", help="Evaluate base vs adapter afterwards and record it in metadata.json."
)
EvalLimitOption = typer.Option(30, "--eval-limit", min=1, help="Held-out items for --eval.")
BaseOption = typer.Option(
    "smollm2", "--base", hidden=True, help="Base model: smollm2, or tiny-random-llama for tests."
)


def _options(**kw: Any) -> Any:
    from adapters.registry import adapters_root
    from adapters.training.sft import TARGETS, TrainOptions
    from tools.errors import RMNError

    out = kw.pop("out")
    if kw["precision"] not in ("bf16", "fp32"):
        raise RMNError("--precision must be bf16 or fp32", precision=kw["precision"])
    if kw.get("targets", "attention") not in TARGETS:
        raise RMNError(f"--targets must be one of {', '.join(TARGETS)}", targets=kw["targets"])
    return TrainOptions(out=Path(out) if out else adapters_root(), **kw)


def _finish(result: Any, run_eval: bool, eval_limit: int, as_json: bool) -> None:
    payload: dict[str, Any] = {
        "adapter": str(result.path),
        "name": result.metadata.name,
        "steps": result.metadata.training.steps,
        "seconds": round(result.seconds, 1),
        "final_loss": result.final_loss,
        "training": result.metadata.training.model_dump(),
    }
    if run_eval:
        from adapters.training.evaluate import evaluate_adapter

        scores = evaluate_adapter(result.path, limit=eval_limit, progress=progress_enabled())
        payload["eval"] = scores
    emit(payload, as_json, _render)


def _render(p: dict[str, Any]) -> str:
    loss = "n/a" if p["final_loss"] is None else f"{p['final_loss']:.4f}"
    lines = [
        f"wrote {p['adapter']} ({p['name']}): {p['steps']} steps in {p['seconds']:.0f} s, "
        f"final loss {loss}",
        f"reproduce: {p['training']['command']}",
    ]
    if "eval" in p:
        from cli.eval import render_scores

        lines += ["", render_scores(p["eval"])]
    return "\n".join(lines)


@app.command()
def sft(
    kind: str = KindOption,
    name: str = NameOption,
    steps: int = typer.Option(120, "--steps", min=1, help="Optimizer steps."),
    rank: int = RankOption,
    alpha: float | None = AlphaOption,
    lr: float = typer.Option(2e-4, "--lr", help="Learning rate (cosine schedule, 5% warmup)."),
    batch_size: int = BatchOption,
    grad_accum: int = AccumOption,
    max_length: int = MaxLengthOption,
    targets: str = TargetsOption,
    precision: str = PrecisionOption,
    seed: int = SeedOption,
    qlora: bool = QloraOption,
    resume: bool = ResumeOption,
    save_every: int = SaveEveryOption,
    out: Path | None = OutOption,
    run_eval: bool = EvalOption,
    eval_limit: int = EvalLimitOption,
    stack_on: str | None = typer.Option(
        None,
        "--stack-on",
        help="Train on top of this frozen adapter (e.g. task/creative for a brand adapter), "
        "the way the runtime combines them.",
    ),
    base: str = BaseOption,
    json: bool = JsonOption,
) -> None:
    """Supervised fine-tuning of one adapter from the base model (TRL SFTTrainer + LoRA)."""
    with user_errors(json):
        from adapters.training.sft import train_sft

        options = _options(
            steps=steps,
            rank=rank,
            alpha=alpha,
            lr=lr,
            batch_size=batch_size,
            grad_accum=grad_accum,
            max_length=max_length,
            targets=targets,
            precision=precision,
            seed=seed,
            qlora=qlora,
            resume=resume,
            save_every=save_every,
            out=out,
            base=base,
            stack_on=stack_on,
        )
        result = train_sft(kind, name, options, progress=progress_enabled())
        _finish(result, run_eval, eval_limit, json)


@app.command()
def dpo(
    kind: str = KindOption,
    name: str = NameOption,
    from_adapter: str = typer.Option(
        ..., "--from-adapter", help="The SFT adapter to start from (folder or kind/id)."
    ),
    steps: int = typer.Option(40, "--steps", min=1, help="Optimizer steps."),
    lr: float = typer.Option(5e-5, "--lr", help="Learning rate."),
    beta: float = typer.Option(0.1, "--beta", help="DPO beta: how far from the SFT adapter."),
    mine: int = typer.Option(
        0,
        "--mine",
        min=0,
        help="Also mine pairs on-policy: the adapter answers N training prompts and its wrong "
        "answers become rejected examples.",
    ),
    batch_size: int = BatchOption,
    grad_accum: int = AccumOption,
    max_length: int = MaxLengthOption,
    precision: str = PrecisionOption,
    seed: int = SeedOption,
    qlora: bool = QloraOption,
    resume: bool = ResumeOption,
    save_every: int = SaveEveryOption,
    out: Path | None = OutOption,
    run_eval: bool = EvalOption,
    eval_limit: int = EvalLimitOption,
    json: bool = JsonOption,
) -> None:
    """Preference tuning (TRL DPOTrainer) of an SFT adapter on compliant vs flawed answers."""
    with user_errors(json):
        from adapters.training.dpo import train_dpo

        options = _options(
            steps=steps,
            lr=lr,
            beta=beta,
            mine=mine,
            batch_size=batch_size,
            grad_accum=grad_accum,
            max_length=max_length,
            precision=precision,
            seed=seed,
            qlora=qlora,
            resume=resume,
            save_every=save_every,
            out=out,
        )
        result = train_dpo(kind, name, from_adapter, options, progress=progress_enabled())
        _finish(result, run_eval, eval_limit, json)


if __name__ == "__main__":
    app()
