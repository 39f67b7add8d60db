"""Several servers on one PostgreSQL database (issue #16): a run started through one replica is
joined and answered through the other, a replica SIGKILLed mid-run leaves its run to the other
(its lease lapses, the other claims it once and finishes it from the last checkpoint), one
thread's runs go one at a time whichever replica they come through, and another tenant's thread
stays invisible on Postgres as on SQLite. Two real `rmn serve` processes on loopback for the
first two, two in-process servers of the small graph for the others; the database is the
tests' throwaway cluster (tests/postgres_support.py), never a mock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, ExitStack
from typing import Any

import psycopg
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import ConflictError
from postgres_support import new_database
from serving_support import (
    ACME_KEY,
    BRIEF,
    GATES,
    KEYS,
    STARTED,
    ServeProcess,
    asked,
    build_small_world,
    serve_process,
    toy_graph,
    toy_settings,
)
from test_server import test_other_tenants_threads_and_runs_are_not_found as _not_found
from test_server_hostile import (
    test_another_tenants_thread_id_answers_exactly_like_an_unknown_one as _like_unknown,
)

from graph.checkpoint import postgres_saver
from graph.serving.auth import KeyRing
from graph.serving.replicas import LEASE_S, TICK_S
from server import create_app, serve_in_thread
from tools.storage import ENV_URL

APPROVER = "test-key-acme-approver-0123456789"  # separation of duties: another key approves
APPROVE = {"resume": {"action": "approve"}}


# --- two in-process servers of the small graph on one database -------------------------------


@pytest.fixture(scope="module")
def toy_pair(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = new_database(postgres, "replicas_toy")
    with (
        serve_in_thread(_toy_app(url, tmp_path_factory)) as a,
        serve_in_thread(_toy_app(url, tmp_path_factory)) as b,
    ):
        yield a, b


def _toy_app(url: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    settings = toy_settings(tmp_path_factory.mktemp("toy-replica"), database_url=url,
                            checkpointer=lambda: postgres_saver(url), rate_per_s=1000,
                            rate_burst=10_000)  # fmt: skip
    return create_app(toy_graph, KeyRing.from_keys(KEYS), settings)


def test_another_tenants_thread_is_invisible_on_postgres(toy_pair: tuple[str, str]) -> None:
    """The tenant tests of test_server.py and test_server_hostile.py, on Postgres; acme's
    threads are made through one replica and looked for by globex through the other."""
    a, b = toy_pair
    _not_found((a, "toy"))
    _like_unknown(b, get_sync_client(url=a, api_key=ACME_KEY))


def test_one_threads_runs_go_one_at_a_time_across_replicas(toy_pair: tuple[str, str]) -> None:
    """As test_server.py's test_one_run_per_thread_unless_enqueued, with the second and third
    runs sent to the other replica: refused (409) while the first runs, or enqueued and started
    only after it ended; the first is joined through the other replica."""
    a, b = (get_sync_client(url=u, api_key=ACME_KEY) for u in toy_pair)
    brief = "gate:replicas"
    thread_id = a.threads.create()["thread_id"]
    first = a.runs.create(thread_id, "toy", input={"brief": brief, "brand_id": None})
    assert STARTED.setdefault(brief, threading.Event()).wait(20)
    assert b.threads.get(thread_id)["status"] == "busy"
    with pytest.raises(ConflictError, match="already has a run"):
        b.runs.create(thread_id, "toy", input={"brief": BRIEF, "brand_id": None})
    queued = b.runs.create(thread_id, "toy", input={"brief": BRIEF, "brand_id": None},
                           multitask_strategy="enqueue")  # fmt: skip
    time.sleep(TICK_S + 0.5)  # a tick of the other replica: it still waits
    assert b.runs.get(thread_id, queued["run_id"])["status"] == "pending"
    GATES.setdefault(brief, threading.Event()).set()
    assert asked(b.runs.join(thread_id, first["run_id"]))["kind"] == "approval"
    b.runs.join(thread_id, queued["run_id"])
    refused_at_start = a.runs.get(thread_id, queued["run_id"])
    assert refused_at_start["status"] == "error"  # it ran after the first: a question waits
    assert "waiting for an answer" in refused_at_start["error"]
    assert b.runs.wait(thread_id, "toy", command=APPROVE)["status"] == "approved"


# --- two `rmn serve` processes of the planning graph on one database ------------------------


@pytest.fixture(scope="module")
def database(postgres: str) -> str:
    return new_database(postgres, "replicas_rmn")


@pytest.fixture(scope="module")
def replicas(
    database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    world = build_small_world(tmp_path_factory)
    root = tmp_path_factory.mktemp("replicas")
    env = {ENV_URL: database, "RMN_API_KEYS": f"{ACME_KEY}:acme,{APPROVER}:acme:approver"}
    args = ["--data-dir", str(world), "--model", "none", "--workers", "2"]
    servers = [
        serve_process([*args, "--state-dir", str(root / n)], root / f"{n}.log", env) for n in "ab"
    ]
    with ExitStack() as stack:
        a, b = _start_together(servers, stack)
        yield a, b


def _start_together(
    servers: list[AbstractContextManager[ServeProcess]], stack: ExitStack
) -> list[ServeProcess]:
    """Enter the servers' contexts at once (each start takes seconds on 2 cores); every one
    that started is stopped by `stack`, also when another failed to start."""
    with ThreadPoolExecutor(len(servers)) as pool:
        futures = [pool.submit(server.__enter__) for server in servers]
        wait(futures)
    for server, future in zip(servers, futures, strict=True):
        if future.exception() is None:
            stack.push(server.__exit__)
    return [future.result() for future in futures]


def _to_approval(client: Any, thread_id: str, out: dict[str, Any]) -> dict[str, Any]:
    """The thread's values at its approval question, confirming the brief on the way."""
    for _ in range(3):
        if asked(out)["kind"] == "approval":
            return out
        out = client.runs.wait(thread_id, "rmn", command=APPROVE)
    raise AssertionError(f"no approval question: {str(out)[:300]}")


