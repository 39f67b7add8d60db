"""The HTTP graph API: the part of the LangGraph Server protocol that the official
`langgraph-sdk` client and `langgraph.pregel.remote.RemoteGraph` use, in front of any compiled
LangGraph graph, with tenants.

    from server import ServerSettings, create_app
    app = create_app(lambda saver: builder.compile(checkpointer=saver), keys, settings)

`rmn serve` (cli/serve.py) serves the planning graph through `create_rmn_app`.

Protocol. Assistants (search, count, get, schemas, graph): one assistant per server, addressed by
its graph id or its UUID. Threads (create, get, patch, delete, search, count, state, state at a
checkpoint, history). Runs on a thread or stateless (create, wait, stream over SSE, list, get,
cancel, join, join-stream, delete). Streams send `metadata` first, then one event per chunk in the
requested modes (`values`, `updates`, `custom`) as single-line JSON, and `error` on failure; an
interrupt comes as an `updates` event `{"__interrupt__": [{"value", "id"}]}` (as a `values` event
when `updates` was not asked for). `wait` and `join` answer the thread's values, with
`__interrupt__` while an interrupt is pending (newlines are sent while they wait, so long runs
are not cut by read timeouts). Resuming is a run with `command: {"resume": ...}`, checked before
it starts against the interrupt's `response_schema` (else `resume_model`). Requests are checked
too: JSON bodies up to `max_body_bytes`, the graph's input schema plus `validate_input`, and a
per-key rate limit (429 with Retry-After); errors are JSON `{"type", "message", ...}` with a
4xx status, never a stack trace.

Tenants. With API keys configured (`x-api-key`), every thread and run belongs to the tenant of
the key that made it; anything of another tenant answers 404, exactly like something that does
not exist. The run's context is built here: the client may set only the fields the settings
allow, the server's fields win, and the tenant always comes from the key. With no keys, the
server answers loopback clients only, all as one tenant.

Execution. Runs go to a bounded pool of worker threads (`workers`); more runs wait their turn
(up to `max_queued_runs`, then 503), and one thread's runs never overlap. Generations of
concurrent runs meet in the LLM runtime's own queue, which batches them.

Persistence. Checkpoints live in SQLite (`<state_dir>/checkpoints.sqlite`), threads' owners and
runs in `<state_dir>/server.sqlite`, so a restart keeps every thread and pending interrupt. A stop
lets running steps finish and marks their runs `interrupted`; runs the process never finished
(queued, or killed) are marked `error` on the next start.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic_core import to_jsonable_python
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tools.errors import AccessDeniedError, RMNError
from tools.tenants import KeyRing, RateLimiter, hash_key

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver
    from langgraph.pregel import Pregel
    from langgraph.types import Interrupt, StateSnapshot

log = logging.getLogger("rmn.server")

GraphFactory = Callable[["BaseCheckpointSaver[Any]"], "Pregel[Any, Any, Any, Any]"]
# (tenant, input) -> the input to run, or an RMNError for the client.
InputValidator = Callable[[str, dict[str, Any]], dict[str, Any]]
STREAM_MODES: tuple[str, ...] = ("values", "updates", "custom")
ASSISTANT_NAMESPACE = uuid.UUID("6c3f9f2e-4f7b-4e59-9a43-2a6e0c1f5b10")
INTERRUPT_KEY = "__interrupt__"
WAIT_HEARTBEAT_S = 5.0

__all__ = [
    "ApiError",
    "ConflictError",
    "GraphServer",
    "InvalidRequestError",
    "NotFoundError",
    "ServerSettings",
    "create_app",
    "create_rmn_app",
    "serve_in_thread",
]


# --- errors -----------------------------------------------------------------------------------


class ApiError(RMNError):
    """An error with its HTTP status."""

    kind = "bad_request"
    status = 400

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None, **detail: Any):
        super().__init__(message, **detail)
        self.headers = dict(headers or {})


class UnauthorizedError(ApiError):
    kind = "unauthorized"
    status = 401


class NotFoundError(ApiError):
    kind = "not_found"
    status = 404


class ConflictError(ApiError):
    kind = "conflict"
    status = 409


class PayloadTooLargeError(ApiError):
    kind = "payload_too_large"
    status = 413


class InvalidRequestError(ApiError):
    kind = "invalid_request"
    status = 422


class RateLimitedError(ApiError):
    kind = "rate_limited"
    status = 429


class ServerBusyError(ApiError):
    kind = "server_busy"
    status = 503


def status_of(err: RMNError) -> int:
    if isinstance(err, ApiError):
        return err.status
    if isinstance(err, AccessDeniedError):
        return 403
    return 422  # any other RMNError is input the product cannot use as sent


def error_response(err: RMNError) -> JSONResponse:
    headers = err.headers if isinstance(err, ApiError) else {}
    return JSONResponse(to_jsonable_python(err.to_dict(), fallback=str), status_of(err), headers)


def public_message(err: BaseException) -> tuple[str, str]:
    """(error type, message) safe to show a client: an RMNError's own words; for anything
    else only its type, as its text may carry internals (paths, values)."""
    if isinstance(err, RMNError):
        return err.kind, err.message
    return type(err).__name__, "the run failed inside the graph; the server log has the details"


# --- JSON -------------------------------------------------------------------------------------


def _fallback(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    return str(obj)


def jsonable(obj: Any) -> Any:
    return to_jsonable_python(obj, fallback=_fallback)


def interrupt_json(item: Interrupt) -> dict[str, Any]:
    """What `RemoteGraph` rebuilds with `Interrupt(**item)`: value, id, and response_schema
    when the graph gave one."""
    out: dict[str, Any] = {"value": jsonable(item.value), "id": item.id}
    schema = getattr(item, "response_schema", None)
    if schema is not None:
        out["response_schema"] = jsonable(schema)
    return out


def dumps(obj: Any) -> str:
    """Single-line JSON, as SSE data lines must be."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _check_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequestError(f"{what} must be a UUID, got {value!r}", field=what) from None


# --- request bodies ---------------------------------------------------------------------------


class _Body(BaseModel):
    # Unknown fields are ignored: newer clients add options this server does not need.
    model_config = ConfigDict(extra="ignore")


class CheckpointRef(_Body):
    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoint_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None


class ThreadCreate(_Body):
    thread_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[Any] | None = None


class ThreadPatch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)


