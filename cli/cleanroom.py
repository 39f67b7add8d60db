"""`rmn cleanroom` commands: aggregate queries, privacy budget and the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli.common import JsonOption, emit, user_errors
from tools.paths import data_dir

app = typer.Typer(
    help="Query harmonized retail-media data as a brand: aggregates only, k-anonymous, audited.",
    no_args_is_help=True,
)

DataOption = typer.Option(None, "--data", help="Data directory (default: $RMN_DATA_DIR or ./data).")


def _data(data: Path | None) -> Path:
    return data if data is not None else data_dir()


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def _table(columns: list[str], rows: list[dict[str, Any]]) -> str:
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    numeric = [bool(rows) and all(isinstance(r.get(c), int | float) for r in rows) for c in columns]
    lines += [
        "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(row, widths, numeric, strict=True)
        )
        for row in cells
    ]
    return "\n".join(lines)


def _render_result(r: dict[str, Any]) -> str:
    head = (
        f"{r['tenant']} @ {r['retailer']}: {r['cells_returned']} cell(s) returned, "
        f"{r['cells_suppressed']} suppressed (k={r['k']}"
        + (
            f"; {r['secondary_suppressed']} of them to protect smaller cells"
            if r.get("secondary_suppressed")
            else ""
        )
        + ")"
    )
    dp = r["dp"]
    if dp:
        charged = (
            "answered from an earlier release, nothing charged"
            if dp["cached"]
            else f"charged {dp['charged']:g}"
        )
        head += (
            f"\ndifferential privacy: {dp['mechanism']}, epsilon {dp['epsilon']:g}, {charged} "
            f"(spent {dp['spent']:g} of {dp['budget']:g} this period, remaining "
            f"{dp['remaining']:g})"
        )
    body = _table(r["columns"], r["rows"]) if r["rows"] else "(no cell has k or more events)"
    return f"{head}\n\n{body}\n\naudit id: {r['audit_id']}"


@app.command("query")
def query(
    brand: str = typer.Option(..., "--brand", help="The tenant: only its campaigns are read."),
    retailer: str = typer.Option(..., "--retailer", help="Retailer id, e.g. alpha."),
    group_by: str = typer.Option(
        "",
        "--group-by",
        help="Comma-separated: date, week, geo, placement, sku, audience, campaign.",
    ),
    metrics: str = typer.Option(
        "events",
        "--metrics",
        help="Comma-separated: spend, impressions, clicks, conversions, attributed_sales, "
        "attributed_units, events; summed, or 'avg:spend' for the per-event mean.",
    ),
    filters: list[str] = typer.Option(  # noqa: B008
        [],
        "--filter",
        help="Repeatable: 'date>=2026-08-01', 'placement=sponsored_search', 'geo in 501,602', "
        "'date between 2026-08-01,2026-08-31'.",
    ),
    dp_epsilon: float | None = typer.Option(
        None,
        "--dp-epsilon",
        help="Add differential-privacy noise, spending this epsilon (at least 0.001); the same "
        "query asked again is answered from the first release, free.",
    ),
    limit: int | None = typer.Option(None, "--limit", help="Return at most N rows."),
    data: Path | None = DataOption,
    json: bool = JsonOption,
) -> None:
    """Run an aggregate query in a retailer's clean room."""
    with user_errors(json):
        from tools.cleanroom import CleanRoom, Filter, build_query

        q = build_query(
            tenant=brand,
            retailer=retailer,
            group_by=_csv(group_by),
            metrics=_csv(metrics),
            filters=[Filter.parse(f) for f in filters],
            dp_epsilon=dp_epsilon,
            limit=limit,
        )
        result = CleanRoom(_data(data)).query(q)
        emit(result.model_dump(mode="json"), json, _render_result)


@app.command("budget")
def budget(
    brand: str = typer.Option(..., "--brand", help="The tenant."),
    retailer: str = typer.Option(..., "--retailer", help="Retailer id."),
    data: Path | None = DataOption,
    json: bool = JsonOption,
) -> None:
    """Show the differential-privacy budget (epsilon) spent and remaining this period, and
    when it refreshes."""
    with user_errors(json):
        from tools.cleanroom import CleanRoom

        status = CleanRoom(_data(data)).budget(brand, retailer)
        emit(status.model_dump(mode="json"), json, _render_budget)


def _render_budget(s: dict[str, Any]) -> str:
    if s["period"] == "none":
        period = "the budget never refreshes"
    else:
        period = (
            f"{s['period']} budget since {s['period_start'][:10]}, refreshes on "
            f"{s['refreshes_at'][:10]} (UTC)"
        )
    return (
        f"{s['tenant']} @ {s['retailer']}: epsilon spent {s['spent']:g} of {s['budget']:g}, "
        f"remaining {s['remaining']:g} ({s['queries']} DP queries); {period}"
    )


def _render_audit(r: dict[str, Any]) -> str:
    if not r["entries"]:
        return "(no audit entries)"
    lines = []
    for e in r["entries"]:
        q = e["query"]
        what = f"group_by={','.join(q['group_by']) or '-'} metrics={','.join(q['metrics'])}"
        outcome = (
            f"{e['cells_returned']} returned, {e['cells_suppressed']} suppressed, "
            f"eps {e['epsilon_spent']:g}" + (" (earlier release)" if e.get("cached") else "")
            if e["status"] == "ok"
            else e["reason"]
        )
        lines.append(
            f"{e['ts'][:19]}  {e['audit_id'][:12]}  {e['tenant']}@{e['retailer']}  "
            f"{e['status']}  {what}  {outcome}"
        )
    return "\n".join(lines)


@app.command("audit")
def audit(
    tail: int = typer.Option(20, "--tail", min=1, help="Show the last N entries."),
    brand: str | None = typer.Option(None, "--brand", help="Only this tenant's entries."),
    data: Path | None = DataOption,
    json: bool = JsonOption,
) -> None:
    """Show the last entries of the clean-room audit log."""
    with user_errors(json):
        from tools.cleanroom import CleanRoom

        entries = CleanRoom(_data(data)).audit.tail(tail, tenant=brand)
        emit({"entries": entries}, json, _render_audit)
