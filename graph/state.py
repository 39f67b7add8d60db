"""What a planning thread remembers between steps (checkpointed after every node).

Values are JSON-ready (dicts, lists, strings, numbers): a thread resumes in another process,
or under `langgraph dev`, from exactly what was written. Pydantic models from `tools.plan`
go in as `model_dump(mode="json")` and come back out through `model_validate`.

The brief is kept only with its PII redacted (`<EMAIL>`, `<PHONE>`, ...): its channel's
reducer redacts every write (`redacted_brief`), and the graph's input channel redacts the
input itself (`redact_on_entry`), which LangGraph checkpoints as given (the `input`
checkpoint at step -1 and the start task's writes) before any node or reducer runs.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Annotated, Any, get_origin, get_type_hints

from langgraph.channels.ephemeral_value import EphemeralValue
from langgraph.constants import START

if TYPE_CHECKING:
    from langgraph.pregel import Pregel


def merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Dict channel reducer: keys from the update replace the same keys, others are kept."""
    return {**(left or {}), **(right or {})}


def add_seconds(left: dict[str, float] | None, right: dict[str, float] | None) -> dict[str, float]:
    """Per-node wall time, summed over the node's runs (loops, edits, resumes)."""
    out = dict(left or {})
    for node, seconds in (right or {}).items():
        out[node] = round(out.get(node, 0.0) + float(seconds), 4)
    return out


def _redact(text: str) -> str:
    """`tools.governance.pii.redact_pii`, imported on the first brief: Presidio takes 7-10 s to
    import on 2 cores (its NLP engines bring transformers), and commands that load the graph
    package without planning (`rmn keys`, `rmn db upgrade`) paid it on every call."""
    from tools.governance.pii import redact_pii

    return redact_pii(text)


def redacted_brief(left: Any, right: Any) -> Any:
    """`brief` channel reducer: the new brief, its PII redacted (a value that is not text is
    kept as sent, for the planner to refuse)."""
    return _redact(right) if isinstance(right, str) else right


def redacted_input(value: Any) -> Any:
    """The graph's input with its brief redacted (anything else as it is)."""
    if isinstance(value, dict) and isinstance(value.get("brief"), str):
        return {**value, "brief": _redact(value["brief"])}
    return value


class RedactedInput(EphemeralValue[Any]):
    """The graph's input channel (`__start__`), keeping the input with its brief redacted."""

    def update(self, values: Sequence[Any]) -> bool:
        return super().update([redacted_input(v) for v in values])


def redact_on_entry(app: Pregel[Any, Any, Any, Any]) -> Pregel[Any, Any, Any, Any]:
    """`app` (a compiled planning graph) with its input channel redacting the brief, so that
    no checkpoint, not even the input's, holds the PII a user typed into it."""
    app.channels[START] = RedactedInput(app.channels[START].typ)
    return app


# Channels whose reducer keeps a value safe to store rather than adding to it.
REDACTED_CHANNELS: tuple[str, ...] = ("brief",)


@dataclass(kw_only=True)
class InputState:
    """What a caller sends to start a thread."""

    brief: Annotated[str, redacted_brief] = field(
        default="",
        metadata={
            "description": "The plain-words brief, e.g. 'Allocate $2.5M ...' (kept with its "
            "PII redacted)"
        },
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
    """Constraints beyond the brief's budget and goal: retailer_caps and retailer_mins (the
    brief's own, then a reviewer's), excluded_skus, min_spend_fraction."""
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
    copy_cache: dict[str, Any] = field(default_factory=dict)
    """Copy written per request digest (`tools.creative.request_digest`): an edit that leaves
    a retailer's product and placement unchanged reuses its copy."""
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


# The thread's identity: kept when a new brief starts the plan over.
THREAD_FIELDS: tuple[str, ...] = ("brief", "brand_id", "tenant", "thread_id", "status")
# What a new allocation makes stale: the copy written for the old one, governance's verdicts
# on it, the flags they raised and where the last review sent the thread.
STALE_AFTER_ALLOCATION: tuple[str, ...] = (
    "creative_runs",
    "governance_loops",
    "copy_failures",
    "copy_missing",
    "rejected_copy",
    "flags",
    "review",
    "next_step",
)


def defaults(names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The `State` fields `names` at their defaults (fresh lists and dicts)."""
    out: dict[str, Any] = {}
    by_name = {f.name: f for f in fields(State)}
    for name in names:
        f = by_name[name]
        out[name] = f.default_factory() if f.default_factory is not MISSING else f.default
    return out


def accumulating() -> tuple[str, ...]:
    """The channels with a reducer that adds (`signals`, `decisions`, `adapters`,
    `timings`; not `REDACTED_CHANNELS`): an update adds to them, so a reset cannot clear
    them and they outlive a plan."""
    hints = get_type_hints(State, include_extras=True)
    return tuple(
        f.name
        for f in fields(State)
        if get_origin(hints[f.name]) is Annotated and f.name not in REDACTED_CHANNELS
    )


def per_plan_defaults() -> dict[str, Any]:
    """Every per-plan field as a new plan starts: all `State` fields but the thread's identity
    (`THREAD_FIELDS`) and the accumulating channels. The planner starts every brief from it,
    so a new brief on a thread that planned one leaves nothing of the old plan behind (the
    earlier decisions stay in `decisions`)."""
    skip = {*THREAD_FIELDS, *accumulating()}
    return defaults([f.name for f in fields(State) if f.name not in skip])


def stale_after_allocation() -> dict[str, Any]:
    """The state fields a new allocation makes stale (`STALE_AFTER_ALLOCATION`), reset; the
    plan's own (`tools.plan.STALE_AFTER_ALLOCATION`) reset by `Plan.with_allocation`."""
    return defaults(STALE_AFTER_ALLOCATION)
