"""Runs, on a thread or stateless: create (background), wait, stream over SSE, list, get,
cancel, join, join-stream, delete.

Streams send `metadata` first, then one event per chunk in the requested modes as single-line
JSON, and `error` on failure. `wait` and `join` answer the thread's values once the run is done,
sending newlines while they wait. A run another replica executes (a shared database) is joined
by polling the shared store until it ends: its final values, not its live events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import suppress
from typing import Any

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from graph.serving.policy import Caller
from graph.serving.replicas import REMOTE_POLL_S
from graph.serving.routes import Server, Tenant, User
from graph.serving.runs import Events, GraphServer, Run
from graph.serving.schemas import RunCreate, dumps

# Seconds between the newlines `wait` and `join` send while a run is still going.
WAIT_HEARTBEAT_S = 5.0

router = APIRouter(tags=["runs"])


async def _admit(
    server: GraphServer, caller: Caller, thread_id: str | None, body: RunCreate, stream: bool
) -> tuple[Run, Events | None]:
    loop = asyncio.get_running_loop()
    run = await run_in_threadpool(server.new_run, caller, thread_id, body, loop)
    # Subscribed before the run can start, so a stream misses none of its events.
    queue = run.subscribe() if stream else None
    try:
        await run_in_threadpool(server.admit, run)
    except BaseException:
        if queue is not None:
            run.unsubscribe(queue)
        raise
    return run, queue


def _run_headers(run: Run) -> dict[str, str]:
    # Content-Location tells the client the run id (its on_run_created callback). No
    # Location: the client would reconnect through it, and these streams are not resumable.
    return {"Content-Location": f"/threads/{run.thread_id}/runs/{run.run_id}"}


def _sse(run: Run, queue: Events, cancel_on_disconnect: bool) -> EventSourceResponse:
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


def _wait_response(run: Run, headers: Mapping[str, str] | None = None) -> StreamingResponse:
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


def _remote_wait_response(server: GraphServer, run_id: str, key: str) -> StreamingResponse:
    """`_wait_response` for a run another replica executes: the shared store is polled until
    the run ends, then the thread's values come from the shared checkpointer."""

    async def body() -> AsyncIterator[bytes]:
        async for beat in _until_finished(server, run_id):
            if beat:
                yield b"\n"
        yield dumps(await run_in_threadpool(server.thread_values, key)).encode()

    return StreamingResponse(body(), media_type="application/json")


async def _until_finished(server: GraphServer, run_id: str) -> AsyncIterator[bool]:
    """Yields every `REMOTE_POLL_S` until the run has ended; True when a heartbeat is due."""
    last = time.monotonic()
    while not await run_in_threadpool(server.finished, run_id):
        await asyncio.sleep(REMOTE_POLL_S)
        due = time.monotonic() - last >= WAIT_HEARTBEAT_S
        if due:
            last = time.monotonic()
        yield due


@router.post("/threads/{thread_id}/runs")
async def create_run(thread_id: str, body: RunCreate, server: Server, caller: User) -> Any:
    run, _ = await _admit(server, caller, thread_id, body, stream=False)
    row = await run_in_threadpool(server.own_run, caller.tenant, run.thread_id, run.run_id)
    return JSONResponse(server.run_json(row), headers=_run_headers(run))


@router.post("/runs")
async def create_stateless_run(body: RunCreate, server: Server, caller: User) -> Any:
    run, _ = await _admit(server, caller, None, body, stream=False)
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
            "actor": run.caller.key_id,
        },
        headers=_run_headers(run),
    )


@router.post("/threads/{thread_id}/runs/stream")
async def stream_run(thread_id: str, body: RunCreate, server: Server, caller: User) -> Any:
    run, queue = await _admit(server, caller, thread_id, body, stream=True)
    assert queue is not None
    return _sse(run, queue, body.on_disconnect == "cancel")


@router.post("/runs/stream")
async def stream_stateless_run(body: RunCreate, server: Server, caller: User) -> Any:
    run, queue = await _admit(server, caller, None, body, stream=True)
    assert queue is not None
    return _sse(run, queue, body.on_disconnect == "cancel")


@router.post("/threads/{thread_id}/runs/wait")
async def wait_run(thread_id: str, body: RunCreate, server: Server, caller: User) -> Any:
    run, _ = await _admit(server, caller, thread_id, body, stream=False)
    return _wait_response(run, _run_headers(run))


@router.post("/runs/wait")
async def wait_stateless_run(body: RunCreate, server: Server, caller: User) -> Any:
    run, _ = await _admit(server, caller, None, body, stream=False)
    return _wait_response(run, _run_headers(run))


@router.get("/threads/{thread_id}/runs")
def list_runs(
    thread_id: str,
    server: Server,
    tenant: Tenant,
    limit: int = Query(10, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    status: str | None = None,
) -> Any:
    return server.list_runs(tenant, thread_id, limit, offset, status)


@router.get("/threads/{thread_id}/runs/{run_id}")
def get_run(thread_id: str, run_id: str, server: Server, tenant: Tenant) -> Any:
    return server.run_json(server.own_run(tenant, thread_id, run_id))


@router.delete("/threads/{thread_id}/runs/{run_id}", status_code=204)
def delete_run(thread_id: str, run_id: str, server: Server, caller: User) -> Response:
    server.delete_run(caller, thread_id, run_id)
    return Response(status_code=204)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: str,
    run_id: str,
    server: Server,
    caller: User,
    wait: bool = False,
    action: str = "interrupt",
) -> Any:
    run = await run_in_threadpool(server.cancel, caller, thread_id, run_id, action)
    if wait:
        return _wait_response(run)
    return Response(status_code=202)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(thread_id: str, run_id: str, server: Server, tenant: Tenant) -> Any:
    row = await run_in_threadpool(server.own_run, tenant, thread_id, run_id)
    live = server.active(row["run_id"])
    if live is not None:
        return _wait_response(live)
    thread = await run_in_threadpool(server.own_thread, tenant, thread_id)
    if server.elsewhere(row):
        return _remote_wait_response(server, row["run_id"], thread["key"])
    values = await run_in_threadpool(server.thread_values, thread["key"])
    return Response(dumps(values), media_type="application/json")


@router.get("/threads/{thread_id}/runs/{run_id}/stream")
async def join_stream(
    thread_id: str,
    run_id: str,
    server: Server,
    tenant: Tenant,
    cancel_on_disconnect: bool = False,
) -> Any:
    row = await run_in_threadpool(server.own_run, tenant, thread_id, run_id)
    live = server.active(row["run_id"])
    if live is None:
        key = (await run_in_threadpool(server.own_thread, tenant, thread_id))["key"]
        return EventSourceResponse(_ended(server, row, key))
    return _sse(live, live.subscribe(), cancel_on_disconnect)


async def _ended(
    server: GraphServer, row: dict[str, Any], key: str
) -> AsyncIterator[ServerSentEvent]:
    """The join stream of a run not executing here: its metadata, and for a run another
    replica executes, its final values once it ends (its live events stay on that replica)."""
    yield ServerSentEvent(event="metadata", data=dumps({"run_id": row["run_id"], "attempt": 1}))
    if not server.elsewhere(row):
        return
    async for beat in _until_finished(server, row["run_id"]):
        if beat:
            yield ServerSentEvent(comment="waiting for the replica that executes the run")
    values = await run_in_threadpool(server.thread_values, key)
    yield ServerSentEvent(event="values", data=dumps(values))
