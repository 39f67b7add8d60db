"""What a run request must pass before it becomes a run: options this server serves, the
input against the graph's input schema and the product's validator, an answer against the
interrupt it answers and the caller's right to give it (roles, separation of duties), the
context fields a client may set, and the config a run gets."""

from __future__ import annotations

import re
import uuid
from dataclasses import is_dataclass
from typing import Any

import jsonschema
from langgraph.types import Interrupt
from pydantic import TypeAdapter, ValidationError

from graph.serving.errors import InvalidRequestError, StaleDecisionError
from graph.serving.policy import Caller, check_answer
from graph.serving.schemas import RunCreate, problems
from graph.serving.settings import ServerSettings

STREAM_MODES: tuple[str, ...] = ("values", "updates", "custom")
# Run options of the protocol this server refuses rather than ignores: a client relying on
# them would get a different run than it asked for.
UNSUPPORTED = (
    "interrupt_before",
    "interrupt_after",
    "checkpoint",
    "checkpoint_id",
    "webhook",
    "after_seconds",
)

# LangGraph's interrupt ids (xxh3-128 hex digests): a resume dict keyed by them answers
# interrupts by id (`Command(resume={interrupt_id: value})`).
INTERRUPT_ID = re.compile(r"^[0-9a-f]{32}$")

__all__ = ["STREAM_MODES", "RunChecks", "answered", "is_id_map"]


