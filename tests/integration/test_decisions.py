"""The decision store: idempotent records across threads and processes, tenant isolation,
similar-plan memory and preference pairs."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tools.brief.schema import StructuredBrief
from tools.errors import AccessDeniedError
from tools.plan import AllocationRow, Decision, ExpectedOutcome, Interval, Plan
from tools.plan.decisions import DecisionStore, DecisionStoreError, plan_revision

WHEN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def make_plan(
    thread: str = "t-1",
    tenant: str = "acme",
    budget: float = 100_000,
    retailers: tuple[str, ...] = ("alpha", "beta"),
    objective: str = "incremental_margin",
    text: str | None = None,
    spend_scale: float = 1.0,
) -> Plan:
    rows = [
        AllocationRow(
            retailer_id=r,
            placement="sponsored_product",
            gtin="00012345000012",
            spend=spend_scale * budget * 0.9 / len(retailers),
            expected_revenue=2.5 * budget * 0.9 / len(retailers),
            expected_margin=0.7 * budget * 0.9 / len(retailers),
        )
        for r in retailers
    ]
    brief = StructuredBrief(
        brand_id=tenant if tenant in ("acme", "globex") else "acme",
        total_budget=budget,
        retailers=list(retailers),
        objective=objective,  # type: ignore[arg-type]
    )
    iroas = Interval(mean=2.5 / spend_scale, low=2.0 / spend_scale, high=3.0 / spend_scale)
    return Plan(
        thread_id=thread,
        tenant=tenant,
        brief_text=text or f"Plan ${budget:,.0f} on {' and '.join(retailers)}",
        brief=brief,
        allocation=rows,
        expected_outcome=ExpectedOutcome(
            spend=budget * 0.9,
            reserve=budget * 0.1,
            incremental_revenue=Interval(mean=2.5 * budget, low=2 * budget, high=3 * budget),
            incremental_margin=Interval(mean=0.7 * budget, low=0.5 * budget, high=0.9 * budget),
            iroas=iroas,
        ),
    )


def decide(action: str, reason: str | None = None, **changes: object) -> Decision:
    return Decision(action=action, reason=reason, changes=changes, at=WHEN)  # type: ignore[arg-type]


def test_a_decision_is_recorded_once(tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "d.sqlite")
    plan = make_plan()
    assert store.record("t-1", "acme", plan, decide("approve"))
    # The final node re-run after a crash: same thread, action and plan revision.
    again = plan.model_copy(update={"status": "approved", "decision": decide("approve")})
    assert not store.record("t-1", "acme", again, decide("approve"))
    rows = store.list("acme")
    assert len(rows) == 1 and rows[0].plan == plan and rows[0].revision == plan_revision(plan)
    # A re-optimised plan after an edit is a new revision; a different action is a new record.
    assert store.record("t-1", "acme", plan, decide("edit", roas_floor=2.5))
    edited = make_plan(spend_scale=0.8)
    assert plan_revision(edited) != plan_revision(plan)
    assert store.record("t-1", "acme", edited, decide("approve"))
    assert [r.action for r in store.list()] == ["approve", "edit", "approve"]
    row = store.list()[1]
    assert row.changes == {"roas_floor": 2.5} and row.at == WHEN and row.by == "human"
    assert row.brief == plan.brief and row.retailers == ["alpha", "beta"]


def test_records_from_many_threads_and_processes_land_once(tmp_path: Path) -> None:
    path = tmp_path / "d.sqlite"
    store = DecisionStore(path)
    plan = make_plan()
    results: list[bool] = []

    def worker() -> None:
        results.append(DecisionStore(path).record("t-1", "acme", plan, decide("approve")))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    code = (
        "import sys; from pathlib import Path; from datetime import datetime, UTC;"
        "from tools.plan.decisions import DecisionStore; from tools.plan import Plan, Decision;"
        "plan = Plan.model_validate_json(sys.stdin.read());"
        "d = Decision(action='reject', reason='too much on beta',"
        " at=datetime(2025, 3, 1, tzinfo=UTC));"
        "print(DecisionStore(Path(sys.argv[1])).record('t-1', 'acme', plan, d))"
    )  # fmt: skip
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(plan.model_dump_json(), timeout=120)[0].strip() for p in procs]
    assert sorted(outs) == ["False", "True"]
    assert [r.action for r in store.list()] == ["approve", "reject"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_plan_is_recorded_under_its_own_tenant_and_thread(tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "d.sqlite")
    with pytest.raises(AccessDeniedError, match="belongs to tenant 'acme'"):
        store.record("t-1", "globex", make_plan(), decide("approve"))
    with pytest.raises(DecisionStoreError, match="not the plan of thread"):
        store.record("t-2", "acme", make_plan(), decide("approve"))
    assert store.list() == []


def test_an_unusable_path_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DecisionStoreError, match="cannot open the decision store"):
        DecisionStore(blocker / "d.sqlite")


def test_similar_ranks_this_tenants_plans_and_never_another_tenants(tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "d.sqlite")
    past = [
        make_plan("t-near", budget=110_000, retailers=("alpha", "beta")),
        make_plan("t-mid", budget=400_000, retailers=("alpha",)),
        make_plan("t-far", budget=5_000, retailers=("delta",), objective="incremental_revenue"),
    ]
    for plan in past:
        store.record(plan.thread_id, "acme", plan, decide("approve"))
    rejected = make_plan("t-near", budget=110_000, spend_scale=0.9)
    store.record("t-near", "acme", rejected, decide("reject", "too much on beta"))
    other = make_plan("t-other", tenant="globex", budget=100_000)
    store.record("t-other", "globex", other, decide("approve"))
    brief = make_plan().brief
    memory = store.similar("acme", brief, k=3)
    assert [m.split(": ")[0].split()[1] for m in memory] == ["t-near", "t-mid", "t-far"]
    assert all("t-other" not in m for m in memory)
    # The latest decision of a thread is the one remembered, with its reason.
    assert "rejected $110,000 over alpha+beta" in memory[0] and "too much on beta" in memory[0]
    assert memory[0].startswith("2025-03-01 t-near")
    assert store.similar("acme", brief, k=1, exclude_thread="t-near")[0].split()[1] == "t-mid:"
    assert store.similar("initech", brief) == []
    assert len(store.similar("globex", brief)) == 1


def test_a_roas_plans_memory_line_says_roas(tmp_path: Path) -> None:
    """Bug: the line a later plan's reflection reads wrote the objective as "roas"."""
    store = DecisionStore(tmp_path / "d.sqlite")
    plan = make_plan("t-9", objective="roas")
    store.record("t-9", "acme", plan, decide("approve"))
    (line,) = store.similar("acme", plan.brief, k=1)
    assert "alpha+beta, ROAS;" in line and "roas" not in line.replace("iROAS", "")


def test_preference_pairs_put_the_approved_plan_against_the_edited_one(tmp_path: Path) -> None:
    store = DecisionStore(tmp_path / "d.sqlite")
    first = make_plan("t-1", text="Acme spring push")
    store.record("t-1", "acme", first, decide("edit", "floor too low", roas_floor=3.0))
    second = make_plan("t-1", text="Acme spring push", spend_scale=0.7)
    store.record("t-1", "acme", second, decide("approve"))
    lone = make_plan("t-2", text="Acme summer push")
    store.record("t-2", "acme", lone, decide("reject", "wrong season"))
    pairs = store.preference_pairs("acme")
    assert len(pairs) == 1
    pair = pairs[0]
    assert pair.chosen == second and pair.rejected == first and pair.rejected_action == "edit"
    assert (
        pair.prompt == "Acme spring push" and pair.reason == "edits: roas_floor=3.0 (floor too low)"
    )
    assert store.preference_pairs("globex") == []
    assert math.isclose(pair.chosen.allocation[0].spend, 0.7 * first.allocation[0].spend)
