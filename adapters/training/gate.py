"""The versions gate: a candidate version of an adapter replaces the current one only if it
beats it on the held-out eval (`adapters.training.evaluate`), both scored on the same items.

Scores already in a version's metadata are reused when they were made on the same dataset,
items and decoding; otherwise the version is evaluated (and its metadata updated). The primary
metric decides; on a tie, the mean of the other rate metrics (for copy: how specific it is)
does; equal on both is not better. The decision and both scores are recorded in the manifest's
history (a refusal too: `versions.refuse`, which outlives a pruned candidate's files) and in
the candidate's metadata (`eval.gate`).

A brand adapter is scored as the product serves it (`adapters.training.served`: the creative
tool's copy of the brand's held-out products, under the copy grammar), since the free eval
refused versions for breaks the served grammar never lets through; `served=False` keeps the
free eval for it. task/planning is scored as served too (`adapters.training.served_planning`:
the model alone under each brief's grammar on the hand-written sets nobody trains on or has
read). A version stacked on another adapter (`adapters.stacking`) is scored as the runtime
serves it.
A current version trained on another `task/creative` than the installed one is left out of
composition, so what it serves is the installed adapter alone: it is scored as that (the
candidate's own eval scores that adapter alone on the same items), never by stacking it on an
adapter it was not trained on, nor by reusing a score made on top of the old one. A candidate
so stacked is refused before any scoring: the runtime would never compose it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adapters.registry import AdapterMetadata, adapters_root
from adapters.stacking import stacked_as_trained, stacked_under
from adapters.training.artifacts import update_eval
from adapters.training.datasets import build_dataset
from adapters.training.evaluate import DEFAULT_LIMIT, data_digest, evaluate_adapter
from adapters.training.served import served_scores
from adapters.training.served_planning import planning_served_scores
from adapters.versions import (
    AdapterVersionError,
    now,
    promote,
    read_manifest,
    refuse,
    version_folder,
)

# The task adapters the gate scores as served by default (brand adapters always are).
SERVED_TASKS: tuple[tuple[str, str], ...] = (("task", "planning"),)


def served_by_default(kind: str, adapter_id: str) -> bool:
    return kind == "brand" or (kind, adapter_id) in SERVED_TASKS


class GateRefusedError(AdapterVersionError):
    """The candidate does not beat the current version on the held-out eval."""

    kind = "adapter_gate_refused"


def latest_candidate(folder: Path) -> str:
    manifest = read_manifest(folder)
    candidates = [v.version for v in manifest.versions if v.status == "candidate"]
    if not candidates:
        raise AdapterVersionError(
            f"{folder.parent.name}/{folder.name} has no candidate version to promote "
            f"(current: {manifest.current})"
        )
    return max(candidates, key=lambda v: int(v[1:]) if v[1:].isdigit() else 0)


def held_out_digest(kind: str, adapter_id: str, seed: int, limit: int) -> str:
    """The digest of the items the eval scores an adapter on (see `evaluate.data_digest`)."""
    return data_digest(build_dataset(kind, adapter_id, seed).eval[:limit])


def version_scores(
    folder: Path, limit: int, progress: bool = False, digest: str | None = None
) -> dict[str, Any]:
    """A version's held-out scores: its recorded eval when it was made on the same items
    (`digest`), else a fresh one (written to its metadata)."""
    meta = AdapterMetadata.read(folder)
    recorded = meta.eval
    same = digest is not None and recorded.get("data_digest") == digest
    if recorded.get("adapter") and recorded.get("items") == limit and same:
        return {
            "primary_metric": recorded["primary_metric"],
            "scores": recorded["adapter"],
            "stack_only": recorded.get("stack_only"),
            "items": limit,
            "reused": True,
        }
    result = evaluate_adapter(folder, limit=limit, write=True, progress=progress)
    stack = result.get("stacked_on") or {}
    return {
        "primary_metric": result["primary_metric"],
        "scores": result["adapter_scores"],
        "stack_only": stack.get("scores"),
        "items": result["items"],
        "reused": False,
    }


def stale_stack(folder: Path, root: Path) -> str | None:
    """For a version trained on top of another adapter: that adapter's name when the one
    installed under `root` is not the one it was trained on (the runtime leaves the version
    out of composition); None otherwise."""
    card = AdapterMetadata.read(folder).training.model_dump()
    under = stacked_under(card)
    if under is None or not (root / under / "metadata.json").is_file():
        return None
    return None if stacked_as_trained(card, under, root / under) else under


def served_alone(cand: dict[str, Any], under: str, current: str) -> dict[str, Any]:
    """The current version's scores as served when the runtime leaves it out: the installed
    `under` adapter alone, as the candidate's eval scored it on the same items."""
    if cand.get("stack_only") is None:
        raise AdapterVersionError(f"no score of {under} alone to compare {current} as served")
    return {"primary_metric": cand["primary_metric"], "scores": cand["stack_only"],
            "items": cand["items"], "reused": True,
            "served_as": f"{under} alone ({current} was trained on another {under}, so the "
                         "runtime leaves it out)"}  # fmt: skip


