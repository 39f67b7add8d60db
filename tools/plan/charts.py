"""The report's charts, drawn from a plan: spend by retailer and placement, and the response
curves of the top lines with their chosen spend. PNG bytes, deterministic for one plan (no
software tag), drawn on a Figure without pyplot (no global state; safe in threads)."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from tools.plan import AllocationRow, Plan
from tools.plan.labels import line_label, retailer_name, words

TOP_CURVES = 6
DPI = 100


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
        ax.barh([retailer_name(r) for r in retailers], values, left=left,
                label=words(placement), color=color)  # fmt: skip
        left += values
    ax.invert_yaxis()
    ax.set_xlabel("flight spend (USD)")
    ax.set_title("Allocation by retailer and placement")
    ax.xaxis.set_major_formatter(_usd_formatter())
    ax.legend(fontsize="small", loc="lower right")
    return _png(fig)


def curves_chart(
    plan: Plan, top: int = TOP_CURVES, names: dict[str, str] | None = None
) -> bytes | None:
    """Revenue curves a(1 - exp(-x/b)) of the `top` lines by spend with their chosen spend
    marked, as PNG bytes; None when no funded line carries a curve. Each line is labelled
    "Retailer, placement, product" (`names`: GTIN -> product name)."""
    lines = curve_lines(plan)[:top]
    if not lines:
        return None
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    for r, color in zip(lines, _colors(len(lines)), strict=True):
        a, b = float(r.curve_a or 0), float(r.curve_b or 0)
        x = np.linspace(0.0, max(2.0 * r.spend, 1.5 * b), 60)
        label = (
            line_label(r.retailer_id, r.placement, r.gtin, names)
            if names and r.gtin in names
            else f"{retailer_name(r.retailer_id)}, {words(r.placement)}, …{r.gtin[-4:]}"
        )
        ax.plot(x, a * (1 - np.exp(-x / b)), color=color, label=label)
        ax.plot([r.spend], [a * (1 - math.exp(-r.spend / b))], "o", color=color)
    ax.set_xlabel("flight spend (USD)")
    ax.set_ylabel("expected incremental revenue (USD)")
    ax.set_title(f"Response curves of the top {len(lines)} lines (dots: planned spend)")
    ax.xaxis.set_major_formatter(_usd_formatter())
    ax.yaxis.set_major_formatter(_usd_formatter())
    ax.legend(fontsize="x-small")
    return _png(fig)


def curve_lines(plan: Plan) -> list[AllocationRow]:
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
