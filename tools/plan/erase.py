"""Erasing what the planning graph keeps of a thread outside its checkpoints: the report folder
(`<reports>/<thread>/`), the reviewers' ratings of it (`tools.plan.feedback`) and the thread's
rows in the decision store, which the reflection's memory of past plans reads, so later plans
stop citing it. The HTTP API's thread delete and
`rmn threads delete` call it next to erasing the checkpoints.

    erased = erase_thread_records(data_dir, reports_dir, tenant="acme", thread_id="plan-1")
    erased.report, erased.decisions   # True, 2
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pydantic import BaseModel

from tools.errors import AccessDeniedError, RMNError
from tools.plan.decisions import DecisionStore, decisions_path
from tools.plan.feedback import FeedbackStore, feedback_path
from tools.plan.report import PLAN_FILE, thread_folder

__all__ = ["ErasedRecords", "erase_thread_records"]


class ErasedRecords(BaseModel):
    """What was erased: the report folder (whether one was there) and decision rows."""

    report: bool
    decisions: int
    feedback: int = 0


def _report_owner(folder: Path) -> str | None:
    try:
        return json.loads((folder / PLAN_FILE).read_text(encoding="utf-8")).get("tenant")
    except (OSError, ValueError, AttributeError):
        return None


def erase_thread_records(
    data_dir: Path, reports_dir: Path, *, tenant: str, thread_id: str
) -> ErasedRecords:
    """Remove the thread's report folder, its ratings and its decision rows (the tenant's
    only). A report written for another tenant is refused, never removed."""
    folder = thread_folder(Path(reports_dir), thread_id)
    removed = False
    if folder.is_dir():
        owner = _report_owner(folder)
        if owner is not None and owner != tenant:
            raise AccessDeniedError(
                f"the report of thread {thread_id!r} belongs to another tenant", tenant=tenant
            )
        try:
            shutil.rmtree(folder)
        except OSError as err:
            raise RMNError(f"cannot remove the report folder of {thread_id!r}: {err}") from None
        removed = True
    rows = DecisionStore(decisions_path(Path(data_dir))).delete_thread(thread_id, tenant=tenant)
    rated = FeedbackStore(feedback_path(Path(data_dir))).delete_thread(thread_id, tenant=tenant)
    return ErasedRecords(report=removed, decisions=rows, feedback=rated)
