"""What every node of the planning graph shares: the run context, the tenant check every step
makes, timing, turning a user's error into the thread's `error`, progress messages, and the
interrupt that asks a human until the answer is a valid review.

Errors a user can fix (`RMNError`) end the thread as `failed` with the message in `error`; a
caller acting for another tenant than the thread's is refused before anything is written.
Past the planner, a node's `ctx.tenant` is therefore the thread's own tenant.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from langgraph.config import get_config
from langgraph.runtime import Runtime, get_runtime
from langgraph.types import interrupt

from graph.context import Context, served_context
from graph.state import State
from tools.catalog import catalog_root
from tools.errors import AccessDeniedError, RMNError
from tools.paths import use_catalog
from tools.pipeline import CurveSummary, replan_target, replanned_query
from tools.plan import Decision, Plan
from tools.plan.approval import ApprovalPolicy
from tools.plan.decisions import CHOSEN
from tools.plan.questions import hitl_request, plan_version
from tools.plan.review import (
    ACTIONS,
    ReviewAction,
    answer_version,
    apply_changes,
    check_version,
    read_review,
    review_schema,
)

Update = dict[str, Any]
Node = Callable[[State, Runtime[Context]], Update]


class ThreadAccessError(AccessDeniedError):
    """A caller acting for a tenant other than the one the thread belongs to."""

    kind = "thread_access_denied"


# Raised through to the caller: writing it into the thread would let one caller spoil another's
# thread.
_PASS_THROUGH = (ThreadAccessError,)


def context_of(runtime: Runtime[Context]) -> Context:
    """The run's context: the one given (a `Context` or a dict of its fields), else defaults;
    on a LangGraph server with our auth hook, the one the caller's API key allows."""
    # Checked first even when replaced: a client context naming unknown fields (such as a
    # forged `langgraph_auth_user`) fails the run rather than slipping through.
    given = Context.of(runtime.context)
    try:
        configurable = get_config().get("configurable")
    except RuntimeError:  # called outside a run (tests of a node alone)
        return given
    return served_context(given, configurable)


def check_tenant(state: State, ctx: Context) -> None:
    owner = state.tenant
    if owner is not None and owner != ctx.tenant:
        raise ThreadAccessError(
            f"this thread belongs to tenant '{owner}'; a caller acting for '{ctx.tenant}' may "
            "not read or change it",
            tenant=ctx.tenant,
        )


def failed(err: RMNError) -> Update:
    return {"status": "failed", "error": err.to_dict(), "next_step": None}


def step(name: str) -> Callable[[Node], Node]:
    """Wrap a node: check the caller's tenant, time it, and turn a user's error into a failed
    thread with the error's message. Interrupts and bugs pass through."""

    def wrap(fn: Node) -> Node:
        @functools.wraps(fn)
        def node(state: State, runtime: Runtime[Context]) -> Update:
            started = time.perf_counter()
            ctx = context_of(runtime)
            check_tenant(state, ctx)
            try:
                # The step reads the catalog of its run's data directory (`tools.catalog`).
                with use_catalog(catalog_root(ctx.data_path())):
                    update = fn(state, runtime)
            except _PASS_THROUGH:
                raise
            except RMNError as err:
                update = failed(err)
            return {**update, "timings": {name: time.perf_counter() - started}}

        return node

    return wrap


def progress(runtime: Runtime[Context], node: str) -> Callable[[str], None]:
    """A callback that sends a node's progress messages to the `custom` stream."""
    writer = runtime.stream_writer

    def say(message: str) -> None:
        writer({"node": node, "message": message})

    return say


def now() -> datetime:
    return datetime.now(UTC)


def curves_of(state: State, runtime: Runtime[Context]) -> CurveSummary:
    """The thread's fitted curves, located in the run's data directory (the state keeps their
    path relative to it)."""
    return CurveSummary.model_validate(state.curves).located(context_of(runtime).data_path())


def approval_policy(ctx: Context) -> ApprovalPolicy:
    """The run's auto-approve policy."""
    return ApprovalPolicy(enabled=ctx.auto_approve, threshold=ctx.confidence_threshold)


# --------------------------------------------------------------------------- reviews


def ask_review(
    question: dict[str, Any],
    parsed: dict[str, Any],
    constraints: dict[str, Any],
    *,
    allowed: tuple[str, ...] = ACTIONS,
    gtins: set[str] | None = None,
) -> tuple[ReviewAction, dict[str, Any] | None, dict[str, Any] | None]:
    """Interrupt with `question` (a summary with its `kind`), as a LangChain HITL request
    offering the decisions `allowed`, until the answer is a valid review of this very
    question: one naming another plan version is stale and never applied, and an edit counts
    only once its changes apply. Each invalid answer asks the same question again with an
    `error`. Returns the review and, for an edit, the new brief and constraints."""
    shown = question | {"plan_version": plan_version(question)}
    problem: str | None = None
    while True:
        answer = interrupt(
            hitl_request(question, allowed, error=problem), response_schema=review_schema(allowed)
        )
        try:
            check_version(answer_version(answer), shown)
            review = read_review(answer, allowed, shown=shown)
            check_version(review.plan_version, shown)
            if review.action != "edit":
                return review, None, None
            new_parsed, new_constraints = apply_changes(
                parsed, constraints, review.changes, gtins=gtins
            )
            return review, new_parsed, new_constraints
        except RMNError as err:
            problem = err.message


def decision_entry(decision: Decision, plan: Plan) -> dict[str, Any]:
    """One entry of the thread's `decisions`: the decision and the plan it judged."""
    return {
        "decision": decision.model_dump(mode="json"),
        "plan": plan.model_dump(mode="json", by_alias=True),
    }


def reviewed(review: ReviewAction) -> Decision:
    """A human's review as the decision recorded on the plan, with who made it: the run's
    `actor` (an API key id over HTTP), else "human"."""
    # The running node's runtime (a node always calls this inside its step).
    runtime = get_runtime(Context)
    actor = context_of(runtime).actor if runtime is not None else None
    return Decision(
        action=review.action,
        reason=review.reason,
        changes=review.changes,
        by=actor or "human",
        at=now(),
    )


def decided(plan: Plan, decision: Decision) -> Update:
    """The thread sent to finalize with `decision` on `plan`: approved or rejected."""
    return {
        "status": "approved" if decision.action in CHOSEN else "rejected",
        "next_step": "finalize",
        "decisions": [decision_entry(decision, plan)],
    }


def replan(
    parsed: dict[str, Any],
    constraints: dict[str, Any],
    tenant: str,
    curves: dict[str, Any] | None,
) -> Update:
    """An edited brief and constraints sent back to be planned again: to the optimizer, or to
    the clean room when the edit needs curves that were not fitted (another retailer, another
    flight length)."""
    return {
        "parsed": parsed,
        "constraints": constraints,
        "query_plan": replanned_query(parsed, tenant),
        "status": "replanning",
        "next_step": replan_target(parsed, curves),
    }
