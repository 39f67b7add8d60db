"""The HTTP graph API for this product: the planning graph (`graph.build_graph`) behind the
LangGraph Server protocol subset that `graph.serving` implements (the protocol, tenants,
execution and persistence are described in graph/serving/__init__.py).

    from server import create_rmn_app, rmn_settings
    app = create_rmn_app(keys, rmn_settings(state_dir))

What this module fits to the planning graph: its brief check before a run; its checkpoints in
the data directory (`graph.checkpoint`, where `rmn threads`, `show` and `resume` find the
threads made over HTTP, under `<tenant>.<thread id>`); which interrupt is an approval and of how
much (separation of duties); the tenant policy's auto-approval as run context (clients may set
no context field: the model, data, tenant, key and approval policy are the server's); and what
a thread delete erases besides checkpoints (its report folder and decision records).

`rmn serve` (cli/serve.py) serves it. The serving package's public names are re-exported here,
so `from server import ServerSettings, create_app, serve_in_thread, ...` works as before.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from graph import build_graph
from graph.checkpoint import default_checkpointer
from graph.serving.app import create_app, serve_in_thread
from graph.serving.auth import KeyRing
from graph.serving.errors import (
    ApiError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    ServerBusyError,
    UnauthorizedError,
)
from graph.serving.policy import TenantPolicies, TenantPolicy
from graph.serving.runs import GraphServer
from graph.serving.settings import ServerSettings
from graph.serving.store import MetaStore
from graph.serving.threads import erase_checkpoints
from tools.brief import rule_parse
from tools.catalog import catalog_root
from tools.errors import UnknownRetailerError
from tools.governance.pii import redact_pii
from tools.paths import data_dir as default_data_dir
from tools.paths import use_catalog
from tools.plan.erase import erase_thread_records
from tools.plan.questions import question_of, question_ref
from tools.plan.review import answer_version, review_action
from tools.policy.ownership import check_brand_access, tenant_brands
from tools.rag import get_index
from tools.storage import database_url

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.pregel import Pregel

MAX_BRIEF_CHARS = 4000
SERVER_DIR = "server"  # `rmn serve`'s state under the data directory

__all__ = [
    "MAX_BRIEF_CHARS",
    "ApiError",
    "approval_amount",
    "approves",
    "ConflictError",
    "GraphServer",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "ResumeDecision",
    "ServerBusyError",
    "ServerSettings",
    "TenantPolicies",
    "TenantPolicy",
    "UnauthorizedError",
    "create_app",
    "create_rmn_app",
    "erase_planning_thread",
    "rmn_settings",
    "serve_in_thread",
    "validate_brief_input",
]


class ResumeDecision(BaseModel):
    """A reviewer's answer to one of the planning graph's interrupts."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    action: Literal["approve", "edit", "reject"]
    reason: str | None = Field(None, max_length=2000)
    changes: dict[str, Any] = Field(default_factory=dict)


def validate_brief_input(tenant: str, value: dict[str, Any]) -> dict[str, Any]:
    """The planning graph's input, checked before a run starts: a brief the rules can read
    (a budget, known retailers), and a brand the tenant owns (its only one when none is given).
    The brief comes back with its PII redacted."""
    brief = value.get("brief")
    if not isinstance(brief, str) or not brief.strip():
        raise InvalidRequestError("input.brief must be a non-empty string", field="input.brief")
    if len(brief) > MAX_BRIEF_CHARS:
        raise InvalidRequestError(
            f"input.brief is {len(brief)} characters; at most {MAX_BRIEF_CHARS}",
            field="input.brief",
        )
    brand_id = value.get("brand_id")
    if brand_id is not None and not isinstance(brand_id, str):
        raise InvalidRequestError("input.brand_id must be a string", field="input.brand_id")
    brand = check_brand_access(tenant, brand_id, tenant_brands(tenant))
    # Kept only redacted: the run store holds this input before the graph's first checkpoint.
    brief = redact_pii(brief)
    parsed = rule_parse(brief, brand)
    for err in parsed.errors:
        if err.detail.get("field") == "retailers" and err.detail.get("retailers"):
            raise UnknownRetailerError(err.message, **err.detail)
    parsed.raise_errors()
    return {**value, "brief": brief, "brand_id": brand}


def approval_amount(value: Any) -> float | None:
    """The budget of the plan an interrupt asks to approve (None: not an approval question).
    The question is a LangChain HITL request whose args carry the summary
    (`tools.plan.questions.question_of`). A budget the question does not state counts as
    infinite: separation of duties cannot be skipped by a question that hides its amount."""
    question = question_of(value)
    if question is None or question.get("kind") != "approval":
        return None
    brief = question.get("brief")
    budget = brief.get("total_budget") if isinstance(brief, dict) else None
    if isinstance(budget, int | float) and math.isfinite(budget):
        return float(budget)
    return math.inf


