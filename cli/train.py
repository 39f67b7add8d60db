"""`rmn train`: train LoRA adapters (SFT, then optionally DPO) and write them to `adapters/`."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.common import JsonOption, emit, progress_enabled, user_errors
from cli.eval import render_scores
from tools.errors import RMNError

if TYPE_CHECKING:
    from adapters.training.trainer import TrainOptions

app = typer.Typer(
    help="Train LoRA adapters on the base model (SFT, DPO); writes adapters/<kind>/<name>/.",
    no_args_is_help=True,
)

# The options the sft and dpo commands share, each declared once; a command gives the default.
Kind = Annotated[str, typer.Option("--kind", help="retailer, brand or task.")]
Name = Annotated[
    str,
    typer.Option("--name", help="Adapter id: alpha..delta, acme/globex/..., planning or creative."),
]
Steps = Annotated[int, typer.Option("--steps", min=1, help="Optimizer steps.")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Rows per step.")]
GradAccum = Annotated[int, typer.Option("--grad-accum", min=1, help="Gradient accumulation steps.")]
MaxLength = Annotated[
    int, typer.Option("--max-length", min=32, help="Truncate rows to this many tokens.")
]
Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="bf16 (mixed, about 2x faster on CPUs with AVX-512 BF16) or fp32.",
    ),
]
Seed = Annotated[
    int, typer.Option("--seed", help="Seeds the data split, sampling and initialization.")
]
Qlora = Annotated[
    bool,
    typer.Option("--qlora", help="Train on a 4-bit quantized base (bitsandbytes; needs CUDA)."),
]
Resume = Annotated[
    bool, typer.Option("--resume", help="Continue from the last checkpoint of an interrupted run.")
]
SaveEvery = Annotated[int, typer.Option("--save-every", min=1, help="Checkpoint every N steps.")]
Out = Annotated[Path | None, typer.Option("--out", help="Adapters root (default: adapters/).")]
RunEval = Annotated[
    bool,
    typer.Option(
        "--eval", help="Evaluate base vs adapter afterwards and record it in metadata.json."
    ),
]
EvalLimit = Annotated[int, typer.Option("--eval-limit", min=1, help="Held-out items for --eval.")]


def _options(params: dict[str, Any]) -> TrainOptions:
    """The `TrainOptions` among a command's parameters (named as its fields), checked."""
    # In here, not at the top: adapters.registry loads pydantic, which `rmn --help` need not.
    from adapters.registry import adapters_root
    from adapters.training.sft import TARGETS
    from adapters.training.trainer import TrainOptions

    kw = {f.name: params[f.name] for f in fields(TrainOptions) if f.name in params}
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
        lines += ["", render_scores(p["eval"])]
    return "\n".join(lines)


@app.command()
def sft(
    kind: Kind,
    name: Name,
    steps: Steps = 120,
    rank: Annotated[int, typer.Option("--rank", min=1, max=256, help="LoRA rank.")] = 16,
    alpha: Annotated[
        float | None, typer.Option("--alpha", help="LoRA alpha (default: 2 x rank).")
    ] = None,
    lr: Annotated[
        float, typer.Option("--lr", help="Learning rate (cosine schedule, 5% warmup).")
    ] = 2e-4,
    batch_size: BatchSize = 4,
    grad_accum: GradAccum = 1,
    max_length: MaxLength = 512,
    targets: Annotated[
        str,
        typer.Option("--targets", help="LoRA target modules: attention (q,k,v,o) or all-linear."),
    ] = "attention",
    precision: Precision = "bf16",
    seed: Seed = 0,
    qlora: Qlora = False,
    resume: Resume = False,
    save_every: SaveEvery = 20,
    out: Out = None,
    run_eval: RunEval = False,
    eval_limit: EvalLimit = 30,
    stack_on: Annotated[
        str | None,
        typer.Option(
            "--stack-on",
            help="Train on top of this frozen adapter (e.g. task/creative for a brand adapter), "
            "the way the runtime combines them.",
        ),
    ] = None,
    base: Annotated[
        str,
        typer.Option(
            "--base", hidden=True, help="Base model: smollm2, or tiny-random-llama for tests."
        ),
    ] = "smollm2",
    json: bool = JsonOption,
) -> None:
    """Supervised fine-tuning of one adapter from the base model (TRL SFTTrainer + LoRA)."""
    params = dict(locals())  # first: the parameters, named as TrainOptions fields
    with user_errors(json):
        from adapters.training.sft import train_sft

        result = train_sft(kind, name, _options(params), progress=progress_enabled())
        _finish(result, run_eval, eval_limit, json)


@app.command()
def dpo(
    kind: Kind,
    name: Name,
    from_adapter: Annotated[
        str,
        typer.Option("--from-adapter", help="The SFT adapter to start from (folder or kind/id)."),
    ],
    steps: Steps = 40,
    lr: Annotated[float, typer.Option("--lr", help="Learning rate.")] = 5e-5,
    beta: Annotated[
        float, typer.Option("--beta", help="DPO beta: how far from the SFT adapter.")
    ] = 0.1,
    mine: Annotated[
        int,
        typer.Option(
            "--mine",
            min=0,
            help="Also mine pairs on-policy: the adapter answers N training prompts and its "
            "wrong answers become rejected examples.",
        ),
    ] = 0,
    batch_size: BatchSize = 4,
    grad_accum: GradAccum = 1,
    max_length: MaxLength = 512,
    precision: Precision = "bf16",
    seed: Seed = 0,
    qlora: Qlora = False,
    resume: Resume = False,
    save_every: SaveEvery = 20,
    out: Out = None,
    run_eval: RunEval = False,
    eval_limit: EvalLimit = 30,
    json: bool = JsonOption,
) -> None:
    """Preference tuning (TRL DPOTrainer) of an SFT adapter on compliant vs flawed answers."""
    params = dict(locals())  # first: the parameters, named as TrainOptions fields
    with user_errors(json):
        from adapters.training.dpo import train_dpo

        options = _options(params)
        result = train_dpo(kind, name, from_adapter, options, progress=progress_enabled())
        _finish(result, run_eval, eval_limit, json)


if __name__ == "__main__":
    app()
