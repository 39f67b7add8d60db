"""finalize: the decided plan written as JSON and a Markdown report with charts under the
thread's own folder, and every review decision recorded in the decision store.

Both writes are idempotent (the report writer replaces its files atomically with the same
content, the store ignores a decision it already holds), so a run killed inside this step and
resumed from its checkpoint writes each side effect once.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import State
from graph.steps import Update, context_of, step
from tools.errors import RMNError
from tools.pipeline import product_names
from tools.plan import Decision, Plan
from tools.plan.decisions import CHOSEN, DecisionStore, decisions_path
from tools.plan.report import thread_folder, write_report


@step("finalize")
def finalize(state: State, runtime: Runtime[Context]) -> Update:
    ctx = context_of(runtime)
    entries = state.decisions or []
    if not entries:
        raise RMNError("the plan reached finalize without a decision")
    plan = Plan.model_validate(state.plan)
    final = Decision.model_validate(entries[-1]["decision"])
    plan.decision = final
    plan.status = "approved" if final.action in CHOSEN else "rejected"
    thread_id = plan.thread_id
    reports = ctx.reports_path()
    history = [Decision.model_validate(e["decision"]) for e in entries]
    # Products by name in the report (the brand's products file, as the creative step read it).
    names = product_names(ctx.data_path(), plan.tenant, plan.brief.brand_id)
    paths = write_report(plan, thread_folder(reports, thread_id), history, names)
    store = DecisionStore(decisions_path(ctx.data_path()))
    for i, entry in enumerate(entries):
        judged = plan if i == len(entries) - 1 else Plan.model_validate(entry["plan"])
        store.record(thread_id, plan.tenant, judged, Decision.model_validate(entry["decision"]))
    return {
        "plan": plan.model_dump(mode="json", by_alias=True),
        "status": plan.status,
        # Relative to the reports folder: the state carries no server paths.
        "report": paths.relative_to(reports).model_dump(mode="json"),
        "next_step": None,
    }