def _free_scores(
    folder: Path, candidate: str, current: str | None, limit: int, progress: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The candidate's and the current version's scores on the free-decoding held-out eval."""
    seed = int(getattr(AdapterMetadata.read(folder).training, "seed", 0) or 0)
    digest = held_out_digest(folder.parent.name, folder.name, seed, limit)
    cand = version_scores(version_folder(folder, candidate), limit, progress, digest)
    cur: dict[str, Any] = {}
    if current and (under := stale_stack(version_folder(folder, current), folder.parent.parent)):
        cur = served_alone(cand, under, current)
    elif current:
        cur = version_scores(version_folder(folder, current), limit, progress, digest)
    return cand, cur


def _served_scorer(kind: str, adapter_id: str) -> Callable[..., dict[str, Any]]:
    """How a version is scored as served: task/planning by the model alone on the clean
    hand-written sets, every copy adapter by the variants the product serves."""
    if (kind, adapter_id) == ("task", "planning"):
        return lambda root, version, log: planning_served_scores(root, version, log=log)
    return lambda root, version, log: served_scores(root, kind, adapter_id, version, log=log)


def _served_scores(
    folder: Path, candidate: str, current: str | None, progress: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both versions scored as the product serves them (`adapters.training.served`)."""
    root, kind, adapter_id = folder.parent.parent, folder.parent.name, folder.name
    log = (lambda line: print(line, file=sys.stderr)) if progress else None
    score = _served_scorer(kind, adapter_id)
    return score(root, candidate, log), score(root, current, log) if current else {}


def _rank(primary: str, scores: dict[str, Any]) -> tuple[float, float]:
    rates = [
        float(v)
        for k, v in scores.items()
        if k != primary and isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1
    ]
    return float(scores.get(primary, 0.0)), sum(rates) / len(rates) if rates else 0.0


def _decision(
    name: str,
    cand: dict[str, Any],
    cur: dict[str, Any],
    current: str | None,
    candidate: str,
    as_served: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The gate's result (both versions' scores and whether the candidate beats the current
    one) and the record of it kept in the manifest's history and the candidate's metadata."""
    primary = cand["primary_metric"]
    cand_rank = _rank(primary, cand["scores"])
    cur_rank = _rank(primary, cur["scores"]) if cur else (-1.0, -1.0)
    result = {
        "adapter": name,
        "primary_metric": primary,
        "items": cand["items"],
        "unit": cand.get("unit", "served variants" if as_served else "held-out items"),
        **({"served": cand["served"]} if as_served else {}),
        "current": {"version": current, "score": cur_rank[0] if cur else None,
                    "secondary": round(cur_rank[1], 4) if cur else None,
                    "scores": cur.get("scores"),
                    **({"served_as": cur["served_as"]} if "served_as" in cur else {})},
        "candidate": {"version": candidate, "score": cand_rank[0],
                      "secondary": round(cand_rank[1], 4), "scores": cand["scores"]},
        "beats_current": cand_rank > cur_rank,
        "decided_at": now(),
    }  # fmt: skip
    kept = ("primary_metric", "items", "unit", "served", "beats_current", "decided_at")
    gate = {k: result[k] for k in kept if k in result}
    # A served score is a few rates: kept whole, so a refusal says what it traded.
    keep = (lambda k: True) if as_served else (lambda k: k != "scores")
    gate |= {side: {k: v for k, v in result[side].items() if keep(k)}
             for side in ("current", "candidate")}  # fmt: skip
    return result, gate


def run_gate(
    kind: str,
    adapter_id: str,
    version: str | None = None,
    *,
    limit: int = DEFAULT_LIMIT,
    root: Path | None = None,
    progress: bool = False,
    served: bool | None = None,
) -> dict[str, Any]:
    """Score the current version and the candidate (default: the newest) on the held-out eval
    and promote the candidate if it is better; `GateRefusedError` (with both scores) if not.
    `served` (the default for brand adapters and task/planning) scores both as the product
    serves them (`adapters.training.served`, `served_planning`) instead of the free-decoding
    eval."""
    as_served = served_by_default(kind, adapter_id) if served is None else served
    if as_served and not served_by_default(kind, adapter_id):
        raise AdapterVersionError(
            f"only brand adapters and task/planning are gated as served (the served bench "
            f"writes a brand's copy; the planner reads hand-written briefs), not "
            f"{kind}/{adapter_id}"
        )
    folder = (root or adapters_root()) / kind / adapter_id
    if not (folder / "metadata.json").is_file():
        raise AdapterVersionError(f"no adapter {kind}/{adapter_id} under {folder.parent.parent}")
    manifest = read_manifest(folder)
    candidate = version or latest_candidate(folder)
    current = manifest.current
    if current == candidate:
        raise AdapterVersionError(f"{kind}/{adapter_id} {candidate} is already current")
    root_dir = folder.parent.parent
    if under := stale_stack(version_folder(folder, candidate), root_dir):
        raise AdapterVersionError(
            f"{kind}/{adapter_id} {candidate} was trained on top of another {under} than the "
            f"installed one, so the runtime would never compose it; train it again with "
            f"--stack-on {under}"
        )
    if as_served:
        cand, cur = _served_scores(folder, candidate, current, progress)
    else:
        cand, cur = _free_scores(folder, candidate, current, limit, progress)
    result, gate = _decision(f"{kind}/{adapter_id}", cand, cur, current, candidate, as_served)
    limit, unit, primary = result["items"], result["unit"], result["primary_metric"]
    cand_rank = (result["candidate"]["score"], result["candidate"]["secondary"])
    cur_rank = (result["current"]["score"], result["current"]["secondary"]) if cur else (-1, -1)
    candidate_folder = version_folder(folder, candidate)
    recorded = AdapterMetadata.read(candidate_folder).eval
    update_eval(candidate_folder, {**recorded, "gate": gate})
    if not result["beats_current"]:
        refuse(folder, candidate, scores=gate)
        raise GateRefusedError(
            f"{kind}/{adapter_id} {candidate} does not beat {current} on {limit} {unit}: "
            f"{primary} {cand_rank[0]:.3f} vs {cur_rank[0]:.3f}"
            + (f" ({current} served as {cur['served_as']})" if "served_as" in cur else "")
            + f" (secondary "
            f"{cand_rank[1]:.3f} vs {cur_rank[1]:.3f}); {current} stays current",
            gate=result,
        )
    promote(folder, candidate, scores=gate)
    result["promoted"] = True
    return result
