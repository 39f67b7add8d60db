"""A plan written out for people: plan.json, report.md and charts, in one folder.

    paths = write_report(plan, thread_folder(reports_dir, plan.thread_id))
    paths.markdown  # <reports>/<thread>/report.md

Writing is atomic (a temporary file renamed into place) and idempotent: the same plan gives
byte-identical files, a file whose bytes would not change is not rewritten, and charts a
previous version of the plan had but this one has not are removed. The text is
`tools.plan.report_markdown`'s.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tools.errors import RMNError
from tools.plan import Decision, Plan
from tools.plan.charts import allocation_chart, curve_lines, curves_chart
from tools.plan.report_markdown import ALLOCATION_CHART, CURVES_CHART, render_markdown

PLAN_FILE = "plan.json"
REPORT_FILE = "report.md"
CHARTS = (ALLOCATION_CHART, CURVES_CHART)
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class ReportError(RMNError):
    kind = "report_error"


with warnings.catch_warnings():
    # The contract names the field `json`; it shadows BaseModel's deprecated `json()` method.
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)

    class ReportPaths(BaseModel):
        json: Path
        markdown: Path
        charts: list[Path]

        def relative_to(self, base: Path) -> ReportPaths:
            """These paths relative to `base`, the reports folder: what a thread's state
            keeps, so that it carries no path of the server's disk."""
            return self.model_copy(update=_mapped(self, lambda p: p.relative_to(base)))

        def under(self, base: Path) -> ReportPaths:
            """Paths kept relative to the reports folder `base`, resolved against it (an
            absolute path, from an older thread, is kept)."""
            return self.model_copy(update=_mapped(self, lambda p: Path(base) / p))


def _mapped(paths: ReportPaths, fn: Callable[[Path], Path]) -> dict[str, Any]:
    return {"json": fn(paths.json), "markdown": fn(paths.markdown),
            "charts": [fn(c) for c in paths.charts]}  # fmt: skip


def thread_folder(reports_dir: Path, thread_id: str) -> Path:
    """`<reports>/<thread_id>/`; an id that is not a plain file name (slashes, dots first,
    odd characters) gets a digest instead, so no thread writes outside the reports folder."""
    name = thread_id if _SAFE_ID.match(thread_id) and ".." not in thread_id else (
        "thread-" + hashlib.sha256(thread_id.encode()).hexdigest()[:32]
    )  # fmt: skip
    return Path(reports_dir) / name


def write_report(
    plan: Plan,
    folder: Path,
    decisions: list[Decision] | None = None,
    names: dict[str, str] | None = None,
) -> ReportPaths:
    """Write plan.json, report.md and the charts (allocation by retailer and placement,
    response curves of the top lines with their chosen points) into `folder`. `decisions`:
    every review decision of the thread in order (edits included); default the plan's own.
    `names`: GTIN -> product name, so the report names products (`render_markdown`)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ReportError(f"cannot create the report folder {folder}: {err}") from None
    charts = []
    if any(r.spend > 0 for r in plan.allocation):
        charts.append(ALLOCATION_CHART)
    if curve_lines(plan):
        charts.append(CURVES_CHART)
    plan_json = (plan.model_dump_json(indent=2) + "\n").encode()
    markdown = render_markdown(plan, charts, decisions, names).encode()
    paths = ReportPaths(
        json=folder / PLAN_FILE,
        markdown=folder / REPORT_FILE,
        charts=[folder / name for name in charts],
    )
    # The charts are drawn from the plan alone: with plan.json and report.md unchanged and
    # every chart in place, a second call has nothing to draw.
    if (
        _same(paths.json, plan_json)
        and _same(paths.markdown, markdown)
        and all(p.is_file() for p in paths.charts)
        and not any((folder / n).exists() for n in CHARTS if n not in charts)
    ):
        return paths
    for name in CHARTS:
        if name not in charts:
            (folder / name).unlink(missing_ok=True)
    if ALLOCATION_CHART in charts:
        _write_atomic(folder / ALLOCATION_CHART, allocation_chart(plan))
    if CURVES_CHART in charts:
        _write_atomic(folder / CURVES_CHART, curves_chart(plan, names=names) or b"")
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
