"""The product's stores on a real PostgreSQL (issue #16): with `RMN_DATABASE_URL` set, the privacy
ledger, the clean-room audit log, decisions and feedback live in that database and nothing of
theirs is written to the data directory; without it they keep their SQLite (and JSON Lines)
files, old files included. `rmn db status` says which.

The existing checks of each store (tests/unit/test_cleanroom*.py, test_feedback.py,
tests/integration/test_decisions.py) are run again, unchanged, against a fresh Postgres
database each, rather than copied. Postgres is a real throwaway cluster
(tests/postgres_support.py), never a mock."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cleanroom_support import q, random_events, rules, write_events
from postgres_support import new_database
from typer.testing import CliRunner

from cli.main import app as rmn
from tools.cleanroom import CleanRoom
from tools.cleanroom.audit import AuditLog
from tools.plan.decisions import DecisionStore, decisions_path
from tools.plan.erase import erase_thread_records
from tools.plan.feedback import FeedbackStore, feedback_path
from tools.storage import ENV_URL, applied, open_database
from tools.storage import database as seam

TESTS = Path(__file__).resolve().parents[1]
STORE_FILES = ("*.sqlite*", "*.jsonl")


def _checks(relative: str) -> ModuleType:
    """An existing test module, loaded under a name of its own so that its checks can run here
    on Postgres without pytest collecting them twice."""
    path = TESTS / relative
    spec = importlib.util.spec_from_file_location(f"postgres_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cleanroom_checks = _checks("unit/test_cleanroom.py")
budget_checks = _checks("unit/test_cleanroom_budget.py")
feedback_checks = _checks("unit/test_feedback.py")
decision_checks = _checks("integration/test_decisions.py")


@pytest.fixture()
def pg_url(postgres: str) -> Iterator[str]:
    """A fresh database of this test's own; its connection pool closed afterwards, so that the
    tests together stay far below the cluster's connection limit."""
    url = new_database(postgres, f"stores_{uuid.uuid4().hex[:12]}")
    yield url
    seam.close_pool(url)


@pytest.fixture()
def on_postgres(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """`RMN_DATABASE_URL` set to a fresh database, as one deployment would set it."""
    monkeypatch.setenv(ENV_URL, pg_url)
    return pg_url


def store_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for g in STORE_FILES for p in folder.rglob(g))


# --- the existing checks, on Postgres -------------------------------------------------------


@pytest.mark.parametrize(
    "check",
    [
        cleanroom_checks.test_ledger_is_safe_against_concurrent_writers,
        decision_checks.test_a_decision_is_recorded_once,
        decision_checks.test_a_plan_is_recorded_under_its_own_tenant_and_thread,
        decision_checks.test_similar_ranks_this_tenants_plans_and_never_another_tenants,
        decision_checks.test_preference_pairs_put_the_approved_plan_against_the_edited_one,
        feedback_checks.test_a_rating_keeps_the_exact_model_input_output_adapters_and_reviewer,
        feedback_checks.test_dpo_export_pairs_exactly_as_specified,
        feedback_checks.test_stats_count_agreement_and_the_worst_rated,
        feedback_checks.test_ratings_are_tenant_scoped_and_erased_with_their_thread,
    ],
    ids=lambda check: check.__name__.removeprefix("test_"),
)
def test_store_checks_pass_on_postgres(
    check: Callable[[Path], None], on_postgres: str, tmp_path: Path
) -> None:
    check(tmp_path)
    assert store_files(tmp_path) == []


@pytest.mark.parametrize(
    "check",
    [
        budget_checks.test_concurrent_releases_of_one_query_charge_once,
        cleanroom_checks.test_cli_query_budget_and_audit,
    ],
    ids=lambda check: check.__name__.removeprefix("test_"),
)
def test_clean_room_checks_pass_on_postgres(
    check: Callable[[Path], None], on_postgres: str, tmp_path: Path
) -> None:
    write_events(tmp_path, "alpha", random_events(7, 4_000))  # as their own fixtures do
    check(tmp_path)
    assert store_files(tmp_path) == []


# --- the ledger across processes ------------------------------------------------------------

CHARGER = """
import sys
from pathlib import Path
from tools.cleanroom.ledger import PrivacyLedger
from tools.errors import PrivacyBudgetExceededError

name = sys.argv[2]
ledger = PrivacyLedger(Path(sys.argv[1]))
ledger.status("acme", "alpha", 5.0)  # connected and migrated before the start signal
print("ready", flush=True)
sys.stdin.readline()
for i in range(3):
    try:
        ledger.charge("acme", "alpha", 1.0, 5.0, f"{name}-{i}")
        print("ok", flush=True)
    except PrivacyBudgetExceededError:
        print("refused", flush=True)
_, earlier = ledger.release("acme", "beta", "same-query", 1.0, 5.0, "none", name, {"by": name})
print("cached" if earlier else "released", flush=True)
"""


