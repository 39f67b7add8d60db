"""Privacy budgets when planning (`tools.pipeline.prepare_curves`): the epsilon a plan will
use is said before anything is spent, planning the same or another flight reuses what was
released (spending nothing), and a retailer whose budget is spent is planned on prior-only
curves with a warning and a review flag instead of failing the plan."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from graph.state import State
from nodes.governance import _unresolved
from tools.brief import StructuredBrief
from tools.cleanroom import CleanRoom
from tools.pipeline import (
    AllocationRequest,
    CurveRequest,
    plan_allocation,
    prepare_curves,
)
from tools.plan import Plan

BRAND = "globex"  # sells at gamma, which requires differential privacy (budget 3, eps 0.5)


@pytest.fixture()
def data(market: Path, tmp_path: Path) -> Path:
    """The market's harmonized and first-party data, with a fresh ledger and no curves."""
    for part in ("rmis", "retailers", "brands", "world"):
        shutil.copytree(market / part, tmp_path / part)
    return tmp_path


def curves(data: Path, retailers: list[str], days: int = 28, said: list[str] | None = None):  # type: ignore[no-untyped-def]
    req = CurveRequest(
        data_dir=data, tenant=BRAND, brand=BRAND, retailers=retailers, flight_days=days
    )
    return prepare_curves(req, progress=(said.append if said is not None else None))


def test_the_plan_says_its_epsilon_first_and_reuses_releases(data: Path) -> None:
    room = CleanRoom(data)
    said: list[str] = []
    first = curves(data, ["gamma"], said=said)
    ask = next(i for i, m in enumerate(said) if m.startswith("querying the clean rooms"))
    estimate = next(i for i, m in enumerate(said) if "will use up to epsilon 2" in m)
    assert estimate < ask  # said before anything was spent
    assert first.epsilon_planned == pytest.approx(2.0)  # 4 queries at gamma's default 0.5
    assert room.budget(BRAND, "gamma").spent == pytest.approx(first.epsilon_planned)
    assert first.privacy[0].needed == pytest.approx(2.0) and not first.review_flags

    # Another flight, and gamma planned with alpha: the same queries, answered again free.
    for retailers, days in ((["gamma"], 14), (["alpha", "gamma"], 28)):
        said.clear()
        again = curves(data, retailers, days, said)
        assert not again.cached and again.epsilon_planned == 0.0
        assert any("every query was released before" in m for m in said)
        assert room.budget(BRAND, "gamma").spent == pytest.approx(2.0)
    assert again.access[-1].retailer == "gamma" and again.access[-1].epsilon_spent == 0.0


def test_a_spent_budget_plans_the_retailer_prior_only_with_a_flag(data: Path) -> None:
    room = CleanRoom(data)
    room.ledger.charge(BRAND, "gamma", 3.0, 3.0, "spent-elsewhere", "quarterly")
    said: list[str] = []
    s = curves(data, ["alpha", "gamma"], said=said)
    assert room.budget(BRAND, "gamma").spent == 3.0  # nothing more charged, nothing refused
    assert s.prior_only_retailers == ["gamma"] and s.epsilon_planned == 0.0
    assert s.review_flags and s.review_flags[0].startswith("gamma: privacy budget spent")
    assert any(m.startswith("warning: gamma: privacy budget spent") for m in said)
    assert any("prior-only" in n for n in s.notes)
    alpha, gamma = (next(a for a in s.access if a.retailer == r) for r in ("alpha", "gamma"))
    assert gamma.prior_only and gamma.epsilon_spent == 0.0
    assert not alpha.prior_only and alpha.lines > 0  # alpha's own history was still read

    with np.load(s.located(data).path) as z:
        at_gamma = z["retailer_id"] == "gamma"
        assert at_gamma.any() and z["prior_only"][at_gamma].all()
        assert np.isfinite(z["a"]).all() and np.isfinite(z["b"]).all()
    brief = StructuredBrief(brand_id=BRAND, total_budget=500_000, retailers=["alpha", "gamma"])
    plan = plan_allocation(s.located(data), AllocationRequest(brief=brief))
    assert plan.status != "infeasible" and plan.rows

    # The flag reaches the reviewer: governance collects it, so auto-approval is blocked.
    reviewed = Plan(thread_id="t", tenant=BRAND, brief_text="Spend $500k", brief=brief)
    flags = _unresolved(State(curves=s.model_dump(mode="json")), reviewed)
    assert s.review_flags[0] in flags


def test_a_plan_at_a_spent_retailer_alone_pools_its_prior_elsewhere(data: Path) -> None:
    CleanRoom(data).ledger.charge(BRAND, "gamma", 3.0, 3.0, "spent-elsewhere", "quarterly")
    s = curves(data, ["gamma"])
    assert s.retailers == ["gamma"] and s.prior_only_retailers == ["gamma"]
    assert any(n.startswith("prior pooled from") for n in s.notes)
    with np.load(s.located(data).path) as z:
        assert set(z["retailer_id"].tolist()) == {"gamma"} and z["prior_only"].all()
    # When the budget refreshes (a new period), the curves are fitted from gamma's own data.
    assert s.key != curves_key_without_prior_only(data)


def curves_key_without_prior_only(data: Path) -> str:
    from tools.pipeline.curves import curves_key

    return curves_key(CurveRequest(data_dir=data, tenant=BRAND, brand=BRAND, retailers=["gamma"]))
