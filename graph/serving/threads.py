"""The graph behind the HTTP API, with its checkpointer and metadata store: its one assistant,
threads (owned by a tenant) and their state. No runs here (`graph.serving.runs` adds them) and
no HTTP (`graph.serving.routes`).

Every tenant has its own thread ids: a thread is found by (tenant, id), so another tenant's
thread answers exactly as an id nobody uses, on every route (creating a thread of an id
another tenant uses simply makes the caller's own). Its checkpoints are kept under its key,
`<tenant>.<id>` (`graph.serving.store.thread_key`)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import StateSnapshot

from graph.serving.errors import (
    ApiError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    public_message,
)
from graph.serving.policy import Caller, check_role
from graph.serving.schemas import (
    INTERRUPT_KEY,
    CheckpointRef,
    HistoryRequest,
    ThreadCount,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
    check_uuid,
    contains,
    interrupt_json,
    jsonable,
    now,
)
from graph.serving.settings import GraphFactory, ServerSettings
from graph.serving.store import MetaStore

ASSISTANT_NAMESPACE = uuid.UUID("6c3f9f2e-4f7b-4e59-9a43-2a6e0c1f5b10")

__all__ = ["GraphHost", "ThreadQuotaError", "erase_checkpoints"]


def erase_checkpoints(saver: Any, key: str) -> int:
    """Delete every checkpoint of the thread `key` (all namespaces) and its pending writes;
    answers how many checkpoints there were. On SQLite the rows are overwritten on disk and
    the write-ahead log, if the database keeps one, is emptied: old pages live there."""
    if isinstance(saver, SqliteSaver):
        with saver.cursor(transaction=False) as cur:  # a count, not every checkpoint read
            cur.execute("SELECT count(*) FROM checkpoints WHERE thread_id = ?", (key,))
            count = int(cur.fetchone()[0])
        with saver.lock:
            saver.conn.execute("PRAGMA secure_delete=ON")
    else:
        count = sum(1 for _ in saver.list({"configurable": {"thread_id": key}}))
    saver.delete_thread(key)
    if isinstance(saver, SqliteSaver):
        with saver.lock:
            saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return count


class ThreadQuotaError(ApiError):
    """A tenant that keeps as many threads as it may (`max_threads_per_tenant`)."""

    kind = "thread_quota"
    status = 429


class GraphHost:
    """The graph, its checkpointer and the metadata store: assistants, threads and state.
    Every thread belongs to a tenant; another tenant's thread answers 404, as an unknown one."""

    def __init__(self, graph_factory: GraphFactory, settings: ServerSettings) -> None:
        self.settings = settings
        self._factory = graph_factory
        self.graph: Any = None
        self.store: MetaStore | None = None
        self._saver: Any = None
        self._saver_con: sqlite3.Connection | None = None
        self._started_at = now()
        self.assistant_id = str(uuid.uuid5(ASSISTANT_NAMESPACE, settings.graph_id))

    # lifecycle

    def start(self) -> None:
        state_dir = Path(self.settings.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.checkpointer is not None:
            self._saver = self.settings.checkpointer()
        else:
            # The saver serializes its own use of the connection with a lock.
            self._saver_con = sqlite3.connect(
                str(state_dir / "checkpoints.sqlite"), check_same_thread=False, timeout=30
            )
            self._saver = SqliteSaver(self._saver_con)
            self._saver.setup()
        self.graph = self._factory(self._saver)
        if getattr(self.graph, "checkpointer", None) is None:
            raise RuntimeError("the graph factory must compile the graph with the checkpointer")
        self.store = MetaStore(state_dir / "server.sqlite", self.settings.database_url)

    def stop(self) -> None:
        """Close the stores."""
        if self.store is not None:
            self.store.close()
        if self._saver_con is not None:
            self._saver_con.close()
        elif isinstance(self._saver, SqliteSaver):
            self._saver.conn.close()

    def busy(self, key: str) -> bool:
        """Whether a run is queued or running on the thread of `key`; the run pool knows
        (`GraphServer`)."""
        return False

    # assistants

    def assistant(self, assistant_id: str) -> dict[str, Any]:
        if assistant_id not in (self.assistant_id, self.settings.graph_id):
            raise NotFoundError(f"assistant {assistant_id!r} not found", assistant_id=assistant_id)
        return {
            "assistant_id": self.assistant_id,
            "graph_id": self.settings.graph_id,
            "config": {},
            "context": {},
            "created_at": self._started_at,
            "updated_at": self._started_at,
            "metadata": {"created_by": "system"},
            "version": 1,
            "name": self.settings.graph_id,
            "description": None,
        }

    def schemas(self, assistant_id: str) -> dict[str, Any]:
        self.assistant(assistant_id)
        context = None
        if getattr(self.graph, "context_schema", None) is not None:
            context = self.graph.get_context_jsonschema()
            allowed = self.settings.client_context_fields
            context["properties"] = {
                k: v for k, v in context.get("properties", {}).items() if k in allowed
            }
            context["required"] = [k for k in context.get("required", []) if k in allowed]
        return {
            "graph_id": self.settings.graph_id,
            "input_schema": self.graph.get_input_jsonschema(),
            "output_schema": self.graph.get_output_jsonschema(),
            "state_schema": self.graph.get_output_jsonschema(),
            "config_schema": None,
            "context_schema": context,
        }

    def drawable(self, assistant_id: str, xray: bool) -> dict[str, Any]:
        self.assistant(assistant_id)
        return jsonable(self.graph.get_graph(xray=xray).to_json())

    # threads

    def own_thread(self, tenant: str, thread_id: str) -> dict[str, Any]:
        """The tenant's thread of that id; 404 when it has none (another tenant's thread of
        the same id is not looked at)."""
        thread_id = check_uuid(thread_id, "thread_id")
        row = self._store.thread(tenant, thread_id)
        if row is None:
            raise NotFoundError(f"thread {thread_id} not found", thread_id=thread_id)
        return row

    def new_thread(self, caller: Caller, thread_id: str, metadata: dict[str, Any]) -> bool:
        """Make the caller's thread of that id (False: it has one), within its quota."""
        check_role(caller, "start")
        limit = self.settings.max_threads_per_tenant
        if self._store.count_threads(caller.tenant) >= limit:
            raise ThreadQuotaError(
                f"tenant {caller.tenant} keeps at most {limit} threads; delete some first",
                limit=limit,
            )
        return self._store.insert_thread(caller.tenant, thread_id, metadata)

    def create_thread(self, caller: Caller, body: ThreadCreate) -> dict[str, Any]:
        if body.supersteps:
            raise InvalidRequestError("threads cannot be created with supersteps here")
        thread_id = check_uuid(body.thread_id, "thread_id") if body.thread_id else None
        thread_id = thread_id or str(uuid.uuid4())
        existing = self._store.thread(caller.tenant, thread_id)
        if existing is None:
            self.new_thread(caller, thread_id, body.metadata)
        elif body.if_exists == "raise":
            raise ConflictError(f"thread {thread_id} already exists", thread_id=thread_id)
        return self.thread_json(self.own_thread(caller.tenant, thread_id))

    def thread_json(self, row: dict[str, Any]) -> dict[str, Any]:
        snap = self._snapshot(row["key"])
        interrupts: dict[str, list[dict[str, Any]]] = {}
        for task in snap.tasks:
            if task.interrupts:
                interrupts[task.id] = [interrupt_json(i) for i in task.interrupts]
        return {
            "thread_id": row["thread_id"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "metadata": row["metadata"],
            "status": self._status(row, snap),
            "values": jsonable(snap.values) if snap.values else {},
            "interrupts": interrupts,
        }

    def _status(self, row: dict[str, Any], snap: StateSnapshot) -> str:
        """busy while a run is on it, else what its checkpoints say: a thread answered
        elsewhere (the CLI on the same checkpoints) is not left `interrupted`."""
        if self.busy(row["key"]):
            return "busy"
        if snap.interrupts:
            return "interrupted"
        return "error" if row["status"] == "error" else "idle"

    def patch_thread(self, tenant: str, thread_id: str, body: ThreadPatch) -> dict[str, Any]:
        row = self.own_thread(tenant, thread_id)
        self._store.set_thread(row["key"], metadata={**row["metadata"], **body.metadata})
        return self.thread_json(self.own_thread(tenant, thread_id))

    def _drop_thread(self, row: dict[str, Any]) -> dict[str, Any]:
        """Erase the thread from every store: its checkpoints, its rows here, and what the
        product keeps of it elsewhere (`settings.erase_thread`). Answers what was erased."""
        erased: dict[str, Any] = {}
        if self.settings.erase_thread is not None:
            erased.update(self.settings.erase_thread(row["tenant"], row["key"]))
        erased["checkpoints"] = erase_checkpoints(self._saver, row["key"])
        erased["runs"] = self._store.delete_thread(row["tenant"], row["thread_id"])
        return erased

    def search_threads(self, tenant: str, body: ThreadSearch | ThreadCount) -> list[dict[str, Any]]:
        rows = self._store.threads(tenant)
        if isinstance(body, ThreadSearch) and body.ids is not None:
            wanted = {check_uuid(i, "ids") for i in body.ids}
            rows = [r for r in rows if r["thread_id"] in wanted]
        if body.metadata:
            rows = [r for r in rows if contains(r["metadata"], body.metadata)]
        out = [self.thread_json(r) for r in rows]
        if body.status:
            out = [t for t in out if t["status"] == body.status]
        if body.values:
            out = [t for t in out if contains(t["values"], jsonable(body.values))]
        if isinstance(body, ThreadSearch):
            out.sort(key=lambda t: t[body.sort_by], reverse=body.sort_order == "desc")
            out = out[body.offset : body.offset + body.limit]
        return out

    # state

    def state(
        self, tenant: str, thread_id: str, checkpoint: CheckpointRef | None, subgraphs: bool
    ) -> dict[str, Any]:
        row = self.own_thread(tenant, thread_id)
        snap = self._snapshot(row["key"], checkpoint, subgraphs=subgraphs)
        if checkpoint is not None and checkpoint.checkpoint_id and not snap.metadata:
            raise NotFoundError(
                f"checkpoint {checkpoint.checkpoint_id} not found in thread {row['thread_id']}"
            )
        return _state_json(snap, row["thread_id"])

    def history(self, tenant: str, thread_id: str, body: HistoryRequest) -> list[dict[str, Any]]:
        row = self.own_thread(tenant, thread_id)
        key = row["key"]
        before = _checkpoint_config(key, body.before) if body.before else None
        states = self.graph.get_state_history(
            _checkpoint_config(key, body.checkpoint),
            filter=body.metadata or None,
            before=before,
            limit=body.limit,
        )
        return [_state_json(s, row["thread_id"]) for s in states]

    def _snapshot(
        self, key: str, checkpoint: CheckpointRef | None = None, *, subgraphs: bool = False
    ) -> StateSnapshot:
        return self.graph.get_state(_checkpoint_config(key, checkpoint), subgraphs=subgraphs)

    def thread_values(self, key: str) -> dict[str, Any]:
        """The thread's values as a finished run answers them, with `__interrupt__` while an
        interrupt is pending."""
        snap = self._snapshot(key)
        values = jsonable(snap.values) if isinstance(snap.values, dict) else {}
        if snap.interrupts:
            values[INTERRUPT_KEY] = [interrupt_json(i) for i in snap.interrupts]
        return values

    def _safe_final(self, key: str) -> dict[str, Any]:
        try:
            return self.thread_values(key)
        except Exception:
            return {}

    def at_rest(self, key: str, snap: StateSnapshot, at: str | None) -> bool:
        """Whether the thread had reached an interrupt or its end. The live state's `next`
        leaves out steps that finished and whose writes were saved beside the last
        checkpoint, which is where a process killed before it saved the checkpoint after
        them leaves a thread: that thread has more to do. The checkpoint's own record
        (`checkpoint_id` given) still lists such a step."""
        if snap.interrupts:
            return True
        if snap.next:
            return False
        if at is None:  # nothing saved yet
            return True
        return not self._snapshot(key, CheckpointRef(checkpoint_id=at)).next

    def _resting_status(self, key: str) -> str:
        return "interrupted" if self._snapshot(key).interrupts else "idle"

    @property
    def _store(self) -> MetaStore:
        assert self.store is not None, "start() was not called"
        return self.store


def _checkpoint_config(key: str, ref: CheckpointRef | None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": key, "checkpoint_ns": ""}
    if ref is not None:
        configurable["checkpoint_ns"] = ref.checkpoint_ns or ""
        if ref.checkpoint_id:
            configurable["checkpoint_id"] = ref.checkpoint_id
    return {"configurable": configurable}


def _checkpoint_json(config: Mapping[str, Any] | None, thread_id: str) -> dict[str, Any] | None:
    if not config:
        return None
    c = config.get("configurable", {})
    return {
        "thread_id": thread_id,
        "checkpoint_ns": c.get("checkpoint_ns", ""),
        "checkpoint_id": c.get("checkpoint_id"),
        "checkpoint_map": c.get("checkpoint_map") or {},
    }


def _state_json(snap: StateSnapshot, thread_id: str) -> dict[str, Any]:
    tasks = []
    for t in snap.tasks:
        sub = t.state
        tasks.append(
            {
                "id": t.id,
                "name": t.name,
                "error": public_message(t.error)[1] if t.error else None,
                "interrupts": [interrupt_json(i) for i in t.interrupts],
                "checkpoint": (
                    _checkpoint_json(sub, thread_id)
                    if sub is not None and not isinstance(sub, StateSnapshot)
                    else None
                ),
                "state": _state_json(sub, thread_id) if isinstance(sub, StateSnapshot) else None,
                "result": jsonable(getattr(t, "result", None)),
            }
        )
    checkpoint = _checkpoint_json(snap.config, thread_id) or {
        "thread_id": thread_id,
        "checkpoint_ns": "",
        "checkpoint_id": None,
        "checkpoint_map": {},
    }
    parent = _checkpoint_json(snap.parent_config, thread_id)
    return {
        "values": jsonable(snap.values) if snap.values else {},
        "next": list(snap.next),
        "tasks": tasks,
        "metadata": jsonable(snap.metadata or {}),
        "created_at": snap.created_at,
        "checkpoint": checkpoint,
        "parent_checkpoint": parent,
        "interrupts": [interrupt_json(i) for i in snap.interrupts],
        "checkpoint_id": checkpoint["checkpoint_id"],
        "parent_checkpoint_id": parent["checkpoint_id"] if parent else None,
    }