class ThreadSearch(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    ids: list[str] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["thread_id", "created_at", "updated_at", "status"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"


class ThreadCount(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None


class StateAtCheckpoint(_Body):
    checkpoint: CheckpointRef
    subgraphs: bool = False


class HistoryRequest(_Body):
    limit: int = Field(10, ge=1, le=1000)
    before: CheckpointRef | None = None  # or a checkpoint id
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None

    @field_validator("before", mode="before")
    @classmethod
    def _before_id(cls, value: Any) -> Any:
        return {"checkpoint_id": value} if isinstance(value, str) else value


class AssistantSearch(_Body):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class CommandBody(_Body):
    resume: Any = None
    update: Any = None
    goto: Any = None


class RunCreate(_Body):
    assistant_id: str
    input: dict[str, Any] | None = None
    command: CommandBody | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: str | list[str] = "values"
    stream_subgraphs: bool = False
    interrupt_before: Any = None
    interrupt_after: Any = None
    checkpoint: Any = None
    checkpoint_id: str | None = None
    webhook: str | None = None
    after_seconds: float | None = None
    multitask_strategy: str = "reject"
    if_not_exists: Literal["reject", "create"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None


# --- settings ---------------------------------------------------------------------------------


@dataclass
class ServerSettings:
    """How `create_app` serves a graph. Defaults suit one machine and a few clients."""

    state_dir: Path
    graph_id: str = "agent"
    workers: int = 2
    max_queued_runs: int = 256
    max_body_bytes: int = 64 * 1024
    rate_per_s: float = 20.0
    rate_burst: int = 60
    open_tenant: str = "local"
    tenant_field: str = "tenant"
    server_context: Mapping[str, Any] = field(default_factory=dict)
    client_context_fields: frozenset[str] = frozenset()
    validate_input: InputValidator | None = None
    resume_model: type[BaseModel] | None = None
    recursion_limit: int = 100
    run_timeout_s: float | None = None
    title: str = "Graph API"


# --- persistence of threads' owners and runs --------------------------------------------------


class MetaStore:
    """Threads (owner, metadata, status) and runs in SQLite. The graph's state is not here:
    it lives in the checkpointer."""

    def __init__(self, path: Path) -> None:
        self._con = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._con.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.executescript(
                """
                CREATE TABLE IF NOT EXISTS threads (
                    thread_id TEXT PRIMARY KEY, tenant TEXT NOT NULL, created_at TEXT NOT NULL,
                    updated_at TEXT NOT NULL, metadata TEXT NOT NULL, status TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS threads_tenant ON threads (tenant, created_at);
                CREATE TABLE IF NOT EXISTS runs (
                    run_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, tenant TEXT NOT NULL,
                    assistant_id TEXT NOT NULL, created_at TEXT NOT NULL,
                    updated_at TEXT NOT NULL, status TEXT NOT NULL, metadata TEXT NOT NULL,
                    multitask_strategy TEXT NOT NULL, error TEXT);
                CREATE INDEX IF NOT EXISTS runs_thread ON runs (thread_id, created_at);
                """
            )

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def _one(self, sql: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            row = self._con.execute(sql, args).fetchone()
        return _row(row) if row else None

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._lock:
            return [_row(r) for r in self._con.execute(sql, args).fetchall()]

    def _exec(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            return self._con.execute(sql, args).rowcount

    def insert_thread(self, thread_id: str, tenant: str, metadata: dict[str, Any]) -> bool:
        now = _now()
        try:
            self._exec(
                "INSERT INTO threads VALUES (?, ?, ?, ?, ?, 'idle')",
                (thread_id, tenant, now, now, dumps(metadata)),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def thread(self, thread_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM threads WHERE thread_id = ?", (thread_id,))

    def threads(self, tenant: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM threads WHERE tenant = ?", (tenant,))

    def set_thread(
        self, thread_id: str, *, status: str | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        if status is not None:
            self._exec(
                "UPDATE threads SET status = ?, updated_at = ? WHERE thread_id = ?",
                (status, _now(), thread_id),
            )
        if metadata is not None:
            self._exec(
                "UPDATE threads SET metadata = ?, updated_at = ? WHERE thread_id = ?",
                (dumps(metadata), _now(), thread_id),
            )

    def delete_thread(self, thread_id: str) -> None:
        self._exec("DELETE FROM runs WHERE thread_id = ?", (thread_id,))
        self._exec("DELETE FROM threads WHERE thread_id = ?", (thread_id,))

    def insert_run(self, run: _Run) -> None:
        self._exec(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, NULL)",
            (
                run.run_id,
                run.thread_id,
                run.tenant,
                run.assistant_id,
                run.created_at,
                run.created_at,
                dumps(run.metadata),
                run.multitask_strategy,
            ),
        )

    def set_run(self, run_id: str, status: str, error: str | None = None) -> None:
        self._exec(
            "UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE run_id = ?",
            (status, error, _now(), run_id),
        )

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM runs WHERE run_id = ?", (run_id,))

    def runs(
        self, thread_id: str, limit: int, offset: int, status: str | None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs WHERE thread_id = ?"
        args: tuple[Any, ...] = (thread_id,)
        if status:
            sql += " AND status = ?"
            args += (status,)
        return self._all(sql + " ORDER BY created_at DESC LIMIT ? OFFSET ?", (*args, limit, offset))

    def delete_run(self, run_id: str) -> None:
        self._exec("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def recover(self) -> list[str]:
        """Runs a stop cut short become errors; returns the threads they were on."""
        stale = self._all(
            "SELECT run_id, thread_id FROM runs WHERE status IN ('pending', 'running')", ()
        )
        for r in stale:
            self.set_run(r["run_id"], "error", "the server stopped before the run finished")
        return sorted({r["thread_id"] for r in stale})


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    if "metadata" in out:
        out["metadata"] = json.loads(out["metadata"])
    return out


# --- runs -------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Run:
    """A run in memory while it is queued or running: its inputs, and the events it streams."""

    run_id: str
    thread_id: str
    tenant: str
    assistant_id: str
    created_at: str
    metadata: dict[str, Any]
    multitask_strategy: str
    graph_input: Any  # the input dict, or the resume value when `resume` is True
    resume: bool
    context: Any
    config: dict[str, Any]
    modes: list[str]
    subgraphs: bool
    durability: str | None
    temporary: bool
    loop: asyncio.AbstractEventLoop
    status: str = "pending"
    checked: bool = False  # the thread's state was checked for this run (see `admit`)
    result: dict[str, Any] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_status: str = "interrupted"
    done: asyncio.Event = field(default_factory=asyncio.Event)
    subscribers: list[asyncio.Queue[tuple[str, str] | None]] = field(default_factory=list)

    def subscribe(self) -> asyncio.Queue[tuple[str, str] | None]:
        """Called on the event loop, before the run can start or while it runs."""
        queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        if self.done.is_set():
            queue.put_nowait(None)
        else:
            self.subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, str] | None]) -> None:
        with suppress(ValueError):
            self.subscribers.remove(queue)

    def publish(self, event: str, data: Any) -> None:
        """From the worker thread: serialise here, fan out on the loop."""
        self._on_loop(self._fanout, (event, dumps(data)))

    def finish(self) -> None:
        self._on_loop(self._close)

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        # A loop that has closed (server stopped) has no listeners left to tell.
        with suppress(RuntimeError):
            self.loop.call_soon_threadsafe(fn, *args)

    def _fanout(self, item: tuple[str, str]) -> None:
        for queue in self.subscribers:
            queue.put_nowait(item)

    def _close(self) -> None:
        for queue in self.subscribers:
            queue.put_nowait(None)
        self.subscribers.clear()
        self.done.set()


class GraphServer:
    """The graph, its checkpointer, the metadata store and the run pool; no HTTP here."""

    def __init__(self, graph_factory: GraphFactory, settings: ServerSettings) -> None:
        self.settings = settings
        self._factory = graph_factory
        self.graph: Any = None
        self.store: MetaStore | None = None
        self._saver: Any = None
        self._saver_con: sqlite3.Connection | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._queues: dict[str, deque[_Run]] = {}  # thread -> its runs, the head one running
        self._runs: dict[str, _Run] = {}
        self._queued = 0
        self._started_at = _now()
        self.assistant_id = str(uuid.uuid5(ASSISTANT_NAMESPACE, settings.graph_id))
        self._context_adapter: TypeAdapter[Any] | None = None
        self._input_validator: Any = None
        self._stopping = False

    # lifecycle

    def start(self) -> None:
        from langgraph.checkpoint.sqlite import SqliteSaver

        state_dir = Path(self.settings.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        # The saver serializes its own use of the connection with a lock.
        self._saver_con = sqlite3.connect(
            str(state_dir / "checkpoints.sqlite"), check_same_thread=False, timeout=30
        )
        self._saver = SqliteSaver(self._saver_con)
        self._saver.setup()
        self.graph = self._factory(self._saver)
        if getattr(self.graph, "checkpointer", None) is None:
            raise RuntimeError("the graph factory must compile the graph with the checkpointer")
        import jsonschema

        schema = self.graph.get_input_jsonschema()
        self._input_validator = jsonschema.validators.validator_for(schema)(schema)
        self.store = MetaStore(state_dir / "server.sqlite")
        for thread_id in self.store.recover():
            self.store.set_thread(thread_id, status=self._resting_status(thread_id))
        schema = getattr(self.graph, "context_schema", None)
        if schema is not None and (is_dataclass(schema) or isinstance(schema, type)):
            try:
                self._context_adapter = TypeAdapter(schema)
            except Exception:  # a schema pydantic cannot describe is checked by the graph itself
                self._context_adapter = None
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, self.settings.workers), thread_name_prefix="graph-run"
        )
        self._stopping = False

    def stop(self) -> None:
        """Stop taking runs, cancel queued and running ones (a node that is running finishes
        its step first), then close the stores."""
        with self._lock:
            self._stopping = True
            for run in self._runs.values():
                run.cancel_status = "interrupted"
                run.cancel.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self.store is not None:
            self.store.close()
        if self._saver_con is not None:
            self._saver_con.close()

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
        thread_id = _check_uuid(thread_id, "thread_id")
        row = self._store.thread(thread_id)
        if row is None or row["tenant"] != tenant:
            raise NotFoundError(f"thread {thread_id} not found", thread_id=thread_id)
        return row

    def create_thread(self, tenant: str, body: ThreadCreate) -> dict[str, Any]:
        if body.supersteps:
            raise InvalidRequestError("threads cannot be created with supersteps here")
        thread_id = _check_uuid(body.thread_id, "thread_id") if body.thread_id else None
        thread_id = thread_id or str(uuid.uuid4())
        if not self._store.insert_thread(thread_id, tenant, body.metadata):
            row = self._store.thread(thread_id)
            if row is None or row["tenant"] != tenant:
                # Another tenant's id: say no more than that it cannot be used.
                raise ConflictError(f"thread id {thread_id} cannot be used", thread_id=thread_id)
            if body.if_exists == "raise":
                raise ConflictError(f"thread {thread_id} already exists", thread_id=thread_id)
        return self.thread_json(self._store.thread(thread_id) or {})

    def thread_json(self, row: dict[str, Any]) -> dict[str, Any]:
        snap = self._snapshot(row["thread_id"])
        interrupts: dict[str, list[dict[str, Any]]] = {}
        for task in snap.tasks:
            if task.interrupts:
                interrupts[task.id] = [interrupt_json(i) for i in task.interrupts]
        return {
            "thread_id": row["thread_id"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "metadata": row["metadata"],
            "status": self._status(row),
            "values": jsonable(snap.values) if snap.values else {},
            "interrupts": interrupts,
        }

    def patch_thread(self, tenant: str, thread_id: str, body: ThreadPatch) -> dict[str, Any]:
        row = self.own_thread(tenant, thread_id)
        self._store.set_thread(row["thread_id"], metadata={**row["metadata"], **body.metadata})
        return self.thread_json(self.own_thread(tenant, thread_id))

    def delete_thread(self, tenant: str, thread_id: str) -> None:
        row = self.own_thread(tenant, thread_id)
        with self._lock:
            if self._queues.get(row["thread_id"]):
                raise ConflictError(f"thread {row['thread_id']} has a run in progress")
            self._drop_thread(row["thread_id"])

    def _drop_thread(self, thread_id: str) -> None:
        self._saver.delete_thread(thread_id)
        self._store.delete_thread(thread_id)

    def search_threads(self, tenant: str, body: ThreadSearch | ThreadCount) -> list[dict[str, Any]]:
        rows = self._store.threads(tenant)
        if isinstance(body, ThreadSearch) and body.ids is not None:
            wanted = {_check_uuid(i, "ids") for i in body.ids}
            rows = [r for r in rows if r["thread_id"] in wanted]
        if body.metadata:
            rows = [r for r in rows if _contains(r["metadata"], body.metadata)]
        out = [self.thread_json(r) for r in rows]
        if body.status:
            out = [t for t in out if t["status"] == body.status]
        if body.values:
            out = [t for t in out if _contains(t["values"], jsonable(body.values))]
        if isinstance(body, ThreadSearch):
            out.sort(key=lambda t: t[body.sort_by], reverse=body.sort_order == "desc")
            out = out[body.offset : body.offset + body.limit]
        return out

    # state

    def state(
        self, tenant: str, thread_id: str, checkpoint: CheckpointRef | None, subgraphs: bool
    ) -> dict[str, Any]:
        row = self.own_thread(tenant, thread_id)
        snap = self._snapshot(row["thread_id"], checkpoint, subgraphs=subgraphs)
        if checkpoint is not None and checkpoint.checkpoint_id and not snap.metadata:
            raise NotFoundError(
                f"checkpoint {checkpoint.checkpoint_id} not found in thread {row['thread_id']}"
            )
        return _state_json(snap, row["thread_id"])

    def history(self, tenant: str, thread_id: str, body: HistoryRequest) -> list[dict[str, Any]]:
        row = self.own_thread(tenant, thread_id)
        tid = row["thread_id"]
        before = _checkpoint_config(tid, body.before) if body.before else None
        states = self.graph.get_state_history(
            _checkpoint_config(tid, body.checkpoint),
            filter=body.metadata or None,
            before=before,
            limit=body.limit,
        )
        return [_state_json(s, tid) for s in states]

    def _snapshot(
        self, thread_id: str, checkpoint: CheckpointRef | None = None, *, subgraphs: bool = False
    ) -> StateSnapshot:
        return self.graph.get_state(_checkpoint_config(thread_id, checkpoint), subgraphs=subgraphs)

    def _status(self, row: dict[str, Any]) -> str:
        with self._lock:
            if self._queues.get(row["thread_id"]):
                return "busy"
        return row["status"]

    def _resting_status(self, thread_id: str) -> str:
        return "interrupted" if self._snapshot(thread_id).interrupts else "idle"

    # runs: creation

    def new_run(
        self,
        tenant: str,
        thread_id: str | None,
        body: RunCreate,
        loop: asyncio.AbstractEventLoop,
    ) -> _Run:
        """Check a run request and make its run; nothing is queued or stored yet (`admit`)."""
        if thread_id is not None:
            thread_id = _check_uuid(thread_id, "thread_id")
        assistant = self.assistant(body.assistant_id)
        unsupported = {
            "interrupt_before": body.interrupt_before,
            "interrupt_after": body.interrupt_after,
            "checkpoint": body.checkpoint,
            "checkpoint_id": body.checkpoint_id,
            "webhook": body.webhook,
            "after_seconds": body.after_seconds,
        }
        for name, value in unsupported.items():
            if value:
                raise InvalidRequestError(f"{name} is not supported by this server", field=name)
        if body.multitask_strategy not in ("reject", "enqueue"):
            raise InvalidRequestError(
                f"multitask_strategy {body.multitask_strategy!r} is not supported; "
                "use 'reject' or 'enqueue'",
                field="multitask_strategy",
            )
        modes = _stream_modes(body.stream_mode)
        context = self._context(tenant, body.context or {})
        resume = body.command is not None
        if resume:
            assert body.command is not None
            if body.input is not None:
                raise InvalidRequestError("send either input or command, not both")
            if body.command.update is not None or body.command.goto not in (None, [], ""):
                raise InvalidRequestError(
                    "command.update and command.goto are not accepted: the graph's state changes "
                    "only through its own nodes; answer an interrupt with command.resume",
                    field="command",
                )
            graph_input: Any = body.command.resume
        else:
            if body.input is None:
                raise InvalidRequestError(
                    "a run needs input (a new request) or command.resume (an answer to the "
                    "pending interrupt)",
                    field="input",
                )
            graph_input = self._validate_input(tenant, body.input)

        temporary = thread_id is None
        if thread_id is None:
            thread_id = str(uuid.uuid4())
            self._store.insert_thread(thread_id, tenant, {})
        else:
            created = body.if_not_exists == "create" and self._store.insert_thread(
                thread_id, tenant, {}
            )
            row = self._store.thread(thread_id)
            if not created and (row is None or row["tenant"] != tenant):
                raise NotFoundError(f"thread {thread_id} not found", thread_id=thread_id)

        run_id = str(uuid.uuid4())
        metadata = dict(body.metadata or {})
        config = self._config(thread_id, run_id, assistant, body.config or {}, metadata)
        return _Run(
            run_id=run_id,
            thread_id=thread_id,
            tenant=tenant,
            assistant_id=assistant["assistant_id"],
            created_at=_now(),
            metadata=metadata,
            multitask_strategy=body.multitask_strategy,
            graph_input=graph_input,
            resume=resume,
            context=context,
            config=config,
            modes=modes,
            subgraphs=body.stream_subgraphs,
            durability=body.durability,
            temporary=temporary and body.on_completion != "keep",
            loop=loop,
        )

    def admit(self, run: _Run) -> None:
        """Queue the run on its thread (409 when the thread is busy and the strategy is
        `reject`), check the thread's state when it is first in line, store it, start it."""
        with self._lock:
            if self._stopping:
                raise ServerBusyError("the server is stopping", headers={"Retry-After": "5"})
            if self._queued >= self.settings.max_queued_runs:
                raise ServerBusyError(
                    f"{self._queued} runs are waiting; try again shortly",
                    headers={"Retry-After": "5"},
                )
            line = self._queues.get(run.thread_id)
            if line and run.multitask_strategy == "reject":
                raise ConflictError(
                    f"thread {run.thread_id} already has a run in progress; wait for it, or send "
                    "multitask_strategy='enqueue'",
                    thread_id=run.thread_id,
                )
            first = not line
            self._queues.setdefault(run.thread_id, deque()).append(run)
            self._runs[run.run_id] = run
            self._queued += 1
        try:
            if first:
                self._check_thread_state(run)
                run.checked = True
            self._store.insert_run(run)
        except BaseException:
            self._leave(run, start_next=True)
            if run.temporary:
                self._drop_thread(run.thread_id)
            raise
        if first:
            self._submit(run)

    def _check_thread_state(self, run: _Run) -> None:
        """An answer needs a pending interrupt, and a valid one; new input needs none pending."""
        pending = list(self._snapshot(run.thread_id).interrupts)
        if run.resume:
            if not pending:
                raise ConflictError(
                    f"thread {run.thread_id} has no pending interrupt to resume",
                    thread_id=run.thread_id,
                )
            self._validate_resume(run.graph_input, pending)
        elif pending:
            raise ConflictError(
                f"thread {run.thread_id} is waiting for an answer to its interrupt; resume it "
                "with command.resume before sending new input",
                thread_id=run.thread_id,
                interrupts=[interrupt_json(i) for i in pending],
            )

    def _validate_resume(self, value: Any, pending: list[Interrupt]) -> None:
        by_id = {i.id: i for i in pending}
        if isinstance(value, dict) and value and set(value) <= set(by_id):
            answers = [(by_id[k], v) for k, v in value.items()]
        else:
            answers = [(i, value) for i in pending[:1]]
        for item, answer in answers:
            schema = getattr(item, "response_schema", None)
            if isinstance(schema, dict):
                import jsonschema

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
                        f"resume value is invalid: {_problems(err)}",
                        field="command.resume",
                        expected=self.settings.resume_model.model_json_schema(),
                    ) from None

    def _validate_input(self, tenant: str, value: dict[str, Any]) -> dict[str, Any]:
        err = next(iter(self._input_validator.iter_errors(value)), None)
        if err is not None:
            where = "/".join(str(p) for p in err.absolute_path) or "(top)"
            raise InvalidRequestError(f"input is invalid: {where}: {err.message}", field="input")
        if self.settings.validate_input is not None:
            value = self.settings.validate_input(tenant, value)
        return value

    def _context(self, tenant: str, client: dict[str, Any]) -> Any:
        allowed = self.settings.client_context_fields
        refused = sorted(set(client) - allowed)
        if refused:
            raise InvalidRequestError(
                f"context fields {refused} cannot be set by clients; settable: {sorted(allowed)}",
                field="context",
            )
        merged = {**client, **self.settings.server_context, self.settings.tenant_field: tenant}
        if self._context_adapter is None:
            return merged
        try:
            return self._context_adapter.validate_python(merged)
        except ValidationError as err:
            raise InvalidRequestError(
                f"context is invalid: {_problems(err)}", field="context"
            ) from None

    def _config(
        self,
        thread_id: str,
        run_id: str,
        assistant: dict[str, Any],
        client: dict[str, Any],
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
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
            "configurable": {"thread_id": thread_id},
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

    # runs: execution

    def _submit(self, run: _Run) -> None:
        assert self._pool is not None
        try:
            self._pool.submit(self._work, run)
        except RuntimeError:  # pool shut down while the run waited
            self._end(run, "interrupted", None, resting="idle")

    def _work(self, run: _Run) -> None:
        try:
            if run.cancel.is_set():
                self._end(run, run.cancel_status, None)
                return
            try:
                if not run.checked:  # it waited behind another run: the state may have moved
                    self._check_thread_state(run)
            except ApiError as err:
                kind, message = public_message(err)
                run.publish("error", {"error": kind, "message": message})
                self._end(run, "error", {"__error__": {"error": kind, "message": message}})
                return
            run.status = "running"
            self._store.set_run(run.run_id, "running")
            self._store.set_thread(run.thread_id, status="busy")
            self._execute(run)
        except Exception:  # never lose a run silently: the pool would swallow it
            log.exception("run %s failed outside the graph", run.run_id)
            self._end(run, "error", {"__error__": {"error": "internal_error", "message": ""}})

    def _execute(self, run: _Run) -> None:
        from langgraph.types import Command

        graph_input = Command(resume=run.graph_input) if run.resume else run.graph_input
        internal = list(dict.fromkeys([*run.modes, "updates"]))
        timeout = self.settings.run_timeout_s
        deadline = time.monotonic() + timeout if timeout else None
        stopped: str | None = None
        try:
            for item in self.graph.stream(
                graph_input,
                run.config,
                context=run.context,
                stream_mode=internal,
                subgraphs=run.subgraphs,
                durability=run.durability,
            ):
                ns: tuple[str, ...]
                if run.subgraphs:
                    ns, mode, chunk = item
                else:
                    (mode, chunk), ns = item, ()
                self._emit(run, mode, chunk, ns)
                if run.cancel.is_set():
                    stopped = run.cancel_status
                    break
                if deadline is not None and time.monotonic() > deadline:
                    stopped = "timeout"
                    break
        except Exception as err:
            log.exception("run %s on thread %s failed", run.run_id, run.thread_id)
            kind, message = public_message(err)
            run.publish("error", {"error": kind, "message": message})
            self._end(run, "error", {"__error__": {"error": kind, "message": message}}, "error")
            return
        self._end(run, stopped or "success", self._final_values(run.thread_id))

    def _emit(self, run: _Run, mode: str, chunk: Any, ns: tuple[str, ...]) -> None:
        suffix = "|" + "|".join(ns) if ns else ""
        has_interrupt = isinstance(chunk, dict) and INTERRUPT_KEY in chunk
        if has_interrupt:
            chunk = {**chunk, INTERRUPT_KEY: [interrupt_json(i) for i in chunk[INTERRUPT_KEY]]}
        if mode == "updates" and has_interrupt and "updates" not in run.modes:
            # The graph's own values chunk carries the interrupt when values were asked for;
            # otherwise, like LangGraph Server, send it as a values event.
            if "values" not in run.modes:
                run.publish("values" + suffix, chunk)
        elif mode in run.modes:
            run.publish(mode + suffix, jsonable(chunk))

    def _final_values(self, thread_id: str) -> dict[str, Any]:
        snap = self._snapshot(thread_id)
        values = jsonable(snap.values) if isinstance(snap.values, dict) else {}
        if snap.interrupts:
            values[INTERRUPT_KEY] = [interrupt_json(i) for i in snap.interrupts]
        return values

    def _end(
        self,
        run: _Run,
        status: str,
        result: dict[str, Any] | None,
        resting: str | None = None,
    ) -> None:
        run.status = status
        run.result = result if result is not None else self._safe_final(run.thread_id)
        error = None
        if status == "error" and run.result and INTERRUPT_KEY not in run.result:
            error = (run.result.get("__error__") or {}).get("message")
        with suppress(Exception):  # the store is closed if the server stopped meanwhile
            self._store.set_run(run.run_id, status, error)
            thread_status = resting or self._resting_status(run.thread_id)
            if run.temporary:
                self._drop_thread(run.thread_id)
            else:
                self._store.set_thread(run.thread_id, status=thread_status)
        self._leave(run, start_next=True)
        run.finish()

    def _safe_final(self, thread_id: str) -> dict[str, Any]:
        try:
            return self._final_values(thread_id)
        except Exception:
            return {}

    def _leave(self, run: _Run, *, start_next: bool) -> None:
        nxt: _Run | None = None
        with self._lock:
            line = self._queues.get(run.thread_id)
            if line and run in line:
                head = line[0] is run
                line.remove(run)
                self._queued -= 1
                if head and line and start_next:
                    nxt = line[0]
                if not line:
                    del self._queues[run.thread_id]
            self._runs.pop(run.run_id, None)
        if nxt is not None:
            self._submit(nxt)

    # runs: queries and control

    def own_run(self, tenant: str, thread_id: str, run_id: str) -> dict[str, Any]:
        row = self.own_thread(tenant, thread_id)
        run_id = _check_uuid(run_id, "run_id")
        run = self._store.run(run_id)
        if run is None or run["thread_id"] != row["thread_id"] or run["tenant"] != tenant:
            raise NotFoundError(f"run {run_id} not found", run_id=run_id)
        return run

    def active(self, run_id: str) -> _Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def run_json(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {
            k: row[k]
            for k in (
                "run_id",
                "thread_id",
                "assistant_id",
                "created_at",
                "updated_at",
                "status",
                "metadata",
                "multitask_strategy",
            )
        }
        live = self.active(row["run_id"])
        if live is not None and live.status == "running":
            out["status"] = "running"
        if row.get("error"):
            out["error"] = row["error"]
        return out

    def list_runs(
        self, tenant: str, thread_id: str, limit: int, offset: int, status: str | None
    ) -> list[dict[str, Any]]:
        row = self.own_thread(tenant, thread_id)
        return [self.run_json(r) for r in self._store.runs(row["thread_id"], limit, offset, status)]

    def cancel(self, tenant: str, thread_id: str, run_id: str, action: str) -> _Run:
        row = self.own_run(tenant, thread_id, run_id)
        if action != "interrupt":
            raise InvalidRequestError(
                f"cancel action {action!r} is not supported; use 'interrupt'", field="action"
            )
        live = self.active(row["run_id"])
        if live is None:
            raise ConflictError(
                f"run {row['run_id']} has already finished ({row['status']})",
                status=row["status"],
            )
        live.cancel_status = "interrupted"
        live.cancel.set()
        return live

    def delete_run(self, tenant: str, thread_id: str, run_id: str) -> None:
        row = self.own_run(tenant, thread_id, run_id)
        if self.active(row["run_id"]) is not None:
            raise ConflictError(f"run {row['run_id']} is still in progress; cancel it first")
        self._store.delete_run(row["run_id"])

    def thread_values(self, thread_id: str) -> dict[str, Any]:
        return self._final_values(thread_id)

    @property
    def _store(self) -> MetaStore:
        assert self.store is not None, "GraphServer.start() was not called"
        return self.store


def _stream_modes(value: str | list[str]) -> list[str]:
    modes = [value] if isinstance(value, str) else list(value)
    bad = [m for m in modes if m not in STREAM_MODES]
    if bad or not modes:
        raise InvalidRequestError(
            f"stream mode(s) {bad or modes} not served; use {', '.join(STREAM_MODES)}",
            field="stream_mode",
        )
    return list(dict.fromkeys(modes))


def _problems(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()
    )


def _contains(have: Any, want: Mapping[str, Any]) -> bool:
    return isinstance(have, dict) and all(have.get(k) == v for k, v in want.items())


def _checkpoint_config(thread_id: str, ref: CheckpointRef | None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
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
    from langgraph.types import StateSnapshot

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


# --- HTTP -------------------------------------------------------------------------------------


class BodyLimitMiddleware:
    """Refuses request bodies over `limit` bytes with 413 before the app reads them, whether the
    client declares the length or streams the body chunked."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if len(body) > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        replay: list[Message] = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = PayloadTooLargeError(
            f"request body is larger than {self.limit} bytes", limit=self.limit
        )
        await error_response(err)(scope, receive, send)


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Run `app` with uvicorn in a background thread on a free port of `host` (bound here
    first, so nothing can take it in between); yields the base URL, stops on exit."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError("the HTTP server did not start; see the log above")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


def _is_loopback(host: str | None) -> bool:
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def create_app(
    graph_factory: GraphFactory, keys: KeyRing | None, settings: ServerSettings
) -> FastAPI:
    """A FastAPI app serving the graph `graph_factory(checkpointer)` builds. `keys` empty or None:
    loopback clients only, all as `settings.open_tenant`."""
    keys = keys or KeyRing()
    server = GraphServer(graph_factory, settings)
    limiter = RateLimiter(settings.rate_per_s, settings.rate_burst)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(server.start)
        app.state.loop = asyncio.get_running_loop()
        try:
            yield
        finally:
            await run_in_threadpool(server.stop)

    app = FastAPI(
        title=settings.title,
        version="1",
        lifespan=lifespan,
        description="LangGraph Server API subset, served to tenants by API key (x-api-key).",
    )
    app.state.server = server
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes)
    api_key_header = APIKeyHeader(name="x-api-key", auto_error=False)

    def tenant_of(request: Request, api_key: str | None = Security(api_key_header)) -> str:
        if not keys:
            host = request.client.host if request.client else None
            if not _is_loopback(host):
                raise AccessDeniedError("no API keys are configured: only loopback clients")
            tenant, bucket = settings.open_tenant, "open"
        else:
            if not api_key:
                raise UnauthorizedError("missing x-api-key header")
            found = keys.tenant_for(api_key)
            if found is None:
                raise UnauthorizedError("unknown API key")
            tenant, bucket = found, hash_key(api_key)
        wait = limiter.acquire(bucket)
        if wait > 0:
            retry = limiter.retry_after_header(wait)
            raise RateLimitedError(
                f"too many requests for this key; retry in {retry} s",
                headers={"Retry-After": retry},
                retry_after_s=round(wait, 3),
            )
        return tenant

    Tenant = Depends(tenant_of)

    @app.exception_handler(RMNError)
    async def on_rmn_error(request: Request, err: RMNError) -> JSONResponse:
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = err.errors()
        content_type = request.headers.get("content-type", "")
        if request.method in ("POST", "PATCH", "PUT") and "json" not in content_type:
            return error_response(
                ApiError("send the request body as JSON (Content-Type: application/json)")
            )
        if any(p.get("type") == "json_invalid" for p in problems):
            return error_response(ApiError("request body is not valid JSON"))
        text = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '(top)'}: {e.get('msg')}"
            for e in problems
        )
        return error_response(InvalidRequestError(f"invalid request: {text}"))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, err: StarletteHTTPException) -> JSONResponse:
        kinds = {404: "not_found", 405: "method_not_allowed"}
        body = {"type": kinds.get(err.status_code, "http_error"), "message": str(err.detail)}
        return JSONResponse(body, err.status_code, getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, err: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = {"type": "internal_error", "message": "internal server error; see the server log"}
        return JSONResponse(body, 500)

    # health and metadata

    @app.get("/ok", tags=["meta"])
    def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/info", tags=["meta"])
    def info() -> dict[str, Any]:
        return {"version": "1", "flags": {"assistants": True, "crons": False, "langsmith": False}}

    # assistants

    @app.post("/assistants/search", tags=["assistants"])
    def search_assistants(
        body: Annotated[AssistantSearch | None, Body()] = None, tenant: str = Tenant
    ) -> list[dict[str, Any]]:
        body = body or AssistantSearch()
        a = server.assistant(settings.graph_id)
        match = (
            body.graph_id in (None, a["graph_id"])
            and body.name in (None, a["name"])
            and (not body.metadata or _contains(a["metadata"], body.metadata))
        )
        return [a] if match and body.offset == 0 else []

    @app.post("/assistants/count", tags=["assistants"])
    def count_assistants(
        body: Annotated[AssistantSearch | None, Body()] = None, tenant: str = Tenant
    ) -> int:
        return len(search_assistants(body or AssistantSearch(), tenant))

    @app.get("/assistants/{assistant_id}", tags=["assistants"])
    def get_assistant(assistant_id: str, tenant: str = Tenant) -> dict[str, Any]:
        return server.assistant(assistant_id)

    @app.get("/assistants/{assistant_id}/schemas", tags=["assistants"])
    def get_schemas(assistant_id: str, tenant: str = Tenant) -> dict[str, Any]:
        return server.schemas(assistant_id)

    @app.get("/assistants/{assistant_id}/graph", tags=["assistants"])
    def get_graph(assistant_id: str, xray: bool = False, tenant: str = Tenant) -> dict[str, Any]:
        return server.drawable(assistant_id, xray)

    # threads

    @app.post("/threads", tags=["threads"])
    def create_thread(
        body: Annotated[ThreadCreate | None, Body()] = None, tenant: str = Tenant
    ) -> Any:
        return server.create_thread(tenant, body or ThreadCreate())

    @app.post("/threads/search", tags=["threads"])
    def search_threads(
        body: Annotated[ThreadSearch | None, Body()] = None, tenant: str = Tenant
    ) -> Any:
        return server.search_threads(tenant, body or ThreadSearch())

    @app.post("/threads/count", tags=["threads"])
    def count_threads(
        body: Annotated[ThreadCount | None, Body()] = None, tenant: str = Tenant
    ) -> int:
        return len(server.search_threads(tenant, body or ThreadCount()))

    @app.get("/threads/{thread_id}", tags=["threads"])
    def get_thread(thread_id: str, tenant: str = Tenant) -> Any:
        return server.thread_json(server.own_thread(tenant, thread_id))

    @app.patch("/threads/{thread_id}", tags=["threads"])
    def patch_thread(thread_id: str, body: ThreadPatch, tenant: str = Tenant) -> Any:
        return server.patch_thread(tenant, thread_id, body)

    @app.delete("/threads/{thread_id}", status_code=204, tags=["threads"])
    def delete_thread(thread_id: str, tenant: str = Tenant) -> Response:
        server.delete_thread(tenant, thread_id)
        return Response(status_code=204)

    @app.get("/threads/{thread_id}/state", tags=["threads"])
    def get_state(thread_id: str, subgraphs: bool = False, tenant: str = Tenant) -> Any:
        return server.state(tenant, thread_id, None, subgraphs)

    @app.post("/threads/{thread_id}/state", tags=["threads"])
    def update_state(thread_id: str, tenant: str = Tenant) -> Any:
        server.own_thread(tenant, thread_id)
        raise AccessDeniedError(
            "thread state changes only through the graph's nodes; answer an interrupt with a "
            "run whose command.resume holds the decision"
        )

    @app.post("/threads/{thread_id}/state/checkpoint", tags=["threads"])
    def get_state_at(thread_id: str, body: StateAtCheckpoint, tenant: str = Tenant) -> Any:
        return server.state(tenant, thread_id, body.checkpoint, body.subgraphs)

    @app.get("/threads/{thread_id}/state/{checkpoint_id}", tags=["threads"])
    def get_state_by_id(
        thread_id: str, checkpoint_id: str, subgraphs: bool = False, tenant: str = Tenant
    ) -> Any:
        ref = CheckpointRef(checkpoint_id=checkpoint_id)
        return server.state(tenant, thread_id, ref, subgraphs)

    @app.post("/threads/{thread_id}/history", tags=["threads"])
    def history(
        thread_id: str, body: Annotated[HistoryRequest | None, Body()] = None, tenant: str = Tenant
    ) -> Any:
        return server.history(tenant, thread_id, body or HistoryRequest())

    # runs

    async def _admit(
        tenant: str, thread_id: str | None, body: RunCreate, stream: bool
    ) -> tuple[_Run, asyncio.Queue[tuple[str, str] | None] | None]:
        loop = asyncio.get_running_loop()
        run = await run_in_threadpool(server.new_run, tenant, thread_id, body, loop)
        queue = run.subscribe() if stream else None
        try:
            await run_in_threadpool(server.admit, run)
        except BaseException:
            if queue is not None:
                run.unsubscribe(queue)
            raise
        return run, queue

    def _run_headers(run: _Run) -> dict[str, str]:
        # Content-Location tells the client the run id (its on_run_created callback). No
        # Location: the client would reconnect through it, and these streams are not resumable.
        return {"Content-Location": f"/threads/{run.thread_id}/runs/{run.run_id}"}

    def _sse(
        run: _Run, queue: asyncio.Queue[tuple[str, str] | None], cancel_on_disconnect: bool
    ) -> EventSourceResponse:
        async def events() -> AsyncIterator[ServerSentEvent]:
            finished = False
            try:
                yield ServerSentEvent(
                    event="metadata", data=dumps({"run_id": run.run_id, "attempt": 1})
                )
                while True:
                    item = await queue.get()
                    if item is None:
                        finished = True
                        return
                    yield ServerSentEvent(event=item[0], data=item[1])
            finally:
                run.unsubscribe(queue)
                if not finished and cancel_on_disconnect:
                    run.cancel.set()

        return EventSourceResponse(events(), headers=_run_headers(run))

    def _wait_response(run: _Run, headers: Mapping[str, str] | None = None) -> StreamingResponse:
        """The run's result once it is done. Until then a newline every few seconds (JSON
        allows leading whitespace) keeps proxies and client read timeouts from cutting a
        long run, as LangGraph Server does."""

        async def body() -> AsyncIterator[bytes]:
            while not run.done.is_set():
                with suppress(TimeoutError):
                    await asyncio.wait_for(run.done.wait(), timeout=WAIT_HEARTBEAT_S)
                if not run.done.is_set():
                    yield b"\n"
            yield dumps(run.result or {}).encode()

        return StreamingResponse(body(), media_type="application/json", headers=headers)

    @app.post("/threads/{thread_id}/runs", tags=["runs"])
    async def create_run(thread_id: str, body: RunCreate, tenant: str = Tenant) -> Any:
        run, _ = await _admit(tenant, thread_id, body, stream=False)
        row = await run_in_threadpool(server.own_run, tenant, run.thread_id, run.run_id)
        return JSONResponse(server.run_json(row), headers=_run_headers(run))

    @app.post("/runs", tags=["runs"])
    async def create_stateless_run(body: RunCreate, tenant: str = Tenant) -> Any:
        run, _ = await _admit(tenant, None, body, stream=False)
        return JSONResponse(
            {
                "run_id": run.run_id,
                "thread_id": run.thread_id,
                "assistant_id": run.assistant_id,
                "created_at": run.created_at,
                "updated_at": run.created_at,
                "status": "pending",
                "metadata": run.metadata,
                "multitask_strategy": run.multitask_strategy,
            },
            headers=_run_headers(run),
        )

    @app.post("/threads/{thread_id}/runs/stream", tags=["runs"])
    async def stream_run(thread_id: str, body: RunCreate, tenant: str = Tenant) -> Any:
        run, queue = await _admit(tenant, thread_id, body, stream=True)
        assert queue is not None
        return _sse(run, queue, body.on_disconnect == "cancel")

    @app.post("/runs/stream", tags=["runs"])
    async def stream_stateless_run(body: RunCreate, tenant: str = Tenant) -> Any:
        run, queue = await _admit(tenant, None, body, stream=True)
        assert queue is not None
        return _sse(run, queue, body.on_disconnect == "cancel")

    @app.post("/threads/{thread_id}/runs/wait", tags=["runs"])
    async def wait_run(thread_id: str, body: RunCreate, tenant: str = Tenant) -> Any:
        run, _ = await _admit(tenant, thread_id, body, stream=False)
        return _wait_response(run, _run_headers(run))

    @app.post("/runs/wait", tags=["runs"])
    async def wait_stateless_run(body: RunCreate, tenant: str = Tenant) -> Any:
        run, _ = await _admit(tenant, None, body, stream=False)
        return _wait_response(run, _run_headers(run))

    @app.get("/threads/{thread_id}/runs", tags=["runs"])
    def list_runs(
        thread_id: str,
        limit: int = Query(10, ge=1, le=1000),
        offset: int = Query(0, ge=0),
        status: str | None = None,
        tenant: str = Tenant,
    ) -> Any:
        return server.list_runs(tenant, thread_id, limit, offset, status)

    @app.get("/threads/{thread_id}/runs/{run_id}", tags=["runs"])
    def get_run(thread_id: str, run_id: str, tenant: str = Tenant) -> Any:
        return server.run_json(server.own_run(tenant, thread_id, run_id))

    @app.delete("/threads/{thread_id}/runs/{run_id}", status_code=204, tags=["runs"])
    def delete_run(thread_id: str, run_id: str, tenant: str = Tenant) -> Response:
        server.delete_run(tenant, thread_id, run_id)
        return Response(status_code=204)

    @app.post("/threads/{thread_id}/runs/{run_id}/cancel", tags=["runs"])
    async def cancel_run(
        thread_id: str,
        run_id: str,
        wait: bool = False,
        action: str = "interrupt",
        tenant: str = Tenant,
    ) -> Any:
        run = await run_in_threadpool(server.cancel, tenant, thread_id, run_id, action)
        if wait:
            return _wait_response(run)
        return Response(status_code=202)

    @app.get("/threads/{thread_id}/runs/{run_id}/join", tags=["runs"])
    async def join_run(thread_id: str, run_id: str, tenant: str = Tenant) -> Any:
        row = await run_in_threadpool(server.own_run, tenant, thread_id, run_id)
        live = server.active(row["run_id"])
        if live is not None:
            return _wait_response(live)
        return JSONResponse(await run_in_threadpool(server.thread_values, row["thread_id"]))

    @app.get("/threads/{thread_id}/runs/{run_id}/stream", tags=["runs"])
    async def join_stream(
        thread_id: str,
        run_id: str,
        cancel_on_disconnect: bool = False,
        tenant: str = Tenant,
    ) -> Any:
        row = await run_in_threadpool(server.own_run, tenant, thread_id, run_id)
        live = server.active(row["run_id"])
        if live is None:

            async def ended() -> AsyncIterator[ServerSentEvent]:
                yield ServerSentEvent(
                    event="metadata", data=dumps({"run_id": row["run_id"], "attempt": 1})
                )

            return EventSourceResponse(ended())
        return _sse(live, live.subscribe(), cancel_on_disconnect)

    return app


# --- the product: the planning graph ----------------------------------------------------------


class ResumeDecision(BaseModel):
    """A reviewer's answer to one of the planning graph's interrupts."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "edit", "reject"]
    reason: str | None = Field(None, max_length=2000)
    changes: dict[str, Any] = Field(default_factory=dict)


MAX_BRIEF_CHARS = 4000


def validate_brief_input(tenant: str, value: dict[str, Any]) -> dict[str, Any]:
    """The planning graph's input, checked before a run starts: a brief the rules can read
    (a budget, known retailers), and a brand the tenant owns (its only one when none is given)."""
    from tools.brief import rule_parse
    from tools.errors import UnknownRetailerError
    from tools.policy.ownership import check_brand_access, tenant_brands

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
    parsed = rule_parse(brief, brand)
    for err in parsed.errors:
        if err.detail.get("field") == "retailers" and err.detail.get("retailers"):
            raise UnknownRetailerError(err.message, **err.detail)
    parsed.raise_errors()
    return {**value, "brief": brief, "brand_id": brand}


def rmn_settings(state_dir: Path, **overrides: Any) -> ServerSettings:
    """Settings for the planning graph; `overrides` set any `ServerSettings` field and any
    server-side context field via `server_context`."""
    base = ServerSettings(
        state_dir=state_dir,
        graph_id="rmn",
        title="RMN Copilot graph API",
        # What a reviewer may tune per run; the model, data and tenant are the server's.
        client_context_fields=frozenset({"confidence_threshold", "auto_approve"}),
        validate_input=validate_brief_input,
        resume_model=ResumeDecision,
        open_tenant="acme",
    )
    for key, value in overrides.items():
        setattr(base, key, value)
    return base


def create_rmn_app(keys: KeyRing | None, settings: ServerSettings) -> FastAPI:
    """The planning graph (`graph.build_graph`) behind the HTTP API."""

    def factory(saver: BaseCheckpointSaver[Any]) -> Pregel[Any, Any, Any, Any]:
        from graph import build_graph
        from tools.rag import get_index

        app = build_graph(checkpointer=saver)
        # Open the policy index before any run: its first opening (Chroma's client) is not
        # safe from several threads at once, and concurrent first runs would all try it.
        cache = settings.server_context.get("cache_dir")
        get_index(cache=Path(cache) if cache else None, progress=False).ensure()
        return app

    return create_app(factory, keys, settings)
