"""The planning graph's plumbing, without running it: the context and checkpointer settings,
the report folder a thread id maps to, and what a new plan and a new allocation reset."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from graph import Context, ContextError
from graph.checkpoint import CheckpointConfigError, default_checkpointer
from graph.graph import graph
from graph.state import (
    THREAD_FIELDS,
    State,
    accumulating,
    per_plan_defaults,
    stale_after_allocation,
)
from tools.brief import StructuredBrief
from tools.plan import STALE_AFTER_ALLOCATION, Decision, Plan
from tools.plan.report import thread_folder


def test_context_and_checkpointer_settings_fail_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert graph.checkpointer is None and graph.name == "rmn-copilot"
    with pytest.raises(ContextError, match="unknown model 'gpt'"):
        Context(model="gpt")
    with pytest.raises(ContextError, match="bogus"):
        Context.of({"tenant": "acme", "bogus": 1})
    with pytest.raises(ContextError, match="between 0 and 1"):
        Context(confidence_threshold=1.5)
    monkeypatch.setenv("RMN_CHECKPOINT_URL", "postgresql://u:p@localhost:1/db")
    try:
        import langgraph.checkpoint.postgres  # noqa: F401
    except ImportError:
        with pytest.raises(CheckpointConfigError, match="langgraph-checkpoint-postgres"):
            default_checkpointer(tmp_path)
    monkeypatch.setenv("RMN_CHECKPOINT_URL", "mysql://x")
    with pytest.raises(CheckpointConfigError, match="must start with"):
        default_checkpointer(tmp_path)
    monkeypatch.setenv("RMN_CHECKPOINT_URL", f"sqlite:///{tmp_path / 'cp.sqlite'}")
    default_checkpointer(tmp_path)
    assert (tmp_path / "cp.sqlite").is_file()


def test_a_new_plan_resets_every_per_plan_field_and_an_allocation_what_it_makes_stale() -> None:
    fresh = per_plan_defaults()
    # Every field but the thread's identity and the channels updates add to.
    assert set(accumulating()) == {"signals", "decisions", "adapters", "timings"}
    assert set(fresh) == {f.name for f in fields(State)} - set(THREAD_FIELDS) - set(accumulating())
    assert fresh == {  # the list the planner used to keep by hand
        "error": None, "parsed": None, "constraints": {}, "retrieved": [], "query_plan": None,
        "curves": None, "diagnosis": None, "allocation_notes": [], "measurement_notes": [],
        "plan": None, "copy_failures": [], "copy_missing": [], "creative_runs": 0,
        "governance_loops": 0, "rejected_copy": [], "flags": [], "review": None, "memory": [],
        "next_step": None, "report": None,
        "copy_cache": {},  # copy reused across edits of one brief, not across briefs
    }  # fmt: skip
    assert per_plan_defaults()["flags"] is not fresh["flags"]  # fresh lists every time
    assert stale_after_allocation() == {
        "creative_runs": 0, "governance_loops": 0, "copy_failures": [], "copy_missing": [],
        "rejected_copy": [], "flags": [], "review": None, "next_step": None,
    }  # fmt: skip
    brief = StructuredBrief(brand_id="acme", total_budget=1e6, retailers=["alpha"])
    decided = Plan(
        thread_id="t", tenant="acme", brief_text="x", brief=brief, experiment={"power": 0.8},
        reflection=None, decision=Decision(action="approve", at="2026-01-01T00:00:00Z"),
        status="approved", solver_status="old",
    )  # fmt: skip
    replanned = decided.with_allocation(
        brief=brief, allocation=[], expected_outcome=None, shadow_prices={}, solver_status="new"
    )
    assert replanned.solver_status == "new"
    assert {k: getattr(replanned, k) for k in STALE_AFTER_ALLOCATION} == {
        "experiment": None, "rationale": [], "copy_variants": [], "governance": [],
        "reflection": None, "decision": None, "status": "draft",
    }  # fmt: skip


def test_thread_folders_stay_inside_the_reports_folder(tmp_path: Path) -> None:
    assert thread_folder(tmp_path, "t-1") == tmp_path / "t-1"
    for bad in ("../../etc", "/abs/path", ".hidden", "a/b"):
        folder = thread_folder(tmp_path, bad)
        assert folder.parent == tmp_path and folder.name.startswith("thread-")
