"""A plan written out for people: plan.json, report.md and charts, in one folder.

    paths = write_report(plan, Path("data/plans") / plan.thread_id)
    paths.markdown  # .../report.md

Writing is atomic (a temporary file renamed into place) and idempotent: the same plan gives
byte-identical files, a file whose bytes would not change is not rewritten, and charts a
previous version of the plan had but this one has not are removed.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from tools.errors import RMNError
from tools.plan import AllocationRow, Plan

PLAN_FILE = "plan.json"
REPORT_FILE = "report.md"
ALLOCATION_CHART = "allocation.png"
CURVES_CHART = "curves.png"
CHARTS = (ALLOCATION_CHART, CURVES_CHART)
TOP_CURVES = 6
MAX_LINES_SHOWN = 40
DPI = 100
# Finding types whose matched text is personal data: the report names them, never shows them.
PII_TYPES = frozenset(
    {"EMAIL", "PHONE", "SSN", "CREDIT_CARD", "IP_ADDRESS", "PERSON", "ADDRESS", "IBAN_CODE"}
)


class ReportError(RMNError):
    kind = "report_error"


with warnings.catch_warnings():
    # The contract names the field `json`; it shadows BaseModel's deprecated `json()` method.
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)

    class ReportPaths(BaseModel):
        json: Path
        markdown: Path
        charts: list[Path]


def write_report(plan: Plan, folder: Path) -> ReportPaths:
    """Write plan.json, report.md and the charts (allocation by retailer and placement,
    response curves of the top lines with their chosen points) into `folder`."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportError(f"cannot create the report folder {folder}: {err}") from None
    names = []
    if any(r.spend > 0 for r in plan.allocation):
        names.append(ALLOCATION_CHART)
    if _curve_lines(plan):
        names.append(CURVES_CHART)
    plan_json = (plan.model_dump_json(indent=2) + "\n").encode()
    markdown = render_markdown(plan, names).encode()
    paths = ReportPaths(
        json=folder / PLAN_FILE,
        markdown=folder / REPORT_FILE,
        charts=[folder / name for name in names],
    )
    # The charts are drawn from the plan alone: with plan.json and report.md unchanged and
    # every chart in place, a second call has nothing to draw.
    if (
        _same(paths.json, plan_json)
        and _same(paths.markdown, markdown)
        and all(p.is_file() for p in paths.charts)
        and not any((folder / n).exists() for n in CHARTS if n not in names)
    ):
        return paths
    for name in CHARTS:
        if name not in names:
            (folder / name).unlink(missing_ok=True)
    if ALLOCATION_CHART in names:
        _write_atomic(folder / ALLOCATION_CHART, allocation_chart(plan))
    if CURVES_CHART in names:
        _write_atomic(folder / CURVES_CHART, curves_chart(plan) or b"")
    # plan.json last: its presence with these bytes marks a complete report.
    _write_atomic(paths.markdown, markdown)
    _write_atomic(paths.json, plan_json)
    return paths


def _same(path: Path, data: bytes) -> bool:
    try:
        return path.is_file() and path.read_bytes() == data
    except OSError:
        return False


def _write_atomic(path: Path, data: bytes) -> None:
    if _same(path, data):
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise ReportError(f"cannot write {path}: {err}") from None


# --- markdown -------------------------------------------------------------------------------


def render_markdown(plan: Plan, charts: list[str]) -> str:
    """The report text; `charts` are the chart files written next to it."""
    out: list[str] = [f"# Plan {_cell(plan.thread_id)}", ""]
    out += [
        f"Status: **{plan.status}** | tenant: {_cell(plan.tenant)} | brand: "
        f"{_cell(plan.brief.brand_id)}",
        "",
    ]
    out += _brief(plan)
    out += _allocation(plan, ALLOCATION_CHART in charts)
    out += _outcome(plan, CURVES_CHART in charts)
    out += _shadow_prices(plan)
    out += _experiment(plan)
    out += _copy(plan)
    out += _governance(plan)
    out += _reflection(plan)
    out += _decision(plan)
    return "\n".join(out).rstrip() + "\n"


