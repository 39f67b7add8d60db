"""The clean room's privacy budget: a failed release charges nothing and is a one-line error
(exit 2), a released answer is reused free, concurrent releases of one query charge once, and
budgets start afresh on the retailer's period."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cleanroom_support import SUM_METRICS, q, random_events, rules, write_events
from typer.testing import CliRunner

from cli.main import app
from tools.cleanroom import CleanRoom, DPReleaseError
from tools.cleanroom.ledger import period_window
from tools.errors import PrivacyBudgetExceededError, QueryRefusedError

runner = CliRunner()
SHAPE = {"group_by": ["placement"], "metrics": ["events", "spend"]}


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    write_events(tmp_path, "alpha", random_events(7, 3_000))
    return tmp_path


def cli(data: Path, *args: str) -> tuple[int, str]:
    out = runner.invoke(
        app, ["cleanroom", *args, "--brand", "acme", "--retailer", "alpha", "--data", str(data)]
    )
    return out.exit_code, out.output


def spent(data: Path) -> float:
    code, out = cli(data, "budget", "--json")
    assert code == 0, out
    return json.loads(out)["spent"]


# --- failed releases --------------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", ["1e-310", "1e-12", "0.0001", "inf", "nan"])
def test_cli_refuses_a_tiny_or_invalid_epsilon_in_one_line_charging_nothing(
    data: Path, epsilon: str
) -> None:
    code, out = cli(data, "query", "--group-by", "placement", "--dp-epsilon", epsilon)
    assert code == 2
    assert out.strip().count("\n") == 0 and "Traceback" not in out
    assert "dp_epsilon" in out and ("0.001" in out or "finite" in out)
    assert spent(data) == 0.0


def test_an_opendp_failure_charges_nothing_and_is_one_line_on_the_cli(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import opendp.prelude as dp
    from opendp.mod import OpenDPException

    def broken(*args: object, **kwargs: object) -> None:
        raise OpenDPException("MakeMeasurement", "scale (inf) must be finite")

    monkeypatch.setattr(dp.m, "make_laplace", broken)
    code, out = cli(data, "query", "--group-by", "placement", "--dp-epsilon", "0.5")
    assert code == 2, out
    assert out.strip().count("\n") == 0 and "Traceback" not in out
    assert "differential-privacy release failed" in out and "nothing was" in out
    monkeypatch.undo()
    assert spent(data) == 0.0
    # The audit says what happened; the next query is charged normally.
    entry = CleanRoom(data).audit.tail(2)[0]
    assert (entry["status"], entry["error_type"]) == ("refused", "dp_release_failed")
    code, out = cli(data, "query", "--group-by", "placement", "--dp-epsilon", "0.5")
    assert code == 0, out
    assert spent(data) == pytest.approx(0.5)


def test_a_release_opendp_cannot_make_charges_nothing(data: Path) -> None:
    """A contribution bound so large that the noise scale overflows: OpenDP refuses."""
    huge = rules(
        tenant_epsilon_budget=5.0, sum_clamp={m: 1e308 for m in SUM_METRICS}, min_cell_size=5
    )
    room = CleanRoom(data, rules_for=huge)
    with pytest.raises(DPReleaseError, match=r"OpenDP: .*must be finite.*nothing was"):
        room.query(q(**SHAPE, dp_epsilon=0.5))
    status = room.budget("acme", "alpha")
    assert (status.spent, status.queries) == (0.0, 0)


# --- released answers are reused --------------------------------------------------------------


def test_a_released_answer_is_answered_again_free(data: Path) -> None:
    provider = rules(tenant_epsilon_budget=2.0, min_cell_size=20)
    room = CleanRoom(data, rules_for=provider)
    first = room.query(q(**SHAPE, dp_epsilon=0.5))
    again = CleanRoom(data, rules_for=provider).query(q(**SHAPE, dp_epsilon=0.5))
    assert first.dp is not None and again.dp is not None
    assert (first.dp.charged, first.dp.cached) == (0.5, False)
    assert (again.dp.charged, again.dp.cached) == (0.0, True)
    assert again.rows == first.rows  # the same noise: nothing new is released
    assert room.budget("acme", "alpha").spent == pytest.approx(0.5)
    assert room.audit.tail(1)[0]["epsilon_spent"] == 0.0

    # Another epsilon, another tenant, or new data is another release, charged.
    room.query(q(**SHAPE, dp_epsilon=0.25))
    room.query(q(tenant="globex", **SHAPE, dp_epsilon=0.5))
    assert room.budget("acme", "alpha").spent == pytest.approx(0.75)
    assert room.budget("globex", "alpha").spent == pytest.approx(0.5)
    events = data / "rmis" / "alpha" / "events.parquet"
    os.utime(events, ns=(events.stat().st_atime_ns, events.stat().st_mtime_ns + 10**9))
    fresh = room.query(q(**SHAPE, dp_epsilon=0.5))
    assert fresh.dp is not None and fresh.dp.charged == 0.5
    assert room.budget("acme", "alpha").spent == pytest.approx(1.25)
    # The cache never answers what the budget would refuse fresh: it is only earlier releases.
    with pytest.raises(PrivacyBudgetExceededError):
        room.query(q(**SHAPE, dp_epsilon=1.0))


def test_concurrent_releases_of_one_query_charge_once(data: Path) -> None:
    provider = rules(tenant_epsilon_budget=5.0, min_cell_size=20)
    answers: list[list[dict]] = []

    def ask() -> None:
        answers.append(CleanRoom(data, rules_for=provider).query(q(**SHAPE, dp_epsilon=1.0)).rows)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 4 and all(a == answers[0] for a in answers)
    status = CleanRoom(data, rules_for=provider).budget("acme", "alpha")
    assert (status.spent, status.queries) == (pytest.approx(1.0), 1)


# --- budget periods ---------------------------------------------------------------------------


def test_period_windows_are_calendar_periods_in_utc() -> None:
    now = datetime(2026, 8, 19, 15, 30, tzinfo=UTC)  # a Wednesday
    assert period_window("none", now) == (None, None)
    day = datetime(2026, 8, 19, tzinfo=UTC)
    assert period_window("daily", now) == (day, datetime(2026, 8, 20, tzinfo=UTC))
    assert period_window("weekly", now) == (
        datetime(2026, 8, 17, tzinfo=UTC),
        datetime(2026, 8, 24, tzinfo=UTC),
    )
    assert period_window("monthly", now) == (
        datetime(2026, 8, 1, tzinfo=UTC),
        datetime(2026, 9, 1, tzinfo=UTC),
    )
    assert period_window("quarterly", now) == (
        datetime(2026, 7, 1, tzinfo=UTC),
        datetime(2026, 10, 1, tzinfo=UTC),
    )
    december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert period_window("monthly", december)[1] == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_window("quarterly", december)[1] == datetime(2027, 1, 1, tzinfo=UTC)


def test_the_budget_starts_afresh_each_period(data: Path) -> None:
    now = [datetime(2026, 8, 30, 12, 0, tzinfo=UTC)]
    provider = rules(tenant_epsilon_budget=1.0, budget_period="monthly", min_cell_size=20)
    room = CleanRoom(data, rules_for=provider, clock=lambda: now[0])
    room.query(q(**SHAPE, dp_epsilon=1.0))
    with pytest.raises(PrivacyBudgetExceededError, match="refreshes on 2026-09-01"):
        room.query(q(**SHAPE, dp_epsilon=0.5))
    august = room.budget("acme", "alpha")
    assert (august.spent, august.remaining, august.period) == (1.0, 0.0, "monthly")
    assert august.refreshes_at == datetime(2026, 9, 1, tzinfo=UTC)

    now[0] = datetime(2026, 9, 1, 0, 0, 1, tzinfo=UTC)
    september = room.budget("acme", "alpha")
    assert (september.spent, september.remaining, september.queries) == (0.0, 1.0, 0)
    room.query(q(**SHAPE, dp_epsilon=0.5))
    assert room.budget("acme", "alpha").spent == pytest.approx(0.5)
    # August's release is still the brand's, free to read again in September.
    repeat = room.query(q(**SHAPE, dp_epsilon=1.0))
    assert repeat.dp is not None and repeat.dp.cached and repeat.dp.charged == 0.0


def test_a_budget_without_a_period_never_refreshes(data: Path) -> None:
    now = [datetime(2026, 8, 30, tzinfo=UTC)]
    room = CleanRoom(data, rules_for=rules(tenant_epsilon_budget=1.0), clock=lambda: now[0])
    room.query(q(**SHAPE, dp_epsilon=1.0))
    now[0] = datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(PrivacyBudgetExceededError, match="does not refresh"):
        room.query(q(**SHAPE, dp_epsilon=0.5))


def test_cli_budget_shows_the_period_and_when_it_refreshes(data: Path) -> None:
    code, out = cli(data, "budget")
    assert code == 0, out
    assert "quarterly budget since" in out and "refreshes on" in out
    code, out = cli(data, "budget", "--json")
    status = json.loads(out)
    assert status["period"] == "quarterly"
    start = datetime.fromisoformat(status["period_start"])
    assert start.day == 1 and start.month in (1, 4, 7, 10)


def test_policy_documents_state_their_budget_period() -> None:
    from tools.cleanroom import policy_rules

    for retailer in ("alpha", "beta", "gamma", "delta"):
        assert policy_rules(retailer).budget_period == "quarterly"
    with pytest.raises(QueryRefusedError, match="dp_epsilon"):
        from tools.cleanroom import build_query

        build_query(tenant="acme", retailer="alpha", dp_epsilon=1e-9)
