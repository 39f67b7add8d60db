"""What a planning thread remembers between steps (checkpointed after every node).

Values are JSON-ready (dicts, lists, strings, numbers): a thread resumes in another process,
or under `langgraph dev`, from exactly what was written. Pydantic models from `tools.plan`
go in as `model_dump(mode="json")` and come back out through `model_validate`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any


def merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Dict channel reducer: keys from the update replace the same keys, others are kept."""
    return {**(left or {}), **(right or {})}


def add_seconds(left: dict[str, float] | None, right: dict[str, float] | None) -> dict[str, float]:
    """Per-node wall time, summed over the node's runs (loops, edits, resumes)."""
    out = dict(left or {})
    for node, seconds in (right or {}).items():
        out[node] = round(out.get(node, 0.0) + float(seconds), 4)
    return out


@dataclass(kw_only=True)
class InputState:
    """What a caller sends to start a thread."""

    brief: str = field(
        default="", metadata={"description": "The plain-words brief, e.g. 'Allocate $2.5M ...'"}
    )
    brand_id: str | None = field(
        default=None,
        metadata={"description": "The brand planned for; default: the context's tenant."},
    )


@dataclass(kw_only=True)
class State(InputState):
    """The whole thread."""

    status: str = "running"
    """running, awaiting_brief_confirmation, infeasible, awaiting_approval, approved,
    rejected or failed."""
    tenant: str | None = None
    """The tenant the thread belongs to; every later step checks the caller against it."""
    thread_id: str | None = None
    error: dict[str, Any] | None = None
    """{"type", "message", ...} when a step could not go on (status failed)."""

    parsed: dict[str, Any] | None = None
    """The structured brief (`tools.brief.StructuredBrief` as JSON)."""
    constraints: dict[str, Any] = field(default_factory=dict)
    """Reviewer constraints beyond the brief: retailer_caps, excluded_skus."""
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    """Policy and brand-guide passages the planner retrieved: source, text, retailer, ..."""
    query_plan: dict[str, Any] | None = None
    """What the clean room is asked: retailers, flight days, views."""
    curves: dict[str, Any] | None = None
    """The fitted curves (`tools.pipeline.CurveSummary` as JSON; the draws stay on disk)."""
    diagnosis: dict[str, Any] | None = None
    """Why the brief cannot be met, when the optimizer finds it infeasible."""
    allocation_notes: list[str] = field(default_factory=list)
    """What the optimizer said about the allocation (solver fallbacks, dropped lines)."""
    measurement_notes: list[str] = field(default_factory=list)
    """Why a retailer's experiment could not be designed, where one could not."""
    signals: Annotated[dict[str, Any], merge] = field(default_factory=dict)
    """Measured inputs of the plan's confidence: curve_cv, coverage, constraint_slack."""

    plan: dict[str, Any] | None = None
    """The plan so far (`tools.plan.Plan` as JSON)."""
    copy_failures: list[str] = field(default_factory=list)
    """Drafts creative dropped and why (the copy that went on is compliant)."""
    copy_missing: list[str] = field(default_factory=list)
    """Retailers left without compliant copy: these need a human."""
    creative_runs: int = 0
    governance_loops: int = 0
    rejected_copy: list[dict[str, Any]] = field(default_factory=list)
    """Copy governance sent back ({retailer_id, digest, loop}); creative does not reuse it."""
    flags: list[str] = field(default_factory=list)
    """Reasons a human must review the plan (blocks auto-approval)."""
    review: dict[str, Any] | None = None
    """The last governance review: route and reasons."""
    memory: list[str] = field(default_factory=list)
    """References to the tenant's similar past plans."""

    decisions: Annotated[list[dict[str, Any]], operator.add] = field(default_factory=list)
    """Every review decision in order: {"decision": Decision, "plan": the plan it judged}."""
    next_step: str | None = None
    """Where a review sends the thread next (optimizer, clean_room, finalize, ...)."""
    report: dict[str, Any] | None = None
    """Files the finalized plan was written to."""

    adapters: Annotated[dict[str, list[str]], merge] = field(default_factory=dict)
    """Node (or node/retailer) -> the adapters active when its model ran."""
    timings: Annotated[dict[str, float], add_seconds] = field(default_factory=dict)
    """Node -> seconds spent in it."""
