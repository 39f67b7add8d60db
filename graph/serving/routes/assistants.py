"""Assistants: the server's one assistant (its graph), addressed by graph id or UUID; search,
count, get, schemas and the drawable graph."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from graph.serving.routes import Server, Tenant
from graph.serving.runs import GraphServer
from graph.serving.schemas import AssistantSearch, contains

router = APIRouter(prefix="/assistants", tags=["assistants"])


def _matching(server: GraphServer, body: AssistantSearch) -> list[dict[str, Any]]:
    a = server.assistant(server.settings.graph_id)
    match = (
        body.graph_id in (None, a["graph_id"])
        and body.name in (None, a["name"])
        and (not body.metadata or contains(a["metadata"], body.metadata))
    )
    return [a] if match and body.offset == 0 else []


@router.post("/search")
def search_assistants(
    server: Server, tenant: Tenant, body: Annotated[AssistantSearch | None, Body()] = None
) -> list[dict[str, Any]]:
    return _matching(server, body or AssistantSearch())


@router.post("/count")
def count_assistants(
    server: Server, tenant: Tenant, body: Annotated[AssistantSearch | None, Body()] = None
) -> int:
    return len(_matching(server, body or AssistantSearch()))


@router.get("/{assistant_id}")
def get_assistant(assistant_id: str, server: Server, tenant: Tenant) -> dict[str, Any]:
    return server.assistant(assistant_id)


@router.get("/{assistant_id}/schemas")
def get_schemas(assistant_id: str, server: Server, tenant: Tenant) -> dict[str, Any]:
    return server.schemas(assistant_id)


@router.get("/{assistant_id}/graph")
def get_graph(
    assistant_id: str, server: Server, tenant: Tenant, xray: bool = False
) -> dict[str, Any]:
    return server.drawable(assistant_id, xray)
