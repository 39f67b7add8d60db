"""The FastAPI app of the HTTP graph API: `create_app` puts the routers (`graph.serving.routes`)
in front of a `GraphServer`, with the request-body checks (size, strict JSON), JSON error
answers for every failure, and a lifespan that starts and stops the server; `serve_in_thread`
runs an app on a free loopback port (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graph.serving.auth import Gatekeeper, KeyRing
from graph.serving.errors import (
    ApiError,
    InvalidRequestError,
    PayloadTooLargeError,
    error_response,
)
from graph.serving.routes import assistants, exports, feedback, meta, runs, threads
from graph.serving.runs import GraphServer
from graph.serving.schemas import NonFiniteNumberError, problems, strict_loads
from graph.serving.settings import GraphFactory, ServerSettings
from graph.serving.web import install_web
from tools.errors import RMNError

log = logging.getLogger("rmn.server")

__all__ = ["RequestBodyMiddleware", "create_app", "serve_in_thread"]


def create_app(
    graph_factory: GraphFactory, keys: KeyRing | None, settings: ServerSettings
) -> FastAPI:
    """A FastAPI app serving the graph `graph_factory(checkpointer)` builds. `keys` empty or None:
    loopback clients only, all as `settings.open_tenant`."""
    server = GraphServer(graph_factory, settings)
    gate = Gatekeeper(keys or KeyRing(), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.loop = asyncio.get_running_loop()
        # Runs the last process did not finish start again here: their events go to this loop.
        await run_in_threadpool(server.start, app.state.loop)
        try:
            yield
        finally:
            await run_in_threadpool(server.stop)

    app = FastAPI(
        title=settings.title,
        version="1",
        lifespan=lifespan,
        description="LangGraph Server API subset, served to tenants by API key (x-api-key).",
        docs_url=None,  # served offline by install_web
        redoc_url=None,
    )
    # What the routes' dependencies read (graph.serving.routes).
    app.state.server = server
    app.state.gate = gate
    app.add_middleware(RequestBodyMiddleware, limit=settings.max_body_bytes)
    _add_error_handlers(app)
    # In the order the API docs (/docs) list them.
    for module in (meta, assistants, threads, runs, exports, feedback):
        app.include_router(module.router)
    install_web(app)  # /review pages, /docs with local assets
    return app


def _add_error_handlers(app: FastAPI) -> None:
    """Every failure answers JSON `{"type", "message", ...}`; a bug answers 500 without its
    details, which go to the server log."""

    @app.exception_handler(RMNError)
    async def on_rmn_error(request: Request, err: RMNError) -> JSONResponse:
        return error_response(err)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        if request.method in ("POST", "PATCH", "PUT") and "json" not in content_type:
            return error_response(
                ApiError("send the request body as JSON (Content-Type: application/json)")
            )
        if any(p.get("type") == "json_invalid" for p in err.errors()):
            return error_response(ApiError("request body is not valid JSON"))
        return error_response(InvalidRequestError(f"invalid request: {problems(err.errors())}"))

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


class RequestBodyMiddleware:
    """Request bodies, before the app reads them: over `limit` bytes is 413, whether the client
    declares the length or streams the body chunked; a JSON body with NaN, Infinity or a
    number beyond a float (1e400) is 422 (Python's JSON parser would read them as floats and
    they would reach the graph). Other malformed JSON is left to the app's own answer."""

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
        if body and _non_finite(bytes(body)):
            await error_response(
                InvalidRequestError(
                    "request body has a non-finite number (NaN, Infinity or beyond a float); "
                    "send finite numbers only",
                    field="body",
                )
            )(scope, receive, send)
            return
        replay: list[Message] = [{"type": "http.request", "body": bytes(body), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        err = PayloadTooLargeError(
            f"request body is larger than {self.limit} bytes", limit=self.limit
        )
        await error_response(err)(scope, receive, send)


def _non_finite(body: bytes) -> bool:
    """Whether a JSON body holds a non-finite number (a body that is not JSON at all: no)."""
    try:
        strict_loads(body)
    except NonFiniteNumberError:
        return True
    except ValueError:
        return False
    return False


@contextmanager
def serve_in_thread(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Run `app` with uvicorn in a background thread on a free port of `host` (bound here
    first, so nothing can take it in between); yields the base URL, stops on exit."""
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
