"""Threads: create, get, patch, delete, search, count, state (now, at a checkpoint, by
checkpoint id) and history. A thread of another tenant answers 404, as an unknown one; state
changes only through the graph's own nodes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import ValidationError

from graph.serving.errors import InvalidRequestError
from graph.serving.routes import Server, Tenant, User
from graph.serving.schemas import (
    CheckpointRef,
    HistoryRequest,
    StateAtCheckpoint,
    ThreadCount,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
    problems,
)
from tools.errors import AccessDeniedError

router = APIRouter(prefix="/threads", tags=["threads"])


@router.post("")
def create_thread(
    server: Server, caller: User, body: Annotated[ThreadCreate | None, Body()] = None
) -> Any:
    return server.create_thread(caller, body or ThreadCreate())


@router.post("/search")
def search_threads(
    server: Server, tenant: Tenant, body: Annotated[ThreadSearch | None, Body()] = None
) -> Any:
    return server.search_threads(tenant, body or ThreadSearch())


@router.post("/count")
def count_threads(
    server: Server, tenant: Tenant, body: Annotated[ThreadCount | None, Body()] = None
) -> int:
    return len(server.search_threads(tenant, body or ThreadCount()))


@router.get("/{thread_id}")
def get_thread(thread_id: str, server: Server, tenant: Tenant) -> Any:
    return server.thread_json(server.own_thread(tenant, thread_id))


@router.patch("/{thread_id}")
def patch_thread(thread_id: str, body: ThreadPatch, server: Server, tenant: Tenant) -> Any:
    return server.patch_thread(tenant, thread_id, body)


@router.delete("/{thread_id}", status_code=204)
def delete_thread(thread_id: str, server: Server, caller: User) -> Response:
    """Erase the thread from every store: checkpoints, runs, and what the product keeps of it
    (reports, decision records)."""
    server.delete_thread(caller, thread_id)
    return Response(status_code=204)


@router.get("/{thread_id}/state")
def get_state(thread_id: str, server: Server, tenant: Tenant, subgraphs: bool = False) -> Any:
    return server.state(tenant, thread_id, None, subgraphs)


@router.post("/{thread_id}/state")
def update_state(thread_id: str, server: Server, tenant: Tenant) -> Any:
    server.own_thread(tenant, thread_id)
    raise AccessDeniedError(
        "thread state changes only through the graph's nodes; answer an interrupt with a "
        "run whose command.resume holds the decision"
    )


@router.post("/{thread_id}/state/checkpoint")
def get_state_at(thread_id: str, body: StateAtCheckpoint, server: Server, tenant: Tenant) -> Any:
    return server.state(tenant, thread_id, body.checkpoint, body.subgraphs)


@router.get("/{thread_id}/state/{checkpoint_id}")
def get_state_by_id(
    thread_id: str, checkpoint_id: str, server: Server, tenant: Tenant, subgraphs: bool = False
) -> Any:
    try:
        ref = CheckpointRef(checkpoint_id=checkpoint_id)
    except ValidationError as err:
        raise InvalidRequestError(problems(err.errors()), field="checkpoint_id") from None
    return server.state(tenant, thread_id, ref, subgraphs)


@router.post("/{thread_id}/history")
def history(
    thread_id: str,
    server: Server,
    tenant: Tenant,
    body: Annotated[HistoryRequest | None, Body()] = None,
) -> Any:
    return server.history(tenant, thread_id, body or HistoryRequest())