def approves(answer: Any) -> bool:
    """Whether a resume value approves, in any form an answer comes in
    (`tools.plan.review`): `{"action": "approve"}`, LangChain's `{"decisions": [{"type":
    "approve"}]}` or Agent Inbox's `[{"type": "accept"}]`. Read to be safe: a list of
    decisions approving anything counts (the graph accepts only one decision)."""
    if review_action(answer) == "approve":
        return True
    decisions = answer.get("decisions") if isinstance(answer, dict) else answer
    return isinstance(decisions, list) and any(
        isinstance(d, dict) and d.get("type") in ("approve", "accept") for d in decisions
    )


def policy_context(tenant: str, policy: TenantPolicy) -> Mapping[str, Any]:
    """The planning graph's context fields a tenant's policy sets: auto-approval, on or off,
    and the confidence it needs."""
    return {
        "auto_approve": policy.auto_approve,
        "confidence_threshold": policy.auto_approve_confidence,
    }


def rmn_settings(state_dir: Path, **overrides: Any) -> ServerSettings:
    """Settings for the planning graph; `overrides` set any `ServerSettings` field and any
    server-side context field via `server_context` (`data_dir`, `reports_dir`, `model`)."""
    base = ServerSettings(
        state_dir=state_dir,
        graph_id="rmn",
        title="RMN Copilot graph API",
        # Nothing in the run context is the client's: the model, data and tenant are the
        # server's, and auto-approval (with its confidence threshold) is the tenant's policy.
        client_context_fields=frozenset(),
        tenant_context=policy_context,
        actor_field="actor",
        approval_amount=approval_amount,
        approves=approves,
        question_ref=question_ref,
        answer_version=answer_version,
        validate_input=validate_brief_input,
        resume_model=ResumeDecision,
        open_tenant="acme",
    )
    for key, value in overrides.items():
        setattr(base, key, value)

    def data() -> Path:
        given = base.server_context.get("data_dir")
        return Path(given) if given else default_data_dir()

    def reports() -> Path:
        given = base.server_context.get("reports_dir")
        return Path(given) if given else data() / "reports"

    def erase(tenant: str, key: str) -> dict[str, Any]:
        return erase_thread_records(data(), reports(), tenant=tenant, thread_id=key).model_dump()

    if "validate_input" not in overrides:
        # The brief is checked against the catalog of the data directory the server plans in.
        def validate_in_catalog(tenant: str, value: dict[str, Any]) -> dict[str, Any]:
            with use_catalog(catalog_root(data())):
                return validate_brief_input(tenant, value)

        base.validate_input = validate_in_catalog
    if "checkpointer" not in overrides:
        # The CLI's checkpoints (`RMN_CHECKPOINT_URL`, else <data>/checkpoints.sqlite).
        base.checkpointer = lambda: default_checkpointer(data())
    if "erase_thread" not in overrides:
        base.erase_thread = erase
    return base


def create_rmn_app(keys: KeyRing | None, settings: ServerSettings) -> FastAPI:
    """The planning graph (`graph.build_graph`) behind the HTTP API."""

    def factory(saver: BaseCheckpointSaver[Any]) -> Pregel[Any, Any, Any, Any]:
        app = build_graph(checkpointer=saver)
        # Open the policy index before any run: its first opening (Chroma's client) is not
        # safe from several threads at once, and concurrent first runs would all try it.
        cache = settings.server_context.get("cache_dir")
        get_index(cache=Path(cache) if cache else None, progress=False).ensure()
        return app

    return create_app(factory, keys, settings)


def erase_planning_thread(
    checkpointer: BaseCheckpointSaver[Any],
    thread_id: str,
    tenant: str,
    *,
    data_dir: Path,
    reports_dir: Path | None = None,
    state_dir: Path | None = None,
) -> dict[str, Any]:
    """A planning thread erased from every store, outside a running server (`rmn threads
    delete`): its report folder and decision rows, its checkpoints, and, for a thread made over
    HTTP (named `<tenant>.<id>`), the server's rows in `<data>/server` (`state_dir`). The
    caller has checked that the thread is the tenant's."""
    records = erase_thread_records(
        data_dir, reports_dir or data_dir / "reports", tenant=tenant, thread_id=thread_id
    )
    checkpoints = erase_checkpoints(checkpointer, thread_id)
    runs = 0
    meta = Path(state_dir or data_dir / SERVER_DIR) / "server.sqlite"
    if database_url() or meta.is_file():  # a shared database, or the server's own file
        store = MetaStore(meta)
        try:
            runs = store.delete_key(thread_id)
        finally:
            store.close()
    return {"thread_id": thread_id, "checkpoints": checkpoints, **records.model_dump(),
            "server_runs": runs}  # fmt: skip
