"""Checkpoints on a real PostgreSQL (issue #16, first part): with `RMN_CHECKPOINT_URL` naming
a Postgres database, a plan's thread is checkpointed there; a new process's graph (a new
connection) finds it waiting at its approval question and finishes it, and a URL that cannot
be reached is one clear error. The cluster is the distribution's PostgreSQL started by the
tests (`tests/postgres_support.py`), never a mock."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from postgres_support import new_database

from graph import Context, build_graph, run_config, thread_status
from graph.checkpoint import ENV_URL, CheckpointConfigError, default_checkpointer

BRIEF = ("Allocate $1.2M across Alpha and Beta to maximize incremental margin with ROAS >= 3, "
         "10% for experiments")  # fmt: skip


def test_a_plan_is_checkpointed_in_postgres_and_finished_by_a_new_process(
    postgres: str, market: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = new_database(postgres, "checkpoints")
    monkeypatch.setenv(ENV_URL, url)
    context = Context(tenant="acme", model="none", data_dir=str(market))
    config = run_config(f"pg-{uuid.uuid4().hex[:8]}", "acme")
    first = build_graph(data_dir=market)
    assert type(first.checkpointer).__name__ == "PostgresSaver"
    out = first.invoke({"brief": BRIEF, "brand_id": "acme"}, config, context=context)
    assert "__interrupt__" in out
    assert not (market / "checkpoints.sqlite").exists()  # nothing went to the SQLite default

    # Another graph on a new connection, as a restarted process has: the thread waits there.
    later = build_graph(data_dir=market)
    assert later.checkpointer is not first.checkpointer
    state = later.get_state(config)
    assert thread_status(state) == "awaiting_approval" and state.values["plan"]["allocation"]
    history = list(later.get_state_history(config))
    assert len(history) >= 8  # one checkpoint per step, all in Postgres

    from langgraph.types import Command

    done = later.invoke(Command(resume={"action": "approve"}), config, context=context)
    assert done["status"] == "approved"
    assert later.get_state(config).values["status"] == "approved"


def test_an_unreachable_postgres_is_one_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("langgraph.checkpoint.postgres", reason="pip install -e '.[postgres]'")
    url = f"postgresql://rmn@/nowhere?host={tmp_path}&port=1"
    with pytest.raises(CheckpointConfigError, match="cannot connect to the checkpoint database"):
        default_checkpointer(url=url)


def test_rmn_serve_keeps_threads_in_postgres_across_a_kill(
    postgres: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`rmn serve` on Postgres checkpoints: a plan waits at its approval question, the server
    is killed (SIGKILL), a new server on the same database finishes it, and deleting the
    thread leaves none of its checkpoints in Postgres."""
    import signal

    import psycopg
    from langgraph_sdk import get_sync_client
    from serving_support import ACME_KEY, build_small_world, serve_process

    url = new_database(postgres, "served")
    world = build_small_world(tmp_path_factory)
    approver = "test-key-acme-approver-0123456789"  # separation of duties: another key approves
    env = {ENV_URL: url, "RMN_API_KEYS": f"{ACME_KEY}:acme,{approver}:acme:approver"}
    args = ["--data-dir", str(world), "--model", "none", "--state-dir", str(tmp_path / "state")]
    with serve_process(args, tmp_path / "serve-1.log", env) as served:
        client = get_sync_client(url=served.url, api_key=ACME_KEY, timeout=300)
        thread_id = client.threads.create()["thread_id"]
        out = client.runs.wait(thread_id, "rmn", input={"brief": BRIEF, "brand_id": None})
        if out["__interrupt__"][0]["value"]["action_requests"][0]["args"]["kind"] != "approval":
            out = client.runs.wait(thread_id, "rmn", command={"resume": {"action": "approve"}})
        assert out["__interrupt__"][0]["value"]["action_requests"][0]["args"]["kind"] == "approval"
        served.proc.send_signal(signal.SIGKILL)
        served.proc.wait(30)
    with psycopg.connect(url) as conn:
        saved = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
    assert saved is not None and saved[0] >= 8
    with serve_process(args, tmp_path / "serve-2.log", env) as served:
        client = get_sync_client(url=served.url, api_key=approver, timeout=300)
        done = client.runs.wait(thread_id, "rmn", command={"resume": {"action": "approve"}})
        assert done["status"] == "approved"
        get_sync_client(url=served.url, api_key=ACME_KEY).threads.delete(thread_id)
    with psycopg.connect(url) as conn:
        left = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        writes = conn.execute("SELECT count(*) FROM checkpoint_writes").fetchone()
    assert left == (0,) and writes == (0,)


def test_savers_opened_together_on_a_new_database_set_it_up_once(postgres: str) -> None:
    """Replicas starting at once each open a saver whose `setup()` creates LangGraph's tables:
    unserialized, two raced on `checkpoint_migrations` (UniqueViolation, seen when the replica
    tests started two `rmn serve` processes together). Six at once all open, every time."""
    from concurrent.futures import ThreadPoolExecutor

    from graph.checkpoint import postgres_saver

    for attempt in range(3):
        url = new_database(postgres, f"setup_race_{attempt}")
        with ThreadPoolExecutor(6) as pool:
            savers = list(pool.map(postgres_saver, [url] * 6))
        assert {type(s).__name__ for s in savers} == {"PostgresSaver"}
        for saver in savers:
            saver.conn.close()
