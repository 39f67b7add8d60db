"""The planning graph: a brief in, an approved, explained, compliant plan out, resumable at
every step.

    from langgraph.types import Command
    from graph import Context, build_graph, run_config

    app = build_graph()                                   # SQLite checkpoints in the data dir
    config = run_config("thread-1", tenant="acme")
    out = app.invoke({"brief": "Allocate $2.5M across Alpha and Beta ...", "brand_id": "acme"},
                     config, context=Context(tenant="acme"))
    out["__interrupt__"][0].value                         # a LangChain HITL request: the
                                                          # plan summary in its args
    out = app.invoke(Command(resume={"action": "approve"}), config,
                     context=Context(tenant="acme"))
    out["status"], out["plan"]["allocation"]              # "approved", [...]

`graph.graph.graph` is the same graph compiled without a checkpointer (for `langgraph dev`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.checkpoint.sqlite import SqliteSaver

from graph.checkpoint import default_checkpointer
from graph.context import Context, ContextError
from graph.state import InputState, State, redact_on_entry
from tools.plan.questions import question_of

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.types import StateSnapshot

GRAPH_NAME = "rmn-copilot"
# Interrupt kind -> the thread's status while it waits.
WAITING = {
    "confirm_brief": "awaiting_brief_confirmation",
    "infeasible": "infeasible",
    "approval": "awaiting_approval",
}

__all__ = [
    "GRAPH_NAME",
    "Context",
    "ContextError",
    "InputState",
    "State",
    "build_graph",
    "run_config",
    "thread_status",
    "thread_summaries",
]


def build_graph(
    checkpointer: Any = None, *, data_dir: Path | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The planning graph with durable checkpoints: `checkpointer` when given (any LangGraph
    saver), else the configured default (`RMN_CHECKPOINT_URL`: Postgres or SQLite; unset:
    SQLite in `data_dir`, default the data directory)."""
    # Imported here, not at the top: the nodes import `graph.context` and `graph.llm`, which
    # runs this package first, and `graph.graph` imports the nodes (a cycle when a node
    # module is imported before the graph).
    from graph.graph import build_builder

    saver = checkpointer if checkpointer is not None else default_checkpointer(data_dir)
    # The input channel redacts the brief's PII before LangGraph checkpoints the input.
    return redact_on_entry(build_builder().compile(checkpointer=saver, name=GRAPH_NAME))


def run_config(thread_id: str, tenant: str, **metadata: Any) -> dict[str, Any]:
    """Config for one run on a thread, tagged for tracing with the tenant (LangSmith records
    runs only when LANGSMITH_TRACING and a key are set; nodes add their name and adapters)."""
    return {
        "configurable": {"thread_id": thread_id},
        "run_name": GRAPH_NAME,
        "tags": [GRAPH_NAME, f"tenant:{tenant}"],
        "metadata": {"tenant": tenant, "thread_id": thread_id, **metadata},
    }


def thread_status(snapshot: StateSnapshot) -> str:
    """A thread's status: what it waits for at an interrupt, `resumable` when a run stopped
    between steps (killed, or failed on a bug), else the status its state records.

    A process killed after a step's writes were saved but before the checkpoint after them
    leaves a live state whose `next` omits that step (its writes are applied to the values)
    while its `tasks` still list it: that thread has more to do, and is `resumable` too (seen
    in the kill-and-resume test: "optimized" reported for a thread killed after the optimizer).
    """
    for interrupt in snapshot.interrupts:
        kind = (question_of(interrupt.value) or {}).get("kind")
        if kind in WAITING:
            return WAITING[kind]
    values = snapshot.values if isinstance(snapshot.values, dict) else {}
    if (snapshot.next or snapshot.tasks) and not snapshot.interrupts:
        return "resumable"
    return str(values.get("status") or "new")


def _thread_ids(saver: Any) -> list[str]:
    """Thread ids in a saver, most recently written first. The ids come first and the states
    after: a saver holds its connection while `list` is being iterated."""
    if isinstance(saver, SqliteSaver):
        # One indexed query instead of deserializing every checkpoint of every thread.
        with saver.cursor(transaction=False) as cur:
            cur.execute(
                "SELECT thread_id FROM checkpoints WHERE checkpoint_ns = '' "
                "GROUP BY thread_id ORDER BY max(checkpoint_id) DESC"
            )
            return [str(row[0]) for row in cur.fetchall()]
    ids: list[str] = []
    for item in saver.list(None):
        conf = item.config["configurable"]
        if conf["thread_id"] not in ids and not conf.get("checkpoint_ns"):
            ids.append(conf["thread_id"])
    return ids


def thread_summaries(
    app: CompiledStateGraph[Any, Any, Any, Any], tenant: str | None = None
) -> list[dict[str, Any]]:
    """One line per thread in the app's checkpointer (newest first): id, tenant, status,
    brief and budget; only the tenant's threads when `tenant` is given."""
    saver = app.checkpointer
    if saver is None or saver is True or saver is False:
        return []
    ids = _thread_ids(saver)
    seen: dict[str, dict[str, Any]] = {}
    for thread_id in ids:
        snapshot = app.get_state({"configurable": {"thread_id": thread_id}})
        values = snapshot.values if isinstance(snapshot.values, dict) else {}
        owner = values.get("tenant")
        if tenant is not None and owner != tenant:
            seen[thread_id] = {}
            continue
        parsed = values.get("parsed") or {}
        seen[thread_id] = {
            "thread_id": thread_id,
            "tenant": owner,
            "status": thread_status(snapshot),
            "brief": values.get("brief"),
            "total_budget": parsed.get("total_budget"),
            "updated_at": snapshot.created_at,
        }
    return [row for row in seen.values() if row]