def is_id_map(value: Any) -> bool:
    """Whether a resume value answers interrupts by id: a dict keyed by interrupt ids."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and INTERRUPT_ID.match(k) for k in value)
    )


def answered(value: Any, pending: list[Interrupt]) -> list[tuple[Interrupt, Any]]:
    """(interrupt, answer) pairs a resume value gives: a dict keyed by pending interrupt ids
    answers those; anything else answers the first pending interrupt. (`RunChecks.resume`
    has refused an id that is not pending.)"""
    by_id = {i.id: i for i in pending}
    if is_id_map(value) and set(value) <= set(by_id):
        return [(by_id[k], v) for k, v in value.items()]
    return [(i, value) for i in pending[:1]]


class RunChecks:
    """The checks of one served graph: its input schema and context schema, and the settings'
    validators. Each check answers what the run uses, or raises `InvalidRequestError`."""

    def __init__(self, graph: Any, settings: ServerSettings) -> None:
        self.settings = settings
        schema = graph.get_input_jsonschema()
        self._input_validator = jsonschema.validators.validator_for(schema)(schema)
        self._context_adapter: TypeAdapter[Any] | None = None
        context_schema = getattr(graph, "context_schema", None)
        if context_schema is not None and (
            is_dataclass(context_schema) or isinstance(context_schema, type)
        ):
            try:
                self._context_adapter = TypeAdapter(context_schema)
            except Exception:  # a schema pydantic cannot describe is checked by the graph itself
                self._context_adapter = None

    def options(self, body: RunCreate) -> list[str]:
        """The options this server serves; answers the stream modes to send."""
        for name in UNSUPPORTED:
            if getattr(body, name):
                raise InvalidRequestError(f"{name} is not supported by this server", field=name)
        if body.multitask_strategy not in ("reject", "enqueue"):
            raise InvalidRequestError(
                f"multitask_strategy {body.multitask_strategy!r} is not supported; "
                "use 'reject' or 'enqueue'",
                field="multitask_strategy",
            )
        return stream_modes(body.stream_mode)

    def graph_input(self, tenant: str, body: RunCreate) -> tuple[Any, bool]:
        """(what the graph runs on, whether it resumes): the checked input of a new request,
        or the answer to the pending interrupt (checked against it when the run starts)."""
        if body.command is None:
            if body.input is None:
                raise InvalidRequestError(
                    "a run needs input (a new request) or command.resume (an answer to the "
                    "pending interrupt)",
                    field="input",
                )
            return self.input(tenant, body.input), False
        if body.input is not None:
            raise InvalidRequestError("send either input or command, not both")
        if body.command.update is not None or body.command.goto not in (None, [], ""):
            raise InvalidRequestError(
                "command.update and command.goto are not accepted: the graph's state changes "
                "only through its own nodes; answer an interrupt with command.resume",
                field="command",
            )
        return body.command.resume, True

    def input(self, tenant: str, value: dict[str, Any]) -> dict[str, Any]:
        err = next(iter(self._input_validator.iter_errors(value)), None)
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path) or "(top)"
            raise InvalidRequestError(f"input is invalid: {where}: {err.message}", field="input")
        if self.settings.validate_input is not None:
            value = self.settings.validate_input(tenant, value)
        return value

    def resume(self, value: Any, pending: list[Interrupt]) -> None:
        """An answer is for a question pending now and fits it: an interrupt id that is not
        pending, or a plan version (`answer_version`) other than its question's, is a stale
        decision (409); then its `response_schema`, else the settings' `resume_model`. A
        dict keyed by interrupt ids answers several."""
        if is_id_map(value):
            gone = sorted(set(value) - {i.id for i in pending})
            if gone:
                raise self._stale(f"it answers interrupt {gone[0]}, which is not pending", pending)
        for item, answer in answered(value, pending):
            named = self.settings.answer_version(answer) if self.settings.answer_version else None
            current = self._current([item]) or {}
            if named is not None and named != current.get("plan_version"):
                raise self._stale(f"it answers plan version {named}", [item])
            self._fits(item, answer)

    def pin(self, thread_id: str, value: Any, pending: list[Interrupt]) -> Any:
        """A resume queued behind another run on its thread answers the question pending
        when it was sent, not one the run ahead will ask: it is kept as LangGraph's
        resume-by-id map, so that `resume` refuses it as stale when it starts if that question
        is gone. One that names its question (ids, a plan version) is kept as sent. With no
        question pending (the run ahead is working) it can answer none: 409 now."""
        if is_id_map(value):
            return value
        if self.settings.answer_version and self.settings.answer_version(value) is not None:
            return value
        if not pending:
            raise StaleDecisionError(
                f"stale decision: thread {thread_id} asks no question now (a run ahead of "
                "this one is working on it); answer the question it asks next",
                current=None,
            )
        return {pending[0].id: value}

    def _current(self, pending: list[Interrupt]) -> dict[str, Any] | None:
        """What names the first pending question: its interrupt id, and what the product's
        `question_ref` says (kind, plan version)."""
        if not pending:
            return None
        ref = self.settings.question_ref(pending[0].value) if self.settings.question_ref else {}
        return {"interrupt_id": pending[0].id, **ref}

    def _stale(self, why: str, pending: list[Interrupt]) -> StaleDecisionError:
        current = self._current(pending)
        now = (
            "no question is pending"
            if current is None
            else "the question now pending is "
            + ", ".join(f"{k} {v}" for k, v in current.items() if v is not None)
        )
        return StaleDecisionError(
            f"stale decision: {why}; {now}. Read the thread's state and answer that question",
            current=current,
        )

    def _fits(self, item: Interrupt, answer: Any) -> None:
        schema = getattr(item, "response_schema", None)
        if isinstance(schema, dict):
            try:
                jsonschema.validate(answer, schema)
            except jsonschema.ValidationError as err:
                where = "/".join(str(p) for p in err.absolute_path) or "(top)"
                raise InvalidRequestError(
                    f"resume value does not fit the interrupt: {where}: {err.message}",
                    field="command.resume",
                ) from None
        elif self.settings.resume_model is not None:
            try:
                self.settings.resume_model.model_validate(answer)
            except ValidationError as err:
                raise InvalidRequestError(
                    f"resume value is invalid: {problems(err.errors())}",
                    field="command.resume",
                    expected=self.settings.resume_model.model_json_schema(),
                ) from None

    def authorize_answer(
        self, caller: Caller, value: Any, pending: list[Interrupt], started_by: str | None
    ) -> None:
        """Whether the caller may give this answer (`graph.serving.policy`): its role, and
        separation of duties on an approval. Called next to `resume`, which checks its shape."""
        settings = self.settings
        policy = settings.policies.for_tenant(caller.tenant)
        for item, answer in answered(value, pending):
            amount = settings.approval_amount(item.value) if settings.approval_amount else None
            approves = bool(settings.approves(answer)) if settings.approves else False
            check_answer(
                caller,
                policy,
                amount=None if amount is None else float(amount),
                approves=approves,
                started_by=started_by,
            )

    def context(self, caller: Caller, client: dict[str, Any]) -> Any:
        """The run's context: the client's allowed fields, then the server's fields, the
        tenant's policy fields (`tenant_context`) and the caller's key id over them, and the
        tenant of the key always."""
        allowed = self.settings.client_context_fields
        refused = sorted(set(client) - allowed)
        if refused:
            raise InvalidRequestError(
                f"context fields {refused} cannot be set by clients; settable: {sorted(allowed)}",
                field="context",
            )
        tenant = caller.tenant
        merged = {**client, **self.settings.server_context}
        if self.settings.tenant_context is not None:
            policy = self.settings.policies.for_tenant(tenant)
            merged.update(self.settings.tenant_context(tenant, policy))
        if self.settings.actor_field:
            merged[self.settings.actor_field] = caller.key_id
        merged[self.settings.tenant_field] = tenant
        if self._context_adapter is None:
            return merged
        try:
            return self._context_adapter.validate_python(merged)
        except ValidationError as err:
            raise InvalidRequestError(
                f"context is invalid: {problems(err.errors())}", field="context"
            ) from None

    def config(
        self,
        key: str,
        run_id: str,
        assistant: dict[str, Any],
        client: dict[str, Any],
        metadata: dict[str, Any],
        thread_id: str,
    ) -> dict[str, Any]:
        """The run's config: its thread's checkpoints (under the thread's `key`), the
        recursion limit, tags and metadata (with the thread id its tenant knows)."""
        # Configurable values from the client are dropped: runtime options go through the
        # context, and the checkpoint a run writes to is always its own thread's.
        limit = client.get("recursion_limit", self.settings.recursion_limit)
        if not isinstance(limit, int) or not 1 <= limit <= self.settings.recursion_limit:
            raise InvalidRequestError(
                f"config.recursion_limit must be an integer in 1..{self.settings.recursion_limit}",
                field="config.recursion_limit",
            )
        tags = [t for t in client.get("tags") or [] if isinstance(t, str)]
        return {
            "configurable": {"thread_id": key},
            "recursion_limit": limit,
            "tags": tags,
            "run_id": uuid.UUID(run_id),
            "metadata": {
                **{k: v for k, v in metadata.items() if isinstance(k, str)},
                "run_id": run_id,
                "thread_id": thread_id,
                "assistant_id": assistant["assistant_id"],
                "graph_id": assistant["graph_id"],
            },
        }


def stream_modes(value: str | list[str]) -> list[str]:
    modes = [value] if isinstance(value, str) else list(value)
    bad = [m for m in modes if m not in STREAM_MODES]
    if bad or not modes:
        raise InvalidRequestError(
            f"stream mode(s) {bad or modes} not served; use {', '.join(STREAM_MODES)}",
            field="stream_mode",
        )
    return list(dict.fromkeys(modes))
