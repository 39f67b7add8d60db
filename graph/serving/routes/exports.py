"""A plan's way out over HTTP: the approved plan as a workbook or CSV files for the networks'
portals (`tools.export`), and the report and its charts, for the thread's own tenant only.
Another tenant's thread answers exactly as an id nobody uses (404), through the same
thread-ownership check every thread route makes.

    GET /threads/{id}/export?format=xlsx|csv   the workbook (csv: a zip of the CSV files)
    GET /threads/{id}/report                   report.md
    GET /threads/{id}/charts/{name}.png        allocation.png, curves.png
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from graph.serving.errors import ConflictError, NotFoundError
from graph.serving.routes import Server, Tenant
from graph.serving.runs import GraphServer
from tools import paths
from tools.catalog import catalog_root
from tools.export import ExportError, build_export, csv_files, workbook_bytes, zip_of
from tools.plan import Plan
from tools.plan.report import ReportPaths

router = APIRouter(prefix="/threads", tags=["exports"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_CHART = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def _dirs(server: GraphServer) -> tuple[Path, Path]:
    """(data directory, reports folder) the server plans in."""
    ctx = server.settings.server_context
    data = Path(ctx["data_dir"]) if ctx.get("data_dir") else paths.data_dir()
    reports = Path(ctx["reports_dir"]) if ctx.get("reports_dir") else data / "reports"
    return data, reports


def _values(server: GraphServer, tenant: str, thread_id: str) -> dict[str, Any]:
    """The tenant's thread's state values (404 for an id it does not own)."""
    state = server.state(tenant, thread_id, None, False)
    return dict(state.get("values") or {})


def _report(server: GraphServer, tenant: str, thread_id: str) -> ReportPaths:
    values = _values(server, tenant, thread_id)
    if not values.get("report"):
        raise ConflictError(
            f"thread {thread_id} has no report yet: it is written when the plan is approved "
            "or rejected",
            thread_id=thread_id,
        )
    return ReportPaths.model_validate(values["report"]).under(_dirs(server)[1])


def _export(server: GraphServer, tenant: str, thread_id: str, fmt: str) -> tuple[bytes, str, str]:
    values = _values(server, tenant, thread_id)
    if not values.get("plan"):
        raise ConflictError(f"thread {thread_id} holds no plan yet", thread_id=thread_id)
    plan = Plan.model_validate(values["plan"])
    data, _ = _dirs(server)
    with paths.use_catalog(catalog_root(data)):
        try:
            built = build_export(plan, data)
        except ExportError as err:
            raise ConflictError(err.message, **err.detail) from None
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", thread_id)
    if fmt == "xlsx":
        return workbook_bytes(built), XLSX, f"plan-{name}.xlsx"
    return zip_of(csv_files(built)), "application/zip", f"plan-{name}-csv.zip"


@router.get("/{thread_id}/export")
async def export_plan(
    thread_id: str, server: Server, tenant: Tenant, format: Literal["xlsx", "csv"] = "xlsx"
) -> Response:
    """The approved plan per retailer, ready for the networks' portals (409 until approved)."""
    body, media, filename = await run_in_threadpool(_export, server, tenant, thread_id, format)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(content=body, media_type=media, headers=headers)


@router.get("/{thread_id}/report")
async def get_report(thread_id: str, server: Server, tenant: Tenant) -> Response:
    """The plan's report (Markdown)."""
    report = await run_in_threadpool(_report, server, tenant, thread_id)
    if not report.markdown.is_file():
        raise NotFoundError(f"the report of thread {thread_id} is gone", thread_id=thread_id)
    return Response(content=report.markdown.read_bytes(), media_type="text/markdown")


@router.get("/{thread_id}/charts/{name}.png")
async def get_chart(thread_id: str, name: str, server: Server, tenant: Tenant) -> Response:
    """One of the report's charts (allocation, curves)."""
    report = await run_in_threadpool(_report, server, tenant, thread_id)
    charts = {c.stem: c for c in report.charts}
    if not _CHART.match(name) or name not in charts or not charts[name].is_file():
        raise NotFoundError(
            f"thread {thread_id} has no chart {name!r}; charts: {', '.join(sorted(charts))}",
            thread_id=thread_id,
        )
    return Response(content=charts[name].read_bytes(), media_type="image/png")
