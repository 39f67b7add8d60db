"""finalize: the decided plan written as JSON and a Markdown report with charts under the
thread's own folder, and every review decision recorded in the decision store.

Both writes are idempotent (the report writer replaces its files atomically with the same
content, the store ignores a decision it already holds), so a run killed inside this step and
resumed from its checkpoint writes each side effect once.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from nodes import Update, context_of, state_get, step
from tools.errors import RMNError

DECISIONS_FILE = "decisions.sqlite"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def thread_folder(reports_dir: Path, thread_id: str) -> Path:
    """`<reports>/<thread_id>/`; an id that is not a plain file name (slashes, dots first,
    odd characters) gets a digest instead, so no thread writes outside the reports folder."""
    name = thread_id if _SAFE_ID.match(thread_id) and ".." not in thread_id else (
        "thread-" + hashlib.sha256(thread_id.encode()).hexdigest()[:32]
    )  # fmt: skip
    return Path(reports_dir) / name


def decisions_path(data_dir: Path) -> Path:
    return Path(data_dir) / DECISIONS_FILE


@step("finalize")
def finalize(state: Any, runtime: Any) -> Update:
    from tools.plan import Decision, Plan
    from tools.plan.decisions import DecisionStore
    from tools.plan.report import write_report

    ctx = context_of(runtime)
    entries = state_get(state, "decisions") or []
    if not entries:
        raise RMNError("the plan reached finalize without a decision")
    plan = Plan.model_validate(state_get(state, "plan"))
    final = Decision.model_validate(entries[-1]["decision"])
    plan.decision = final
    plan.status = "approved" if final.action in ("approve", "auto_approve") else "rejected"
    thread_id = plan.thread_id
    paths = write_report(plan, thread_folder(ctx.reports_path(), thread_id))
    store = DecisionStore(decisions_path(ctx.data_path()))
    for i, entry in enumerate(entries):
        judged = plan if i == len(entries) - 1 else Plan.model_validate(entry["plan"])
        store.record(thread_id, plan.tenant, judged, Decision.model_validate(entry["decision"]))
    return {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "status": plan.status,
        "report": paths.model_dump(mode="json") if hasattr(paths, "model_dump") else paths,
        "next_step": None,
    }