def _row(database: str, run_id: str) -> tuple[str, str | None, int]:
    with psycopg.connect(database) as con:
        row = con.execute(
            "SELECT status, owner, attempt FROM runs WHERE run_id = %s", (run_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1], int(row[2])


def test_a_run_started_on_one_replica_is_joined_and_approved_on_the_other(
    replicas: tuple[ServeProcess, ServeProcess], database: str
) -> None:
    a, b = replicas
    on_a = get_sync_client(url=a.url, api_key=ACME_KEY, timeout=300)
    on_b = get_sync_client(url=b.url, api_key=ACME_KEY, timeout=300)
    thread_id = on_a.threads.create()["thread_id"]
    run = on_a.runs.create(thread_id, "rmn", input={"brief": BRIEF, "brand_id": None})
    joined = on_b.runs.join(thread_id, run["run_id"])  # B polls the store until A is done
    out = _to_approval(on_b, thread_id, joined)
    assert _row(database, run["run_id"]) == ("success", None, 1)  # one claim: A's
    approver = get_sync_client(url=b.url, api_key=APPROVER, timeout=300)
    done = approver.runs.wait(thread_id, "rmn", command=APPROVE)
    assert done["status"] == "approved"
    assert done["plan"]["allocation"] == out["plan"]["allocation"]
    assert on_a.threads.get_state(thread_id)["values"]["status"] == "approved"


def test_a_killed_replicas_run_is_finished_once_by_the_other(
    replicas: tuple[ServeProcess, ServeProcess], database: str
) -> None:
    """Last in the module: it kills replica A."""
    a, b = replicas
    on_a = get_sync_client(url=a.url, api_key=ACME_KEY, timeout=300)
    thread_id = on_a.threads.create()["thread_id"]
    stream = on_a.runs.stream(
        thread_id, "rmn", input={"brief": BRIEF, "brand_id": None}, stream_mode="updates"
    )
    run_id = next(stream).data["run_id"]
    next(stream)  # its first step is done: it is running
    a.kill()
    killed = time.monotonic()
    status, owner, attempt = _row(database, run_id)
    assert (status, attempt) == ("running", 1) and owner is not None, "ran to its end too soon"
    on_b = get_sync_client(url=b.url, api_key=ACME_KEY, timeout=300)
    out = on_b.runs.join(thread_id, run_id)
    taken_up_s = time.monotonic() - killed
    assert "__interrupt__" in out
    assert taken_up_s < LEASE_S + 3 * TICK_S + 20, taken_up_s
    status, owner, attempt = _row(database, run_id)
    assert (status, owner, attempt) == ("success", None, 2)  # claimed once more: by B
    # Each step's checkpoint once: the run went on from A's last checkpoint, nothing twice.
    steps = [tuple(h["next"]) for h in on_b.threads.get_history(thread_id, limit=100)]
    assert len(steps) == len(set(steps)), steps