def _cell(value: Any) -> str:
    """A value safe inside a Markdown table cell: one line, pipes and HTML escaped."""
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def _usd(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"${value:,.0f}"


def _num(value: Any, digits: int = 2) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def _brief(plan: Plan) -> list[str]:
    out = ["## Brief", ""]
    out += ["> " + _cell(line) if line.strip() else ">" for line in plan.brief_text.splitlines()]
    out.append("")
    b = plan.brief
    rows: list[list[Any]] = [
        ["total budget", _usd(b.total_budget)],
        ["retailers", ", ".join(b.retailers) or "all of the brand's retailers"],
        ["objective", b.objective.replace("_", " ")],
        ["ROAS floor", _num(b.roas_floor) if b.roas_floor else "none"],
        ["experiment reserve", f"{b.experiment_reserve:.0%}"],
        ["flight", f"{b.flight_start or '?'} to {b.flight_end or '?'}"],
        ["exclude out-of-stock SKUs", "yes" if b.exclude_oos else "no"],
        ["parsed by", b.parsed_by],
    ]
    rows += [["warning", w] for w in b.warnings]
    return out + _table(["field", "value"], rows)


def _allocation(plan: Plan, chart: bool) -> list[str]:
    out = ["## Allocation", ""]
    funded = [r for r in plan.allocation if r.spend > 0]
    if not funded:
        return [*out, "No allocation: the optimizer did not produce a plan.", ""]
    total = sum(r.spend for r in funded)
    groups: dict[tuple[str, str], list[AllocationRow]] = {}
    for r in funded:
        groups.setdefault((r.retailer_id, r.placement), []).append(r)
    rows = []
    for (retailer, placement), items in sorted(groups.items()):
        spend = sum(r.spend for r in items)
        rows.append(
            [
                retailer,
                placement,
                len(items),
                _usd(spend),
                f"{spend / total:.1%}",
                _usd(sum(r.expected_revenue for r in items)),
                _usd(sum(r.expected_margin for r in items)),
            ]
        )
    out += _table(
        ["retailer", "placement", "lines", "spend", "share", "exp. revenue", "exp. margin"], rows
    )
    if chart:
        out += [f"![Allocation by retailer and placement]({ALLOCATION_CHART})", ""]
    top = sorted(funded, key=lambda r: (-r.spend, r.retailer_id, r.placement, r.gtin))
    lines = [
        [
            r.retailer_id,
            r.placement,
            r.gtin,
            _usd(r.spend),
            _usd(r.expected_revenue),
            _usd(r.expected_margin),
            _num(r.marginal_return, 3),
        ]
        for r in top[:MAX_LINES_SHOWN]
    ]
    shown = f"top {MAX_LINES_SHOWN} of {len(top)}" if len(top) > MAX_LINES_SHOWN else "all"
    out += [f"Line items ({shown}, by spend):", ""]
    out += _table(
        ["retailer", "placement", "GTIN", "spend", "exp. revenue", "exp. margin", "marginal"],
        lines,
    )
    return out


def _outcome(plan: Plan, chart: bool) -> list[str]:
    out = ["## Expected outcome", ""]
    o = plan.expected_outcome
    if o is None:
        out += ["No expected outcome.", ""]
    else:
        out += [
            f"Planned spend {_usd(o.spend)} plus an experiment reserve of {_usd(o.reserve)}.",
            "",
        ]
        rows = [
            ["incremental revenue", _usd(o.incremental_revenue.mean),
             _usd(o.incremental_revenue.low), _usd(o.incremental_revenue.high)],
            ["incremental margin", _usd(o.incremental_margin.mean),
             _usd(o.incremental_margin.low), _usd(o.incremental_margin.high)],
            ["iROAS", _num(o.iroas.mean), _num(o.iroas.low), _num(o.iroas.high)],
        ]  # fmt: skip
        out += _table(["metric", "expected", "90% low", "90% high"], rows)
    if chart:
        out += [
            f"![Response curves of the top lines with the chosen spend]({CURVES_CHART})",
            "",
        ]
    return out


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key in sorted(data):
        value = data[key]
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items += _flatten(value, f"{name}.")
        elif not isinstance(value, list):
            items.append((name, value))
    return items


def _shadow_prices(plan: Plan) -> list[str]:
    out = ["## Shadow prices", ""]
    items = _flatten(plan.shadow_prices)
    if not items:
        return [*out, "None reported.", ""]
    out += ["Objective gained per unit of each relaxed constraint, at the optimum.", ""]
    return out + _table(["constraint", "value"], [[k, _num(v, 4)] for k, v in items])


EXPERIMENT_FIELDS = (
    "retailer",
    "experiment_type",
    "start",
    "end",
    "duration_days",
    "budget",
    "test_spend",
    "daily_spend",
    "holdout_pct",
    "n_treatment",
    "n_control",
    "mde_lift",
    "mde_iroas",
    "expected_iroas",
    "power",
    "target_power",
    "adequate",
    "budget_for_target_power",
)


def _experiment(plan: Plan) -> list[str]:
    out = ["## Experiment", ""]
    e = plan.experiment
    if not e:
        return [*out, "No experiment designed.", ""]
    shown = [k for k in EXPERIMENT_FIELDS if k in e]
    shown += [k for k in sorted(e) if k not in shown and not isinstance(e[k], list | dict)]
    rows = [[k.replace("_", " "), _num(e[k], 3)] for k in shown]
    return out + _table(["field", "value"], rows)


def _copy(plan: Plan) -> list[str]:
    out = ["## Copy", ""]
    if not plan.copy_variants:
        return [*out, "No copy.", ""]
    rows = [
        [
            v.retailer_id,
            v.headline,
            v.body,
            v.disclaimer or "",
            "yes" if v.compliant else "no: " + ", ".join(v.violations),
            v.path,
            v.attempts,
            "+".join(v.adapters) or "none",
        ]
        for v in plan.copy_variants
    ]
    header = [
        "retailer",
        "headline",
        "body",
        "disclaimer",
        "compliant",
        "path",
        "tries",
        "adapters",
    ]
    return out + _table(header, rows)


def _governance(plan: Plan) -> list[str]:
    out = ["## Governance findings", ""]
    if not plan.governance:
        return [*out, "None.", ""]
    rows = []
    for f in plan.governance:
        text = "(personal data, not shown)" if f.type.upper() in PII_TYPES else f.text[:80]
        span = f"{f.start}-{f.end}" if f.start is not None and f.end is not None else ""
        rows.append([f.type, f.where, span, f.severity, f.action, text])
    return out + _table(["type", "where", "span", "severity", "action", "text"], rows)


def _reflection(plan: Plan) -> list[str]:
    out = ["## Reflection", ""]
    r = plan.reflection
    if r is None:
        return [*out, "No reflection.", ""]
    out += [
        f"**Confidence {r.confidence.value:.2f}** ({_cell(r.decision_threshold)}). "
        f"{_cell(r.confidence.rationale)}",
        "",
    ]
    if r.memory_reference:
        out += ["Similar past plans:", ""] + [f"- {_cell(m)}" for m in r.memory_reference] + [""]
    if r.alternate_frames:
        out += ["Alternate frames:", ""] + [f"- {_cell(a)}" for a in r.alternate_frames] + [""]
    risks = r.risk_assessment.high_risk_factors
    if risks:
        out += _table(
            ["risk", "severity", "signal", "mitigation"],
            [[k.factor, k.severity, k.signal, k.mitigation] for k in risks],
        )
    else:
        out += ["No risk factors measured.", ""]
    out += [f"Bias checkpoint: {_cell(r.bias_checkpoint)}", ""]
    out += [f"Words written by: {r.written_by}.", ""]
    return out


def _decision(plan: Plan) -> list[str]:
    out = ["## Decision", ""]
    d = plan.decision
    if d is None:
        return [*out, "Awaiting a decision.", ""]
    rows: list[list[Any]] = [["action", d.action], ["by", d.by], ["at", d.at.isoformat()]]
    if d.reason:
        rows.append(["reason", d.reason])
    rows += [[f"edit: {k}", json.dumps(v, default=str)] for k, v in sorted(d.changes.items())]
    return out + _table(["field", "value"], rows)


# --- charts ---------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    # A Figure without pyplot: no global backend or state, safe in threads.
    return Figure(figsize=(width, height), dpi=DPI)


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # No software tag: the bytes depend on the plan only.
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def allocation_chart(plan: Plan) -> bytes:
    """Spend by retailer (bars) split by placement (stacks), as PNG bytes."""
    spend: dict[str, dict[str, float]] = {}
    for r in plan.allocation:
        if r.spend > 0:
            by = spend.setdefault(r.retailer_id, {})
            by[r.placement] = by.get(r.placement, 0.0) + r.spend
    retailers = sorted(spend, key=lambda k: (-sum(spend[k].values()), k))
    placements = sorted({p for by in spend.values() for p in by})
    fig = _figure(7.0, 0.6 * len(retailers) + 1.6)
    ax = fig.add_subplot()
    left = np.zeros(len(retailers))
    colors = _colors(len(placements))
    for placement, color in zip(placements, colors, strict=True):
        values = np.array([spend[r].get(placement, 0.0) for r in retailers])
        ax.barh(retailers, values, left=left, label=placement, color=color)
        left += values
    ax.invert_yaxis()
    ax.set_xlabel("flight spend (USD)")
    ax.set_title("Allocation by retailer and placement")
    ax.xaxis.set_major_formatter(_usd_formatter())
    ax.legend(fontsize="small", loc="lower right")
    return _png(fig)


def curves_chart(plan: Plan, top: int = TOP_CURVES) -> bytes | None:
    """Revenue curves a(1 - exp(-x/b)) of the `top` lines by spend with their chosen spend
    marked, as PNG bytes; None when no funded line carries a curve."""
    lines = _curve_lines(plan)[:top]
    if not lines:
        return None
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    for r, color in zip(lines, _colors(len(lines)), strict=True):
        a, b = float(r.curve_a or 0), float(r.curve_b or 0)
        x = np.linspace(0.0, max(2.0 * r.spend, 1.5 * b), 60)
        label = f"{r.retailer_id}/{r.placement}/…{r.gtin[-4:]}"
        ax.plot(x, a * (1 - np.exp(-x / b)), color=color, label=label)
        ax.plot([r.spend], [a * (1 - math.exp(-r.spend / b))], "o", color=color)
    ax.set_xlabel("flight spend (USD)")
    ax.set_ylabel("expected incremental revenue (USD)")
    ax.set_title(f"Response curves of the top {len(lines)} lines (dots: planned spend)")
    ax.xaxis.set_major_formatter(_usd_formatter())
    ax.yaxis.set_major_formatter(_usd_formatter())
    ax.legend(fontsize="x-small")
    return _png(fig)


def _curve_lines(plan: Plan) -> list[AllocationRow]:
    """Funded lines with a usable curve, by spend."""
    lines = [
        r
        for r in plan.allocation
        if r.spend > 0
        and r.curve_a is not None
        and r.curve_b is not None
        and math.isfinite(r.curve_a)
        and math.isfinite(r.curve_b)
        and r.curve_a > 0
        and r.curve_b > 0
    ]
    return sorted(lines, key=lambda r: (-r.spend, r.retailer_id, r.placement, r.gtin))


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def _usd_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    def fmt(value: float, _pos: int) -> str:
        if abs(value) >= 1e6:
            return f"${value / 1e6:.1f}M"
        if abs(value) >= 1e3:
            return f"${value / 1e3:.0f}k"
        return f"${value:.0f}"

    return FuncFormatter(fmt)
