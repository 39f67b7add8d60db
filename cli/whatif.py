"""`rmn whatif THREAD --budgets 1M,1.2M,1.5M`: the thread's plan re-solved at other budgets on
its own fitted curves and constraints (`tools.plan.whatif`): expected margin and revenue with
90% intervals, return per ad dollar, what the next dollar brings, and the budget above which
the next ad dollar no longer pays back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.catalog import data_dir_catalog
from cli.common import JsonOption, emit, user_errors
from cli.plan import BrandOption, DataOption, Session
from tools.errors import RMNError
from tools.plan.questions import usd


def render(sweep: dict[str, Any]) -> str:
    lines = [f"{'budget':>10}  {'ad spend':>10}  {'extra margin (90% interval)':<34}"
             f"{'per ad $':>9}  {'next $ brings':>14}"]  # fmt: skip
    what = "margin" if sweep["objective"] == "incremental_margin" else "revenue"
    for p in sweep["points"]:
        if not p["feasible"]:
            lines.append(f"{usd(p['budget']):>10}  {p['note']}")
            continue
        m = p["margin"]
        band = f"{usd(m['mean'])} ({usd(m['low'])}-{usd(m['high'])})"
        nxt = p["next_dollar_objective"]
        brings = "-" if nxt is None else f"${nxt:.2f} {what}"
        per = f"${p['iroas']['mean']:.2f}"
        lines.append(f"{usd(p['budget']):>10}  {usd(p['spend']):>10}  {band:<34}"
                     f"{per:>9}  {brings:>14}")  # fmt: skip
    lines.append(sweep["pays_back_note"].capitalize() + ".")
    return "\n".join(lines)


def whatif(
    thread_id: str = typer.Argument(..., help="The planning thread."),
    budgets: str = typer.Option(..., "--budgets", help="Budgets to try: 1M,1.2M,1500k."),
    brand: str = BrandOption,
    data_dir: Path | None = DataOption,
    json_out: bool = JsonOption,
) -> None:
    """What-if: the thread's plan at other budgets, from the same curves and optimizer."""
    from tools.brief.schema import StructuredBrief
    from tools.pipeline.curves import CurveSummary
    from tools.plan.whatif import parse_budgets, what_if

    with user_errors(json_out):
        amounts = parse_budgets(budgets)
        with data_dir_catalog(data_dir) as folder:
            session = Session(brand, "none", folder)
            values = session.state(thread_id)["values"]
            if not values.get("curves") or not values.get("parsed"):
                raise RMNError(f"thread {thread_id} has no fitted curves yet", thread=thread_id)
            curves = CurveSummary.model_validate(values["curves"]).located(
                session.context.data_path()
            )
            brief = StructuredBrief.model_validate(values["parsed"])
            sweep = what_if(curves, brief, values.get("constraints") or {}, amounts)
        emit(sweep.model_dump(mode="json"), json_out, render)