def test_processes_charging_at_once_never_overdraw_and_release_once(
    on_postgres: str, tmp_path: Path
) -> None:
    """Four processes (as four server replicas would) charge one budget at the same moment:
    exactly five charges of 1.0 pass a budget of 5.0, and one query released by all four is
    charged once, the others getting its answer."""
    path = tmp_path / "cleanroom" / "privacy_ledger.sqlite"
    procs = [subprocess.Popen([sys.executable, "-c", CHARGER, str(path), f"p{i}"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for i in range(4)]  # fmt: skip
    for p in procs:  # all started and connected: the charges below really overlap
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    outs = [p.communicate("go\n", timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    charges = [o for out in outs for o in out[:3]]
    assert sorted(charges) == ["ok"] * 5 + ["refused"] * 7
    assert sorted(out[3] for out in outs) == ["cached"] * 3 + ["released"]
    from tools.cleanroom.ledger import PrivacyLedger

    ledger = PrivacyLedger(path)
    assert ledger.status("acme", "alpha", 5.0).spent == pytest.approx(5.0)
    released = ledger.status("acme", "beta", 5.0)
    assert (released.queries, released.spent) == (1, pytest.approx(1.0))
    assert not path.parent.exists()


def test_a_decision_recorded_by_many_threads_at_once_lands_once(
    on_postgres: str, tmp_path: Path
) -> None:
    """The final node re-run by several workers at once: the unique key, not a lock, decides."""
    plan = decision_checks.make_plan()
    results: list[bool] = []

    def worker() -> None:
        store = DecisionStore(tmp_path / "d.sqlite")
        results.append(store.record("t-1", "acme", plan, decision_checks.decide("approve")))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert len(DecisionStore(tmp_path / "d.sqlite").list("acme")) == 1


# --- the audit log on both engines ----------------------------------------------------------


@pytest.fixture(params=["file", "postgres"])
def audit(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> (
    AuditLog
):  # fmt: skip
    if request.param == "postgres":
        monkeypatch.setenv(ENV_URL, request.getfixturevalue("pg_url"))
    else:
        monkeypatch.delenv(ENV_URL, raising=False)
    return AuditLog(tmp_path / "cleanroom" / "audit.jsonl")


def test_the_audit_log_appends_and_tails_on_either_engine(audit: AuditLog, tmp_path: Path) -> None:
    assert audit.tail(5) == []
    for i in range(6):
        audit.append({"n": i, "tenant": "acme" if i % 2 else "globex", "ts": f"t{i}"})
    assert [e["n"] for e in audit.tail(3)] == [3, 4, 5]  # the last ones, oldest first
    assert [e["n"] for e in audit.tail(10, tenant="acme")] == [1, 3, 5]
    assert audit.tail(0) == [] and audit.tail(2, tenant="initech") == []
    assert audit.tail(1)[0] == {"n": 5, "tenant": "acme", "ts": "t5"}

    def write(k: int) -> None:
        for i in range(10):
            AuditLog(audit.path).append({"n": 100 + 10 * k + i, "tenant": "acme"})

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = AuditLog(audit.path).tail(100, tenant="acme")
    assert sorted(e["n"] for e in entries) == [1, 3, 5, *range(100, 140)]  # none lost or torn
    on_file = audit.url is None
    assert audit.path.is_file() is on_file
    assert (store_files(tmp_path) == ["cleanroom/audit.jsonl"]) is on_file


# --- nothing in the data directory with RMN_DATABASE_URL set -------------------------------


def _use_every_store(data: Path) -> None:
    """Each store written, read and erased through its ordinary callers."""
    write_events(data, "alpha", random_events(7, 3_000))
    room = CleanRoom(data, rules_for=rules(min_cell_size=20, tenant_epsilon_budget=5.0))
    room.query(q(group_by=["placement"], metrics=["events", "spend"], dp_epsilon=0.5))
    assert room.budget("acme", "alpha").spent == pytest.approx(0.5)
    assert [e["status"] for e in room.audit.tail(5)] == ["ok"]
    plan = decision_checks.make_plan("acme.t-1")
    decisions = DecisionStore(decisions_path(data))
    assert decisions.record("acme.t-1", "acme", plan, decision_checks.decide("approve"))
    other = decision_checks.make_plan("acme.t-1", tenant="globex")
    assert decisions.record("acme.t-1", "globex", other, decision_checks.decide("approve"))
    ratings = FeedbackStore(feedback_path(data))
    feedback_checks._rate(ratings, feedback_checks._plan("acme.t-1"), "key-a", target="copy",
                          index=0, thumbs="up")  # fmt: skip
    feedback_checks._rate(ratings, feedback_checks._plan("acme.t-2"), "key-a", target="copy",
                          index=0, thumbs="down")  # fmt: skip
    erased = erase_thread_records(data, data / "reports", tenant="acme", thread_id="acme.t-1")
    assert (erased.decisions, erased.feedback) == (1, 1)
    assert [r.tenant for r in DecisionStore(decisions_path(data)).list()] == ["globex"]


def test_with_a_database_url_no_store_file_is_written_to_the_data_dir(
    on_postgres: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    _use_every_store(data)
    # `rmn feedback` finds the ratings in Postgres although no feedback.sqlite is there.
    stats = CliRunner().invoke(rmn, ["feedback", "stats", "--data-dir", str(data), "--json"])
    assert stats.exit_code == 0, stats.output
    assert json.loads(stats.output)["ratings"] == 1
    assert store_files(data) == []
    assert not (data / "cleanroom").exists()


# --- rmn db status, and files written before migrations were versioned ----------------------


def db_status(data: Path) -> dict[str, dict[str, Any]]:
    done = CliRunner().invoke(rmn, ["db", "status", "--data-dir", str(data), "--json"])
    assert done.exit_code == 0, done.output
    return {s["store"]: s for s in json.loads(done.output)["stores"]}


def test_rmn_db_status_names_postgres_and_each_stores_migrations(
    on_postgres: str, tmp_path: Path
) -> None:
    _use_every_store(tmp_path)
    status = db_status(tmp_path)
    assert list(status) == ["ledger", "audit", "decisions", "feedback", "server"]
    for name in ("ledger", "audit", "decisions", "feedback"):
        s = status[name]
        assert (s["engine"], s["present"]) == ("postgres", True)
        assert s["where"].startswith("postgresql://") and str(tmp_path) not in s["where"]
        assert [m["version"] for m in s["migrations"]] == [1]
    assert status["server"]["engine"] == "postgres"
    human = CliRunner().invoke(rmn, ["db", "status", "--data-dir", str(tmp_path)])
    assert human.exit_code == 0 and "v1 spend and releases" in human.output, human.output
    assert store_files(tmp_path) == []


def test_rmn_db_status_on_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    DecisionStore(decisions_path(tmp_path))
    status = db_status(tmp_path)
    assert status["decisions"]["where"] == str(decisions_path(tmp_path))
    assert [m["name"] for m in status["decisions"]["migrations"]] == ["decisions"]
    assert (status["ledger"]["present"], status["server"]["present"]) == (False, False)
    assert (status["audit"]["engine"], status["audit"]["migrations"]) == ("jsonl", [])
    assert store_files(tmp_path) == ["decisions.sqlite"]  # nothing created to report on


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_rmn_db_upgrade_applies_every_stores_migrations_once(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if engine == "postgres":
        request.getfixturevalue("on_postgres")
    else:
        monkeypatch.delenv(ENV_URL, raising=False)

    def upgrade() -> dict[str, dict[str, Any]]:
        done = CliRunner().invoke(rmn, ["db", "upgrade", "--data-dir", str(tmp_path), "--json"])
        assert done.exit_code == 0, done.output
        return {s["store"]: s for s in json.loads(done.output)["stores"]}

    first = upgrade()
    versions = {name: [m["version"] for m in s["migrations"]] for name, s in first.items()}
    expected = {"ledger": [1], "decisions": [1], "feedback": [1], "server": [1, 2]}
    expected["audit"] = [1] if engine == "postgres" else []  # a JSON Lines file by default
    assert versions == expected
    assert {s["engine"] for n, s in first.items() if n != "audit"} == {engine}
    assert upgrade() == first  # nothing left to apply: the same steps, applied when they were


@pytest.mark.parametrize("name", ["decisions", "feedback"])
def test_a_file_from_before_versioned_migrations_keeps_its_rows(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    path = tmp_path / "old.sqlite"
    store: DecisionStore | FeedbackStore
    if name == "decisions":
        store = DecisionStore(path)
        store.record("t-1", "acme", decision_checks.make_plan(), decision_checks.decide("approve"))
    else:
        store = FeedbackStore(path)
        feedback_checks._rate(store, feedback_checks._plan("t-1"), "key-a", target="copy",
                              index=0, thumbs="up")  # fmt: skip
    # As the previous version left it: the same tables, PRAGMA user_version 1, no rmn_schema.
    with sqlite3.connect(path) as con:
        con.execute("DROP TABLE rmn_schema")
        con.execute("PRAGMA user_version=1")
    assert len(type(store)(path).list("acme")) == 1
    assert [v for v, _, _ in applied(open_database(path, url=""), name)] == [1]
