"""`/docs` that works offline: Swagger UI's assets served from the `fastapi-offline` package
(Swagger UI 5, which reads the OpenAPI 3.1 FastAPI writes) under `/static/swagger`, never
from a CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_PREFIX = "/static/swagger"

__all__ = ["SWAGGER_PREFIX", "add_offline_docs", "swagger_assets"]


def swagger_assets() -> Path:
    import fastapi_offline  # the assets' package; nothing else of it is used

    return Path(fastapi_offline.__file__).parent / "static"


def add_offline_docs(app: FastAPI) -> None:
    """Serve `/docs` (the app must be made with `docs_url=None`) from local assets."""
    app.mount(SWAGGER_PREFIX, StaticFiles(directory=swagger_assets()), name="swagger")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url=f"{SWAGGER_PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_PREFIX}/favicon.png",
        )
