"""Fair, bounded serving (issue #12): a tenant can hold at most N runs in the queue and others
are unaffected, the rate limit is per tenant (a second key is not a second allowance), failed
API-key attempts are limited per client address, a tenant's threads are bounded, and the worker
pool takes tenants in turn so a flood from one does not starve another. The noisy-neighbour
figure itself comes from `rmn bench server --flood` (cli/server_bench.py), never from a timed
assert; its plumbing is checked here on the small graph."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from langgraph_sdk import get_sync_client
from serving_support import (
    ACME_KEY,
    BRIEF,
    GATES,
    GLOBEX_KEY,
    KEYS,
    STARTED,
    STARTS,
    refused,
    toy_graph,
    toy_settings,
)

from cli.server_bench import drive_flood
from graph.serving.auth import KeyRing
from server import create_app, serve_in_thread

ACME_SECOND_KEY = "test-key-acme-second-0123456789"


def _hold_the_worker(client: Any, brief: str) -> str:
    """Start a run that waits at its gate (so the one worker is busy); its thread id."""
    thread_id = client.threads.create()["thread_id"]
    client.runs.create(thread_id, "toy", input={"brief": brief, "brand_id": None})
    assert STARTED.setdefault(brief, threading.Event()).wait(20)
    return thread_id


def _background(client: Any, brief: str) -> dict[str, Any]:
    thread_id = client.threads.create()["thread_id"]
    return client.runs.create(thread_id, "toy", input={"brief": brief, "brand_id": None})


def test_a_tenants_queue_is_bounded_and_others_are_unaffected(tmp_path: Path) -> None:
    settings = toy_settings(tmp_path, workers=1, max_queued_per_tenant=2)
    with serve_in_thread(create_app(toy_graph, KeyRing.from_keys(KEYS), settings)) as base:
        acme = get_sync_client(url=base, api_key=ACME_KEY)
        globex = get_sync_client(url=base, api_key=GLOBEX_KEY)
        gate = "gate:tenant-queue"
        _hold_the_worker(acme, gate)
        waiting = _background(acme, "slow:acme-2")
        body = refused(429, lambda: _background(acme, "slow:acme-3"), "acme")
        assert body["type"] == "tenant_queue_full" and body["limit"] == 2
        # Another tenant's runs are still taken while acme's queue is full.
        theirs = _background(globex, "slow:globex-1")
        GATES.setdefault(gate, threading.Event()).set()
        assert "__interrupt__" in globex.runs.join(theirs["thread_id"], theirs["run_id"])
        assert "__interrupt__" in acme.runs.join(waiting["thread_id"], waiting["run_id"])
        # With its queue drained, acme may queue again.
        again = _background(acme, "slow:acme-4")
        assert "__interrupt__" in acme.runs.join(again["thread_id"], again["run_id"])


def test_the_worker_pool_takes_tenants_in_turn(tmp_path: Path) -> None:
    """One worker: acme queues three runs behind its running one, globex queues one after
    them; globex's run goes next, not after acme's three."""
    settings = toy_settings(tmp_path, workers=1)
    STARTS.clear()
    with serve_in_thread(create_app(toy_graph, KeyRing.from_keys(KEYS), settings)) as base:
        acme = get_sync_client(url=base, api_key=ACME_KEY)
        globex = get_sync_client(url=base, api_key=GLOBEX_KEY)
        gate = "gate:turns"
        _hold_the_worker(acme, gate)
        runs = [(acme, _background(acme, f"acme-{i}")) for i in range(3)]
        runs.append((globex, _background(globex, "globex-0")))
        GATES.setdefault(gate, threading.Event()).set()
        for client, run in runs:
            client.runs.join(run["thread_id"], run["run_id"])
    assert list(STARTS) == [gate, "globex-0", "acme-0", "acme-1", "acme-2"]


def test_one_tenant_never_holds_every_worker(tmp_path: Path) -> None:
    """Two workers, at most one running run per tenant: acme's second run waits although a
    worker is free, and globex's run takes that worker at once."""
    settings = toy_settings(tmp_path, workers=2, max_running_per_tenant=1)
    STARTS.clear()
    with serve_in_thread(create_app(toy_graph, KeyRing.from_keys(KEYS), settings)) as base:
        acme = get_sync_client(url=base, api_key=ACME_KEY)
        globex = get_sync_client(url=base, api_key=GLOBEX_KEY)
        gate = "gate:per-tenant"
        _hold_the_worker(acme, gate)
        second = _background(acme, "acme-second")
        time.sleep(0.3)  # a free worker: were acme not capped, its second run would start now
        assert list(STARTS) == [gate]
        theirs = _background(globex, "globex-first")
        assert "__interrupt__" in globex.runs.join(theirs["thread_id"], theirs["run_id"])
        assert list(STARTS) == [gate, "globex-first"]
        GATES.setdefault(gate, threading.Event()).set()
        acme.runs.join(second["thread_id"], second["run_id"])
    assert list(STARTS) == [gate, "globex-first", "acme-second"]


