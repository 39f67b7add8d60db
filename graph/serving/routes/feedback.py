"""Reviewers' ratings over HTTP (`tools.plan.feedback`): rate a plan's copy variants and
rationale, or say why a plan was edited or rejected. Tenant-scoped like every thread route:
another tenant's thread answers exactly as an id nobody uses (404). The review pages rate
through the same `rate` (graph/serving/web/routes.py).

    POST /threads/{id}/feedback   {"target": "copy", "index": 0, "thumbs": "down",
                                   "score": 2, "corrected": "Headline\\nBody"}  -> 201, the record
    GET  /threads/{id}/feedback   the thread's ratings
    GET  /feedback                every rating of the caller's tenant
    GET  /feedback/stats          counts, agreement, the worst-rated retailers and tasks
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from graph.serving.errors import NotFoundError
from graph.serving.policy import Caller
from graph.serving.routes import Server, Tenant, User
from graph.serving.runs import GraphServer
from tools import paths
from tools.plan import Plan
from tools.plan.feedback import (
    FeedbackIn,
    FeedbackRecord,
    FeedbackStore,
    feedback_path,
    feedback_stats,
    rated_item,
)

router = APIRouter(tags=["feedback"])


def feedback_store(server: GraphServer) -> FeedbackStore:
    """The ratings store of the data directory the server plans in."""
    given = server.settings.server_context.get("data_dir")
    return FeedbackStore(feedback_path(Path(given) if given else paths.data_dir()))


def rate(
    server: GraphServer,
    caller: Caller,
    thread_id: str,
    body: FeedbackIn,
    values: dict[str, Any] | None = None,
) -> FeedbackRecord:
    """Store one rating of the caller's tenant's thread's plan: as it stands, or as `values`
    held it (a plan rated as it was shown, before the edit it explains). 404: not the
    tenant's thread, or no plan yet; 422: no such variant or text. The reviewer is the key's
    label and id (`Caller.reviewer`)."""
    row = server.own_thread(caller.tenant, thread_id)
    if values is None:
        values = server.thread_json(row).get("values") or {}
    if not values.get("plan"):
        raise NotFoundError(f"thread {thread_id} has no plan yet", thread_id=thread_id)
    item = rated_item(Plan.model_validate(values["plan"]), body)
    return feedback_store(server).add(tenant=caller.tenant, thread_key=row["key"],
                                      thread_id=row["thread_id"], item=item, rating=body,
                                      reviewer=caller.reviewer)  # fmt: skip


def thread_ratings(server: GraphServer, tenant: str, thread_id: str) -> list[FeedbackRecord]:
    row = server.own_thread(tenant, thread_id)
    return feedback_store(server).list(tenant, thread_key=row["key"])


@router.post("/threads/{thread_id}/feedback", status_code=201)
async def post_feedback(thread_id: str, body: FeedbackIn, server: Server, caller: User) -> Any:
    record = await run_in_threadpool(rate, server, caller, thread_id, body)
    return record.model_dump(mode="json")


@router.get("/threads/{thread_id}/feedback")
async def list_thread_feedback(thread_id: str, server: Server, tenant: Tenant) -> Any:
    rows = await run_in_threadpool(thread_ratings, server, tenant, thread_id)
    return [r.model_dump(mode="json") for r in rows]


@router.get("/feedback")
async def list_feedback(server: Server, tenant: Tenant) -> Any:
    rows = await run_in_threadpool(lambda: feedback_store(server).list(tenant))
    return [r.model_dump(mode="json") for r in rows]


@router.get("/feedback/stats")
async def feedback_dashboard(server: Server, tenant: Tenant) -> Any:
    rows = await run_in_threadpool(lambda: feedback_store(server).list(tenant))
    return feedback_stats(rows).model_dump(mode="json")
