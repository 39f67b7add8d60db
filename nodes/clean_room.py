"""clean_room: the brand's line items from the retailers' clean rooms (k-anonymity, blocked
fields and differential privacy enforced there), its first-party data joined on its own side,
and response curves fitted on both (`tools.pipeline.prepare_curves`). The data directory must
hold the market (`tools.pipeline.prepare_market` harmonizes reports newer than their events);
it is never simulated here."""

from __future__ import annotations

from langgraph.runtime import Runtime

from graph.context import Context
from graph.state import State
from graph.steps import Update, context_of, progress, step
from tools.pipeline import CurveRequest, prepare_curves, prepare_market


@step("clean_room")
def clean_room(state: State, runtime: Runtime[Context]) -> Update:
    ctx = context_of(runtime)
    say = progress(runtime, "clean_room")
    query = state.query_plan or {}
    data_dir = ctx.data_path()
    prepare_market(data_dir, progress=say)
    curves = prepare_curves(
        CurveRequest(
            data_dir=data_dir,
            tenant=ctx.tenant,
            brand=query["brand"],
            retailers=query["retailers"],
            flight_days=query["flight_days"],
            seed=ctx.seed,
        ),
        progress=say,
    )
    return {
        "curves": curves.model_dump(mode="json"),
        "status": "curves_ready",
        "next_step": None,
    }
