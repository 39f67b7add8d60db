"""The planning graph's nodes, one module each, and what they share: the run context, the
tenant check every step makes, timing, turning a user's error into the thread's `error`, and
reading the review payloads a human resumes an interrupt with.

A node reads the state, calls a tool (or the model), and returns a partial update. Errors a user
can fix (`RMNError`) end the thread as `failed` with the message in `error`; a caller acting for
another tenant than the thread's is refused before anything is written.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graph.context import Context
from tools.errors import AccessDeniedError, RMNError

Update = dict[str, Any]
ACTIONS: tuple[str, ...] = ("approve", "edit", "reject")


class ThreadAccessError(AccessDeniedError):
    """A caller acting for a tenant other than the one the thread belongs to."""

    kind = "thread_access_denied"


class ReviewError(RMNError):
    """A resume payload that is not a valid review action (the interrupt is asked again)."""

    kind = "invalid_review"


# Raised through to the caller: writing it into the thread would let one caller spoil another's
# thread.
_PASS_THROUGH = (ThreadAccessError,)


def context_of(runtime: Any) -> Context:
    return Context.of(getattr(runtime, "context", None))


def state_get(state: Any, name: str, default: Any = None) -> Any:
    """A state field, whether the node got the state dataclass or a dict."""
    if isinstance(state, dict):
        return state.get(name, default)
    return getattr(state, name, default)


def check_tenant(state: Any, ctx: Context) -> None:
    owner = state_get(state, "tenant")
    if owner is not None and owner != ctx.tenant:
        raise ThreadAccessError(
            f"this thread belongs to tenant '{owner}'; a caller acting for '{ctx.tenant}' may "
            "not read or change it",
            tenant=ctx.tenant,
        )


def failed(err: RMNError) -> Update:
    return {"status": "failed", "error": err.to_dict(), "next_step": None}


def step(name: str) -> Callable[[Callable[..., Update]], Callable[..., Update]]:
    """Wrap a node: check the caller's tenant, time it, and turn a user's error into a failed
    thread with the error's message. Interrupts and bugs pass through."""

    def wrap(fn: Callable[..., Update]) -> Callable[..., Update]:
        @functools.wraps(fn)
        def node(state: Any, runtime: Any) -> Update:
            started = time.perf_counter()
            check_tenant(state, context_of(runtime))
            try:
                update = fn(state, runtime)
            except _PASS_THROUGH:
                raise
            except RMNError as err:
                update = failed(err)
            return {**update, "timings": {name: time.perf_counter() - started}}

        return node

    return wrap


def progress(runtime: Any, node: str) -> Callable[[str], None]:
    """A callback that sends a node's progress messages to the `custom` stream."""
    writer = getattr(runtime, "stream_writer", None)

    def say(message: str) -> None:
        if writer is not None:
            writer({"node": node, "message": message})

    return say


def now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- reviews


class ReviewAction(BaseModel):
    """What a human answers an interrupt with."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "edit", "reject"]
    changes: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None


def review_schema(actions: tuple[str, ...] = ACTIONS) -> dict[str, Any]:
    """JSON schema of a resume payload, shown to clients (Studio renders a form from it)."""
    return {
        "type": "object",
        "properties": {
            "action": {"enum": list(actions)},
            "changes": {"type": "object"},
            "reason": {"type": "string"},
        },
        "required": ["action"],
    }


def read_review(payload: Any, allowed: tuple[str, ...] = ACTIONS) -> ReviewAction:
    """A resume payload as a `ReviewAction`, or a `ReviewError` that says what is wrong."""
    if isinstance(payload, str) and payload in allowed and payload != "edit":
        payload = {"action": payload}
    if not isinstance(payload, dict):
        raise ReviewError(
            f"answer with an object like {{'action': 'approve'}}; got {type(payload).__name__}"
        )
    try:
        review = ReviewAction.model_validate(payload)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "payload"
        raise ReviewError(
            f"invalid review ({where}: {problem['msg']}); actions: {', '.join(allowed)}"
        ) from None
    if review.action not in allowed:
        raise ReviewError(
            f"'{review.action}' is not possible here; choose one of {', '.join(allowed)}"
        )
    if review.action == "edit" and not review.changes:
        raise ReviewError("an edit needs changes, e.g. {'roas_floor': 2.0}")
    if review.action == "reject" and not (review.reason or "").strip():
        raise ReviewError("a rejection needs a reason")
    return review


def ask_review(
    question: dict[str, Any],
    parsed: dict[str, Any],
    constraints: dict[str, Any],
    *,
    allowed: tuple[str, ...] = ACTIONS,
    gtins: set[str] | None = None,
) -> tuple[ReviewAction, dict[str, Any] | None, dict[str, Any] | None]:
    """Interrupt with `question` until the answer is a valid review; an edit counts only once
    its changes apply. Returns the review and, for an edit, the new brief and constraints."""
    from langgraph.types import interrupt

    problem: str | None = None
    while True:
        answer = interrupt(question | {"error": problem}, response_schema=review_schema(allowed))
        try:
            review = read_review(answer, allowed)
            if review.action != "edit":
                return review, None, None
            new_parsed, new_constraints = apply_changes(
                parsed, constraints, review.changes, gtins=gtins
            )
            return review, new_parsed, new_constraints
        except RMNError as err:
            problem = err.message


def decision_entry(decision: Any, plan: Any) -> dict[str, Any]:
    """One entry of the thread's `decisions`: the decision and the plan it judged."""
    return {
        "decision": decision.model_dump(mode="json"),
        "plan": plan.model_dump(mode="json", by_alias=True),
    }


