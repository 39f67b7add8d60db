"""The review pages (`/review`, server-rendered Jinja2 templates with local CSS) and `/docs`
served offline, added to the HTTP API's app by `install_web` (graph/serving/app.py).

    routes    sign in / out, the pending list, the plan page, charts, report, decisions
    session   API key -> server-side session: signed HttpOnly SameSite=Strict cookie, CSRF
    view      what the plan page shows, in plain words, from the thread's state
    corpus    a policy document's sections, for citation links
    docs      Swagger UI from the `fastapi-offline` package's assets
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from graph.serving.errors import ApiError, error_response, status_of
from graph.serving.web.docs import add_offline_docs
from graph.serving.web.routes import TEMPLATES, SignInRequired, router
from graph.serving.web.session import Sessions
from tools.errors import RMNError

STATIC = Path(__file__).parent / "static"

__all__ = ["install_web"]


def install_web(app: FastAPI) -> None:
    """Add the review pages, their static files and the offline `/docs` to `app` (made by
    `create_app`, with its gate on `app.state`)."""
    app.state.review_sessions = Sessions(app.state.gate)
    app.mount("/static/review", StaticFiles(directory=STATIC), name="review-static")
    add_offline_docs(app)
    app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def to_signin(request: Request, err: SignInRequired) -> Response:
        return RedirectResponse("/review/signin", status_code=303)

    @app.exception_handler(RMNError)
    async def on_rmn_error(request: Request, err: RMNError) -> Response:
        # The API's JSON answer everywhere but on the review pages, which answer a page.
        if not request.url.path.startswith("/review"):
            return error_response(err)
        context = {"session": None, "csrf": "", "status": status_of(err), "message": err.message}
        headers = dict(err.headers) if isinstance(err, ApiError) else None  # Retry-After
        return TEMPLATES.TemplateResponse(request, "error.html", context,
                                          status_code=status_of(err), headers=headers)  # fmt: skip
