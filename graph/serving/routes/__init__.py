"""The HTTP routes of the graph API, one `APIRouter` per resource as the `langgraph-sdk` client
splits them (assistants, threads, runs, plus health), and the dependencies they share: the
`GraphServer` the app serves and the caller of the request's API key (tenant, role, key id),
admitted by the app's `Gatekeeper` (wrong-key lockout, the tenant's rate limit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from graph.serving.auth import Gatekeeper
from graph.serving.policy import Caller
from graph.serving.runs import GraphServer

__all__ = ["Server", "Tenant", "User", "caller_of", "graph_server", "tenant_of"]

api_key_header = APIKeyHeader(name="x-api-key", auto_error=False)


async def graph_server(request: Request) -> GraphServer:
    """The app's `GraphServer` (`create_app` puts it on `app.state`). Async: read on the event
    loop, with no hop to the thread pool."""
    server: GraphServer = request.app.state.server
    return server


def caller_of(request: Request, api_key: str | None = Security(api_key_header)) -> Caller:
    """Who sent the request, once it passed the gate (401, 403 or 429 otherwise)."""
    gate: Gatekeeper = request.app.state.gate
    host = request.client.host if request.client else None
    return gate.admit(host, api_key)


def tenant_of(caller: Annotated[Caller, Depends(caller_of)]) -> str:
    return caller.tenant


Server = Annotated[GraphServer, Depends(graph_server)]
User = Annotated[Caller, Depends(caller_of)]
Tenant = Annotated[str, Depends(tenant_of)]