def test_the_rate_limit_is_per_tenant_not_per_key(tmp_path: Path) -> None:
    keys = {**KEYS, ACME_SECOND_KEY: "acme"}
    settings = toy_settings(tmp_path, rate_per_s=0.2, rate_burst=3)
    with serve_in_thread(create_app(toy_graph, KeyRing.from_keys(keys), settings)) as base:
        first = get_sync_client(url=base, api_key=ACME_KEY)
        second = get_sync_client(url=base, api_key=ACME_SECOND_KEY)
        for _ in range(3):
            first.threads.search()
        body = refused(429, second.threads.search, "tenant acme")
        assert body["type"] == "rate_limited"
        get_sync_client(url=base, api_key=GLOBEX_KEY).threads.search()  # its own allowance


def test_failed_key_attempts_are_limited_per_client_address(tmp_path: Path) -> None:
    settings = toy_settings(tmp_path, auth_failures_burst=5, auth_failures_per_min=1.0)
    app = create_app(toy_graph, KeyRing.from_keys(KEYS), settings)
    with TestClient(app, client=("203.0.113.9", 5000)) as guesser:
        codes = [
            guesser.get("/threads/search", headers={"x-api-key": f"guess-{i:020d}"}).status_code
            for i in range(7)
        ]
        assert codes == [401] * 5 + [429] * 2
        # Locked out: even the right key is not checked from this address for now.
        locked = guesser.post("/threads/search", json={}, headers={"x-api-key": ACME_KEY})
        assert locked.status_code == 429 and locked.json()["type"] == "auth_locked"
        assert int(locked.headers["Retry-After"]) >= 1
    with TestClient(app, client=("198.51.100.7", 5000)) as other:
        ok = other.post("/threads/search", json={}, headers={"x-api-key": ACME_KEY})
        assert ok.status_code == 200


def test_a_tenants_threads_are_bounded(tmp_path: Path) -> None:
    settings = toy_settings(tmp_path, max_threads_per_tenant=2)
    with serve_in_thread(create_app(toy_graph, KeyRing.from_keys(KEYS), settings)) as base:
        acme = get_sync_client(url=base, api_key=ACME_KEY)
        made = [acme.threads.create()["thread_id"] for _ in range(2)]
        body = refused(429, acme.threads.create, "at most 2 threads")
        assert body["type"] == "thread_quota"
        refused(
            429,
            lambda: acme.runs.wait(None, "toy", input={"brief": BRIEF, "brand_id": None}),
            "at most 2",
        )
        get_sync_client(url=base, api_key=GLOBEX_KEY).threads.create()  # its own quota
        acme.threads.delete(made[0])
        acme.threads.create()


def test_flood_driver_counts_refusals_and_the_neighbours_latency(tmp_path: Path) -> None:
    """The bench's flood: one tenant sends runs as fast as it may for a while, another makes a
    few plans; the figures are the other tenant's latencies and what the flood was answered."""
    settings = toy_settings(tmp_path, workers=2, max_queued_per_tenant=2, rate_burst=5)
    with serve_in_thread(create_app(toy_graph, KeyRing.from_keys(KEYS), settings)) as base:
        result = drive_flood(
            base,
            flood_key=ACME_KEY,
            flood_brief="slow:flood",
            neighbour_key=GLOBEX_KEY,
            neighbour_brief="slow:neighbour",
            neighbour_runs=3,
            flood_clients=3,
            timeout_s=60,
            assistant="toy",
        )
    assert result["neighbour"]["completed"] == 3 and result["neighbour"]["errors"] == 0
    assert result["neighbour"]["latency_s"]["n"] == 3
    flood = result["flood"]
    assert flood["sent"] == flood["accepted"] + flood["refused_429"] + flood["refused_503"]
    assert flood["refused_429"] > 0 and flood["accepted"] > 0
    assert flood["other_errors"] == 0
