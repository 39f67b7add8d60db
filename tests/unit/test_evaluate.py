"""Plan comparison on simulated worlds: five plans scored against the truth, the summary's
intervals and gains, the naive baselines, and the `evaluate plans` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import typer
from scipy import stats
from typer.testing import CliRunner

from cli import evaluate as evaluate_cli
from tools.evaluate import (
    METRICS,
    PLANS,
    EvalSettings,
    evaluate_world,
    interval,
    oracle_curves,
    roas_proportional,
    summarize,
)
from tools.world import generate_world

TINY = EvalSettings(worlds=2, events=100_000, days=56)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    root = tmp_path_factory.mktemp("evaluate")
    return [evaluate_world(seed, TINY, root / f"world-{seed}") for seed in (1, 2)]


def test_two_tiny_worlds_give_all_plans_with_the_oracle_best(tiny_results: list[Any]):
    for result in tiny_results:
        assert set(result.plans) == set(PLANS)
        budget = generate_world(seed=result.seed).brands["acme"].budget_scale
        spendable = budget * (1 - TINY.reserve_fraction)
        oracle = result.plans["oracle"]
        for name, plan in result.plans.items():
            assert plan.incremental_margin <= oracle.incremental_margin * (1 + 1e-9), name
            assert 0 < plan.spend <= spendable * (1 + 1e-9)
            assert 0.0 <= plan.sku_coverage <= 1.0
            assert plan.iroas == pytest.approx(plan.incremental_revenue / plan.spend)
        for name in ("equal_split", "roas_proportional"):
            assert result.plans[name].spend == pytest.approx(spendable)
        # The full view knows margins and stock: it beats both naive splits on margin.
        full = result.plans["full"].incremental_margin
        assert full > result.plans["equal_split"].incremental_margin
        assert full > result.plans["roas_proportional"].incremental_margin
        # It prices stock-out risk in, so it wastes less than the equal split.
        assert result.plans["full"].spend_on_oos < result.plans["equal_split"].spend_on_oos
        assert set(result.sensitivity) == {"full_oos_priced_in", "full_oos_cut_at_0.5"}
        # Both views fit the same lines with a history; the brand's SKU table finds more of
        # the lines the clean room suppressed, which plan on prior-only curves.
        fit_full, fit_cr = result.fit["full"], result.fit["cleanroom"]
        assert fit_full["lines"] - fit_full["prior_only"] == fit_cr["lines"] - fit_cr["prior_only"]
        assert fit_full["prior_only"] >= fit_cr["prior_only"]


def test_summary_intervals_and_gains(tiny_results: list[Any]):
    summary = summarize(tiny_results, TINY)
    assert set(summary["plans"]) == set(PLANS)
    for plan in PLANS:
        assert set(summary["plans"][plan]) == set(METRICS)
    margins = [r.plans["full"].incremental_margin for r in tiny_results]
    got = summary["plans"]["full"]["incremental_margin"]
    assert got["mean"] == pytest.approx(np.mean(margins))
    lo, hi = got["ci95"]
    assert lo < got["mean"] < hi
    share = summary["share_of_oracle_margin"]["full"]
    ratios = [
        r.plans["full"].incremental_margin / r.plans["oracle"].incremental_margin
        for r in tiny_results
    ]
    assert share["mean"] == pytest.approx(np.mean(ratios))
    assert share["min"] == pytest.approx(min(ratios))
    assert share["met"] == (share["mean"] >= 0.97)
    gain = summary["federation_gain"]["incremental_margin"]["mean"]
    expected = np.mean(
        [
            r.plans["full"].incremental_margin - r.plans["cleanroom"].incremental_margin
            for r in tiny_results
        ]
    )
    assert gain == pytest.approx(expected)
    assert [w["seed"] for w in summary["worlds"]] == [1, 2]
    json.dumps(summary)


def test_interval_is_a_t_interval():
    values = [1.0, 2.0, 4.0, 7.0]
    got = interval(values)
    lo, hi = stats.t.interval(0.95, 3, loc=3.5, scale=stats.sem(values))
    assert got["mean"] == 3.5
    assert got["ci95"] == pytest.approx([lo, hi])
    assert interval([5.0])["ci95"] is None
    assert interval([2.0, 2.0])["ci95"] == [2.0, 2.0]


def test_roas_proportional_falls_back_to_the_history_total():
    lines = pd.DataFrame(
        {
            "spend": [100.0, 100.0, 100.0],
            "sales": [300.0, 100.0, 500.0],
            "recent_spend": [10.0, np.nan, 10.0],
            "recent_sales": [40.0, np.nan, 0.0],
        }
    )
    keys = [("r", "p", str(i)) for i in range(3)]
    plan = roas_proportional(lines, 1000.0, keys)
    assert sum(plan.values()) == pytest.approx(1000.0)
    # Recent ROAS 4 and 0; the suppressed line falls back to its history ROAS of 1.
    assert [plan[k] for k in keys] == pytest.approx([800.0, 200.0, 0.0])


def test_oracle_curves_reproduce_the_truth():
    world = generate_world(seed=5)
    curves = oracle_curves(world, "initech")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 3, len(curves)) * curves.b
    full = np.zeros(world.line_items.num_rows)
    index = world._index
    rows = [index[k] for k in zip(curves.retailer_id, curves.placement, curves.gtin, strict=True)]
    full[rows] = x
    revenue, margin = world.expected(full)
    np.testing.assert_allclose(curves.revenue(x), revenue[rows], rtol=1e-10)
    positive = margin[rows] > 0
    np.testing.assert_allclose(
        (curves.margin * curves.revenue(x))[positive], margin[rows][positive], rtol=1e-10
    )


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(evaluate_cli.app, name="evaluate")
    return app


def test_cli_plans_json(tmp_path: Path):
    result = CliRunner().invoke(
        _cli(),
        [
            "evaluate",
            "plans",
            "--worlds",
            "1",
            "--events",
            "60000",
            "--days",
            "42",
            "--json",
            "--policy-limits",
            "--keep",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["plans"]) == set(PLANS)
    assert out["settings"]["worlds"] == 1 and out["settings"]["events"] == 60_000
    assert out["settings"]["policy_limits"] is True
    assert out["share_of_oracle_margin"]["full"]["ci95"] is None
    assert (tmp_path / "world-1" / "rmis").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reserve", "1.5"], "reserve_fraction"),
        (["--brand", "nobody", "--events", "20000", "--days", "21"], "unknown brand"),
    ],
)
def test_cli_plans_bad_input(args: list[str], message: str):
    result = CliRunner().invoke(_cli(), ["evaluate", "plans", "--worlds", "1", "--json", *args])
    assert result.exit_code == 2
    assert message in json.loads(result.stdout)["error"]["message"]
