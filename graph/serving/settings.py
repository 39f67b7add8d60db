"""How `create_app` serves a graph: `ServerSettings`, and the shapes of the callables a product
gives it (the graph factory, the input validator, what an approval question is)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from graph.serving.policy import TenantPolicies

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.pregel import Pregel

# checkpointer -> the graph compiled with it.
GraphFactory = Callable[["BaseCheckpointSaver[Any]"], "Pregel[Any, Any, Any, Any]"]
# (tenant, input) -> the input to run, or an RMNError for the client.
InputValidator = Callable[[str, dict[str, Any]], dict[str, Any]]
# An interrupt's value -> the budget of the plan it asks to approve; None: not an approval.
ApprovalAmount = Callable[[Any], "float | None"]
# A resume value -> whether it approves.
Approves = Callable[[Any], bool]
# An interrupt's value -> what names the question besides its id ({"kind", "plan_version"}).
QuestionRef = Callable[[Any], Mapping[str, Any]]
# A resume value -> the plan_version of the question it says it answers; None: it names none.
AnswerVersion = Callable[[Any], "str | None"]
# A tenant and its policy -> context fields the server sets for that tenant's runs.
TenantContext = Callable[[str, Any], Mapping[str, Any]]
# () -> the checkpointer threads are kept in; None: SQLite in `<state_dir>/checkpoints.sqlite`.
CheckpointerFactory = Callable[[], "BaseCheckpointSaver[Any]"]
# (tenant, the thread's checkpoint key) -> erase what the product keeps of a deleted thread
# outside the checkpointer (reports, decision records); answers what it erased.
ThreadEraser = Callable[[str, str], Mapping[str, Any]]

__all__ = [
    "AnswerVersion",
    "ApprovalAmount",
    "Approves",
    "CheckpointerFactory",
    "GraphFactory",
    "InputValidator",
    "QuestionRef",
    "ServerSettings",
    "TenantContext",
    "ThreadEraser",
]


@dataclass
class ServerSettings:
    """How `create_app` serves a graph. Defaults suit one machine and a few clients."""

    state_dir: Path
    graph_id: str = "agent"
    # Execution: runs at once; runs one tenant may have running at once, so a worker is free
    # for the others (None: half the workers, at least one); runs queued or running, in all
    # and per tenant (beyond them: 503 and 429); threads a tenant may keep.
    workers: int = 2
    max_running_per_tenant: int | None = None
    max_queued_runs: int = 256
    max_queued_per_tenant: int = 32
    max_threads_per_tenant: int = 10_000
    max_body_bytes: int = 64 * 1024
    # Requests per tenant (all its keys together), and wrong keys per client address.
    rate_per_s: float = 20.0
    rate_burst: int = 60
    auth_failures_burst: int = 20
    auth_failures_per_min: float = 10.0
    open_tenant: str = "local"
    tenant_field: str = "tenant"
    # The context field the caller's key id goes in (who started a run, who answered).
    actor_field: str | None = None
    server_context: Mapping[str, Any] = field(default_factory=dict)
    client_context_fields: frozenset[str] = frozenset()
    policies: TenantPolicies = field(default_factory=TenantPolicies)
    tenant_context: TenantContext | None = None
    approval_amount: ApprovalAmount | None = None
    approves: Approves | None = None
    # Stale answers (409 stale_decision): an answer naming another plan_version than the
    # pending question's (`question_ref`) is refused before its run starts.
    question_ref: QuestionRef | None = None
    answer_version: AnswerVersion | None = None
    validate_input: InputValidator | None = None
    resume_model: type[BaseModel] | None = None
    checkpointer: CheckpointerFactory | None = None
    # Where threads' owners and runs are kept: None is `RMN_DATABASE_URL` when set, else SQLite
    # in `<state_dir>/server.sqlite`; a postgresql:// URL lets replicas share them.
    database_url: str | None = None
    erase_thread: ThreadEraser | None = None
    recursion_limit: int = 100
    run_timeout_s: float | None = None
    title: str = "Graph API"

    def running_cap(self) -> int:
        """Runs one tenant may have running at once."""
        if self.max_running_per_tenant is not None:
            return max(1, self.max_running_per_tenant)
        return max(1, self.workers // 2)
