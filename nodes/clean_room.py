"""clean_room: the brand's line items from the retailers' clean rooms (k-anonymity, blocked
fields and differential privacy enforced there), its first-party data joined on its own side,
and response curves fitted on both (`tools.pipeline.prepare_curves`)."""

from __future__ import annotations

from typing import Any

from nodes import Update, context_of, progress, state_get, step


@step("clean_room")
def clean_room(state: Any, runtime: Any) -> Update:
    from tools.pipeline import CurveRequest, ensure_world, prepare_curves

    ctx = context_of(runtime)
    say = progress(runtime, "clean_room")
    query = state_get(state, "query_plan")
    data_dir = ctx.data_path()
    ensure_world(data_dir, progress=say)
    curves = prepare_curves(
        CurveRequest(
            data_dir=data_dir,
            tenant=state_get(state, "tenant"),
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
