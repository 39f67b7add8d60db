"""task/planning scored as the product serves it, for the versions gate.

The held-out eval (`adapters.training.evaluate`) decodes the planning adapter freely on 30
template briefs. The product does not: the planner asks it for the spans of a brief under the
brief's own grammar (`tools.brief.spans`), and the briefs users send are emails, threads and
notes no template writes. On the free eval v7 read 0.99 of the fields and a v8 trained on more
hand-written sets lost by one brief (0.983 against 0.988, 2026-12-05), while on hand-written
briefs the model alone read 0.85 to 0.93 of the fields of the last five blind sets. So the
planning adapter is gated on what a user gets: the model alone (no rules) under the grammar on
the hand-written sets no version trains on and whose failures nobody has read
(`PLANNING_GATE_SETS`), mean field accuracy over their gold briefs, then the share of briefs
read exactly and of valid answers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.training.served import served_root

SERVED_PLANNING_METRIC = "field_accuracy"


def field_mean(result: dict[str, Any]) -> float:
    """One set's mean field accuracy (`evaluate_parser`'s result)."""
    acc = result["field_accuracy"]
    return sum(acc.values()) / len(acc)


def _pool(results: list[dict[str, Any]]) -> dict[str, float]:
    """Rates pooled over the sets: fields weighted by each set's gold briefs (error rows have
    no fields), exact matches by its briefs, valid answers by the answers asked (a thread asks
    one per part)."""
    rows = sum(r["n"] for r in results)
    gold = sum(r["n"] - r["n_error_rows"] for r in results)
    asked = sum(r["n_answers_asked"] for r in results)
    return {
        SERVED_PLANNING_METRIC: round(
            sum(field_mean(r) * (r["n"] - r["n_error_rows"]) for r in results) / gold, 4
        ),
        "exact_match": round(sum(r["exact_match"] * r["n"] for r in results) / rows, 4),
        "json_valid_rate": round(sum(r["n_answers_valid"] for r in results) / asked, 4)
        if asked
        else 0.0,
    }


def planning_served_scores(
    root: Path,
    version: str,
    *,
    sets: tuple[str, ...] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """`version` of task/planning scored as served (module docstring), in the shape
    `gate.version_scores` returns, with the sets it was scored on and each set's mean."""
    from adapters.runtime import Runtime
    from tools.brief.dataset import HANDWRITTEN, PLANNING_GATE_SETS, load_heldout
    from tools.brief.evaluate import evaluate_parser
    from tools.brief.llm import runtime_generate_json

    names = sets or PLANNING_GATE_SETS
    results: list[dict[str, Any]] = []
    with served_root(root, "task", "planning", version) as tmp:
        generate = runtime_generate_json(runtime=Runtime.load(root=tmp))
        for name in names:
            rows = load_heldout(HANDWRITTEN[name])
            if log:
                log(f"task/planning {version}: model alone on {name} ({len(rows)} briefs)")
            results.append(evaluate_parser("llm", rows, generate))
    per_set = {name: round(field_mean(r), 4) for name, r in zip(names, results, strict=True)}
    briefs = sum(r["n"] for r in results)
    served = {"sets": list(names), "briefs": briefs, "per_set": per_set}
    return {
        "primary_metric": SERVED_PLANNING_METRIC,
        "scores": _pool(results),
        "items": served["briefs"],
        "unit": "hand-written briefs, model alone",
        "reused": False,
        "served": served,
    }
