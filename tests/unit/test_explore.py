"""Thompson sampling of the experiment reserve: posterior updates, regret, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from cli.bandit_bench import bandit
from tools.explore import (
    BanditInputError,
    BanditSettings,
    ParticlePosterior,
    allocate_round,
    curve_uncertainty,
    reserve_lines,
    run_bandit,
)
from tools.explore.bandit import curve
from tools.optimize import CurveSet

ROUNDS = 15


@pytest.fixture(scope="module")
def market() -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(3)
    a = rng.lognormal(np.log(600), 0.8, 30)
    b = rng.lognormal(np.log(150), 0.6, 30)
    return a, b, 0.1 * float(b.sum())


@pytest.fixture(scope="module")
def result(market: tuple[np.ndarray, np.ndarray, float]) -> dict:
    a, b, budget = market
    return run_bandit(a, b, budget, ROUNDS, seed=11, settings=BanditSettings(draws=200))


def test_same_seed_same_run(market, result) -> None:
    a, b, budget = market
    again = run_bandit(a, b, budget, ROUNDS, seed=11, settings=BanditSettings(draws=200))
    np.testing.assert_array_equal(again["cum_ts"], result["cum_ts"])
    other = run_bandit(a, b, budget, ROUNDS, seed=12, settings=BanditSettings(draws=200))
    assert not np.array_equal(other["cum_ts"], result["cum_ts"])


def test_regret_non_negative_and_below_equal_split(result) -> None:
    scale = result["oracle_revenue_per_round"]
    assert np.all(result["regret_ts"] >= -1e-9 * scale)
    assert result["regret_equal"][0] > 0
    assert result["cum_ts"][-1] < result["cum_equal"][-1]
    assert result["crossover_round"] is not None
    assert np.all(
        result["cum_ts"][result["crossover_round"] - 1 :]
        < result["cum_equal"][result["crossover_round"] - 1 :]
    )


def test_posterior_concentrates_on_funded_lines(result) -> None:
    err = result["posterior_error"]
    assert result["funded_lines"] > 0
    assert err["log_a_end"] < err["log_a_start"]
    assert err["log_a_end"] + err["log_b_end"] < err["log_a_start"] + err["log_b_start"]


def test_update_moves_one_line_toward_truth() -> None:
    rng = np.random.default_rng(5)
    a_true, b_true, sigma = np.array([800.0, 800.0]), np.array([200.0, 200.0]), 0.2
    post = ParticlePosterior.lognormal(a_true * 1.8, b_true * 0.6, 0.6, 0.6, 500, rng)
    sd_a0, sd_b0 = post.sd_log()
    line = np.array([0])
    for spend in np.tile([50.0, 200.0, 600.0], 10):  # spread spends identify a and b apart
        x = np.array([spend])
        y = curve(a_true[:1], b_true[:1], x) * np.exp(rng.normal(-(sigma**2) / 2, sigma))
        post.update(line, x, y, sigma, rng)
    mean_a, mean_b = post.mean_log()
    sd_a, sd_b = post.sd_log()
    assert abs(mean_a[0] - np.log(a_true[0])) < 0.5 * np.log(1.8)
    assert abs(mean_b[0] - np.log(b_true[0])) < 0.5 * abs(np.log(0.6))
    assert sd_a[0] < 0.5 * sd_a0[0] and sd_b[0] < 0.5 * sd_b0[0]
    # The unobserved line keeps its prior.
    assert sd_a[1] == pytest.approx(sd_a0[1]) and post.ess()[1] == pytest.approx(500)


def test_allocate_round_spends_budget_where_marginal_roas_is_highest() -> None:
    a, b = np.array([1000.0, 1000.0, 10.0]), np.array([100.0, 400.0, 100.0])
    x = allocate_round(a, b, 300.0)
    assert x.sum() == pytest.approx(300.0)
    assert x[0] > x[1] and x[2] == pytest.approx(0.0)


def test_bad_inputs_raise() -> None:
    with pytest.raises(BanditInputError):
        run_bandit(np.ones(3), np.ones(3), 10.0, 0, seed=1)
    with pytest.raises(BanditInputError):
        ParticlePosterior.from_draws(np.ones((4, 2)), -np.ones((4, 2)))


def test_cli_json() -> None:
    app = typer.Typer()
    app.command()(bandit)
    out = CliRunner().invoke(app, ["--rounds", "3", "--json"])
    assert out.exit_code == 0, out.output
    r = json.loads(out.stdout)
    assert len(r["cum_regret_ts"]) == len(r["cum_regret_equal"]) == 3
    assert r["final_regret_ts"] == r["cum_regret_ts"][-1]


def test_reserve_goes_to_the_least_known_lines_that_can_take_spend() -> None:
    rng = np.random.default_rng(8)
    n, d = 12, 400
    spread = np.where(np.arange(n) % 4 == 0, 1.0, 0.1)  # every fourth line: prior only
    a, b = rng.lognormal(8.0, 0.5, n), rng.lognormal(6.0, 0.5, n)
    curves = CurveSet.from_arrays(
        retailer_id=["alpha"] * n,
        placement=["sponsored_search"] * n,
        gtin=[f"{i:014d}" for i in range(n)],
        a=a,
        b=b,
        margin=0.3,
        out_of_stock=np.arange(n) == 8,
        a_draws=a * np.exp(spread * rng.standard_normal((d, n))),
        b_draws=b * np.exp(spread * rng.standard_normal((d, n))),
        prior_only=spread > 0.5,
    )
    width = curve_uncertainty(curves)
    assert width[::4].min() > 3 * width[spread < 0.5].max()
    # The wide lines that can take spend come first; line 8 (wide) is out of stock.
    assert sorted(reserve_lines(curves, 2).tolist()) == [0, 4]
    everything = reserve_lines(curves, n)
    assert len(everything) == n - 1 and 8 not in everything
    assert np.all(np.diff(width[everything]) <= 0)
    with pytest.raises(BanditInputError):
        reserve_lines(curves, 0)
    with pytest.raises(BanditInputError, match="draws"):
        reserve_lines(curves.replace(a_draws=None, b_draws=None), 2)
