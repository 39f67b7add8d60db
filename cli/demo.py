"""`rmn demo`: the main job on embedded defaults — generate a seeded market, harmonize every
retailer's export, ask the clean room and the policy corpus, and print a short summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import JsonOption, emit, progress_enabled, user_errors

POLICY_QUESTION = "what disclaimers does gamma require for vitamins?"
SAMPLE_BRIEF = (
    "Allocate $1.2M across Alpha and Beta to maximize incremental margin with ROAS >= 3, "
    "10% for experiments"
)


def run_plan(out: Path, brand: str, brief: str, model: str) -> dict[str, Any]:
    """The brief through the planning graph, approved at each question, as a script would."""
    from langgraph.types import Command

    from graph import Context, build_graph, run_config
    from tools.plan.questions import question_of

    started = time.perf_counter()
    app = build_graph(data_dir=out)
    ctx = Context(tenant=brand, model=model, data_dir=str(out))
    thread_id = f"demo-{int(time.time())}"
    config = run_config(thread_id, tenant=brand)
    state = app.invoke({"brief": brief, "brand_id": brand}, config, context=ctx)
    asked: list[str] = []
    while state.get("__interrupt__"):
        kind = (question_of(state["__interrupt__"][0].value) or {}).get("kind")
        if kind not in ("confirm_brief", "approval") or kind in asked:
            break  # an infeasible brief: the thread waits for a person
        asked.append(str(kind))
        state = app.invoke(Command(resume={"action": "approve"}), config, context=ctx)
    plan = state.get("plan") or {}
    outcome = plan.get("expected_outcome") or {}
    return {
        "thread_id": thread_id,
        "brief": brief,
        "model": model,
        "status": state.get("status"),
        "error": state.get("error"),
        "questions_approved": asked,
        "by_retailer": _by_retailer(plan.get("allocation") or []),
        "incremental_margin": outcome.get("incremental_margin"),
        "iroas": outcome.get("iroas"),
        "copy": [
            {k: c.get(k) for k in ("retailer_id", "headline", "path", "adapters")}
            for c in plan.get("copy") or []
        ],
        "confidence": ((plan.get("reflection") or {}).get("confidence") or {}).get("value"),
        # The thread keeps the report's path relative to the reports folder.
        "report": _report_file(ctx.reports_path(), state.get("report")),
        "node_seconds": state.get("timings"),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _report_file(reports: Path, report: dict[str, Any] | None) -> str | None:
    markdown = (report or {}).get("markdown")
    return str(Path(reports) / markdown) if markdown else None


def _by_retailer(rows: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        out[r["retailer_id"]] = round(out.get(r["retailer_id"], 0.0) + r["spend"], 2)
    return out


def run_demo(
    out: Path,
    seed: int,
    days: int,
    events: int,
    brand: str,
    retailer: str,
    brief: str = SAMPLE_BRIEF,
    model: str = "smollm2",
) -> dict[str, Any]:
    from tools.cleanroom import CleanRoom, build_query
    from tools.firstparty import FirstPartyStore
    from tools.harmonize.engine import harmonize_all
    from tools.rag import get_index
    from tools.world import generate_world, write_exports

    started = time.perf_counter()
    progress = progress_enabled()
    world = generate_world(seed=seed, days=days)
    export = write_exports(world, out, events=events, progress=progress)
    reports = harmonize_all(out / "raw", out / "rmis")

    # The brand's view: aggregates from the retailer's clean room ...
    answer = CleanRoom(out).query(
        build_query(
            tenant=brand,
            retailer=retailer,
            group_by=["placement"],
            metrics=["spend", "attributed_sales", "events"],
        )
    )
    # ... plus its own first-party data, which the clean room never sees.
    skus = FirstPartyStore(out, tenant=brand, brand=brand).skus().to_pylist()
    at_risk = sorted((s for s in skus if s["oos_prob"] >= 0.5), key=lambda s: -s["oos_prob"])

    index = get_index(progress=progress)
    hit = index.search(POLICY_QUESTION, retailers=["gamma"], k=1)

    return {
        "data": str(out),
        "world": {"seed": seed, "days": days, "start": export.start, "events": export.events},
        "harmonized": {
            r.retailer: {
                "rows_in": r.rows_in,
                "rows_out": r.rows_out,
                "rows_quarantined": r.rows_quarantined,
                "anomalies": {k: a.count for k, a in r.anomalies.items() if a.count},
                "crosswalk_coverage": r.crosswalk_coverage,
                "seconds": r.seconds,
            }
            for r in reports
        },
        "cleanroom": {
            "tenant": brand,
            "retailer": retailer,
            "k": answer.k,
            "cells_suppressed": answer.cells_suppressed,
            "rows": [
                row | {"attributed_roas": row["attributed_sales"] / row["spend"]}
                for row in answer.rows
                if row["spend"]
            ],
        },
        "first_party": {
            "brand": brand,
            "skus": len(skus),
            "high_stockout_risk": [
                {"gtin": s["gtin"], "name": s["name"], "oos_prob": s["oos_prob"]} for s in at_risk
            ],
        },
        "policy": {
            "question": POLICY_QUESTION,
            "source": hit.chunks[0].source if hit.chunks else None,
            "text": hit.chunks[0].text if hit.chunks else None,
        },
        "plan": run_plan(out, brand, brief, model),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _human(r: dict[str, Any]) -> str:
    w = r["world"]
    lines = [
        f"1. World: seed {w['seed']}, {w['days']} days from {w['start']}, "
        f"{w['events']:,} delivery records in four native export formats under {r['data']}/raw",
        f"2. Harmonized to RMIS ({r['data']}/rmis/<retailer>/events.parquet):",
    ]
    for retailer, h in r["harmonized"].items():
        lines.append(
            f"   {retailer:<6} {h['rows_in']:>9,} rows in -> {h['rows_out']:>9,} events, "
            f"{h['rows_quarantined']:>6,} quarantined, crosswalk {h['crosswalk_coverage']:.1%}"
        )
    c = r["cleanroom"]
    lines.append(
        f"3. Clean room, tenant {c['tenant']} at {c['retailer']} (k={c['k']}, "
        f"{c['cells_suppressed']} cells suppressed):"
    )
    for row in c["rows"]:
        lines.append(
            f"   {row['placement']:<18} spend ${row['spend']:>12,.0f}   attributed sales "
            f"${row['attributed_sales']:>13,.0f}   attributed ROAS {row['attributed_roas']:.2f}"
        )
    f = r["first_party"]
    risky = ", ".join(f"{s['name']} ({s['oos_prob']:.0%})" for s in f["high_stockout_risk"][:3])
    lines.append(
        f"4. First-party data of {f['brand']}: {f['skus']} SKUs, "
        f"{len(f['high_stockout_risk'])} at high stock-out risk in the flight"
        + (f", e.g. {risky}" if risky else "")
    )
    p = r["policy"]
    lines.append(f"5. Policy question: {p['question']}")
    if p["source"]:
        snippet = " ".join(p["text"].split())
        lines.append(f"   {p['source']}: {snippet[:160]}{'...' if len(snippet) > 160 else ''}")
    pl = r["plan"]
    lines.append(f'6. Plan ({pl["model"]}): "{pl["brief"]}" -> {pl["status"]}')
    if pl.get("error"):
        lines.append(f"   error: {pl['error'].get('message')}")
    spend = ", ".join(f"{k} ${v:,.0f}" for k, v in pl["by_retailer"].items())
    if spend:
        lines.append(f"   spend: {spend}")
    m, roas = pl.get("incremental_margin"), pl.get("iroas")
    if m and roas:
        lines.append(
            f"   expected incremental margin ${m['mean']:,.0f} [${m['low']:,.0f}, "
            f"${m['high']:,.0f}], iROAS {roas['mean']:.2f}; confidence {pl['confidence']}"
        )
    for c in pl["copy"][:4]:
        lines.append(f"   copy [{c['retailer_id']}] {c['headline']} ({c['path']})")
    if pl.get("report"):
        lines.append(f"   report: {pl['report']}")
    lines.append(f"Done in {r['seconds']:.1f} s (plan {pl['seconds']:.1f} s).")
    return "\n".join(lines)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Where to write the data.")] = Path("data"),
    seed: Annotated[int, typer.Option(help="World seed.")] = 7,
    days: Annotated[int, typer.Option(help="History days.")] = 90,
    events: Annotated[int, typer.Option(help="Delivery records to simulate.")] = 1_000_000,
    brand: Annotated[str, typer.Option(help="The tenant whose view is shown.")] = "acme",
    retailer: Annotated[str, typer.Option(help="The clean room to query.")] = "alpha",
    brief: Annotated[str, typer.Option(help="The brief to plan.")] = SAMPLE_BRIEF,
    model: Annotated[
        str, typer.Option(help="smollm2 (bundled model and adapters), tiny or none.")
    ] = "smollm2",
    as_json: bool = JsonOption,
) -> None:
    """Run the main job on embedded defaults: market, clean room, policies, then a full plan."""
    with user_errors(as_json):
        emit(run_demo(out, seed, days, events, brand, retailer, brief, model), as_json, _human)
