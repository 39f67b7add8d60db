"""`rmn eval`: the base model and base + adapter side by side on the adapter's held-out split."""

from __future__ import annotations

from typing import Any

import typer

from cli.common import JsonOption, emit, progress_enabled, user_errors


def render_scores(result: dict[str, Any]) -> str:
    base, tuned = result["base"], result["adapter_scores"]
    primary = result["primary_metric"]
    lines = [
        f"{result['adapter']} on {result['items']} held-out items of {result['dataset']} "
        f"(greedy, max {result['decoding']['max_new_tokens']} new tokens, "
        f"{result['seconds']:.0f} s)",
        f"{'metric':<24}{'base':>10}{'adapter':>10}",
    ]
    for key, value in tuned.items():
        if isinstance(value, float | int) and not isinstance(value, bool):
            mark = " *" if key == primary else ""
            lines.append(f"{key + mark:<24}{base.get(key, 0):>10.3f}{value:>10.3f}")
    lines.append(f"* primary metric; adapter - base = {result['improvement']:+.3f}")
    if result.get("stacked_on"):
        stack = result["stacked_on"]
        lines.append(
            f"the adapter runs on top of {stack['adapter']}, which alone scores "
            f"{stack['scores'][primary]:.3f}"
        )
    return "\n".join(lines)


def eval_adapter(
    adapter: str = typer.Option(
        ..., "--adapter", help="kind/id (e.g. task/planning, retailer/gamma) or an adapter folder."
    ),
    json: bool = JsonOption,
    limit: int = typer.Option(30, "--limit", min=1, help="Held-out items to score."),
    max_new_tokens: int | None = typer.Option(
        None, "--max-new-tokens", min=1, help="Generation budget (default: per adapter kind)."
    ),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Prompts decoded together."),
    write: bool = typer.Option(
        True, "--write/--no-write", help="Record the scores in the adapter's metadata.json."
    ),
) -> None:
    """Score base vs base + adapter on held-out data: JSON validity, field matches, policy
    compliance or answer accuracy, depending on the adapter."""
    with user_errors(json):
        from adapters.training.evaluate import evaluate_adapter

        result = evaluate_adapter(
            adapter,
            limit=limit,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            write=write,
            progress=progress_enabled(),
        )
        emit(result, json, render_scores)


if __name__ == "__main__":
    typer.run(eval_adapter)