# --------------------------------------------------------------------------- edits

CONSTRAINT_FIELDS: tuple[str, ...] = ("retailer_caps", "excluded_skus", "min_spend_fraction")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value]
    raise ReviewError(f"expected a list or a comma-separated string, got {value!r}")


def apply_changes(
    parsed: dict[str, Any],
    constraints: dict[str, Any],
    changes: dict[str, Any],
    *,
    gtins: set[str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The brief and constraints after a reviewer's changes, validated: brief fields (see
    `tools.brief.BRIEF_FIELDS`), `retailer_caps` ({retailer: USD}, or `retailer_caps.<id>`;
    null lifts a cap), `excluded_skus` (GTINs held at zero spend) and `min_spend_fraction`
    (the share of the spendable budget the plan must place; null: all). Raises
    `ReviewError`."""
    from tools.brief import BRIEF_FIELDS, StructuredBrief, brand_retailers

    allowed = (*BRIEF_FIELDS, *CONSTRAINT_FIELDS)
    brief_changes: dict[str, Any] = {}
    caps = dict(constraints.get("retailer_caps") or {})
    excluded = list(constraints.get("excluded_skus") or [])
    fraction = constraints.get("min_spend_fraction")
    for key, value in changes.items():
        if key.startswith("retailer_caps."):
            caps_update: Any = {key.split(".", 1)[1]: value}
            key, value = "retailer_caps", caps_update
        if key not in allowed:
            raise ReviewError(f"cannot change {key!r}; changeable: {', '.join(allowed)}")
        if key == "retailer_caps":
            if not isinstance(value, dict):
                raise ReviewError("retailer_caps takes {retailer: USD}, e.g. {'alpha': 500000}")
            for retailer, cap in value.items():
                if cap is None:
                    caps.pop(retailer, None)
                    continue
                try:
                    usd = float(cap)
                except (TypeError, ValueError):
                    raise ReviewError(f"cap for {retailer!r} is not a number: {cap!r}") from None
                if not usd >= 0:
                    raise ReviewError(f"cap for {retailer!r} must be 0 or more, got {cap!r}")
                caps[retailer] = usd
        elif key == "excluded_skus":
            excluded = sorted(set(_as_list(value)))
        elif key == "min_spend_fraction":
            try:
                fraction = None if value is None else float(value)
            except (TypeError, ValueError):
                raise ReviewError(f"min_spend_fraction is not a number: {value!r}") from None
            if fraction is not None and not 0 < fraction <= 1:
                raise ReviewError(f"min_spend_fraction must be in (0, 1], got {value!r}")
        elif key == "retailers":
            brief_changes[key] = [r.lower() for r in _as_list(value)]
        else:
            brief_changes[key] = value
    try:
        brief = StructuredBrief.model_validate({**parsed, **brief_changes})
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "brief"
        raise ReviewError(f"invalid change ({where}: {problem['msg']})") from None
    sold = brand_retailers(brief.brand_id)
    stray = [r for r in brief.retailers if r not in sold]
    if stray:
        raise ReviewError(
            f"{brief.brand_id} does not sell through {', '.join(stray)}; its retailers: "
            f"{', '.join(sold)}"
        )
    planned = brief.resolved_retailers()
    uncapped = sorted(set(caps) - set(planned))
    if uncapped:
        raise ReviewError(
            f"cap for {', '.join(uncapped)}, which the plan does not use; its retailers: "
            f"{', '.join(planned)}"
        )
    if gtins is not None:
        unknown = sorted(set(excluded) - gtins)
        if unknown:
            raise ReviewError(
                f"excluded SKU(s) {', '.join(unknown)} are not among the plan's line items"
            )
    return brief.model_dump(mode="json"), {
        "retailer_caps": caps,
        "excluded_skus": excluded,
        "min_spend_fraction": fraction,
    }
