"""The planning graph on Aegra (issue #16, "the same graph on an existing LangGraph server"):
Aegra (`aegra-api`, Apache-2.0) serves langgraph.json from a real process on a loopback port,
on a real PostgreSQL database (tests/postgres_support.py), with our auth hook
(graph/platform_auth.py) mapping API keys to tenants and roles by `rmn serve`'s rule. The
official SDK drives a brief to its approval question and on to an approved plan; the tenant is
the key's whatever the client's context says; a planner may not approve; another tenant's key
finds nothing.

aegra-api 0.6.0 is the newest release that installs on Python 3.11 (0.7.0 on need 3.12)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient
from postgres_support import new_database
from serving_support import PROJECT_ROOT, build_small_world, free_port

pytest.importorskip("aegra_api", reason="pip install -e '.[aegra]'")

BRIEF = ("Allocate $1.2M across Alpha and Beta to maximize incremental margin with ROAS >= 3, "
         "10% for experiments")  # fmt: skip
KEYS = {
    "planner": "rmn_test_planner_key_0001",
    "approver": "rmn_test_approver_key_002",
    "other": "rmn_test_other_tenant_003",
}
API_KEYS = (f"{KEYS['planner']}:acme:planner,{KEYS['approver']}:acme:approver,"
            f"{KEYS['other']}:globex:admin")  # fmt: skip


@pytest.fixture(scope="module")
def aegra(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`uvicorn aegra_api.main:app` on a free loopback port, on a database of its own, polled
    on /health until it answers."""
    world = build_small_world(tmp_path_factory)
    log = tmp_path_factory.mktemp("aegra") / "aegra.log"
    env = {
        **os.environ,
        "DATABASE_URL": new_database(postgres, "aegra"),
        "AEGRA_CONFIG": str(PROJECT_ROOT / "langgraph.json"),
        "RMN_API_KEYS": API_KEYS,
        "RMN_MODEL": "none",  # the server's model: no LLM, template copy
        "RMN_DATA_DIR": str(world),
        "LANGSMITH_TRACING": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "aegra_api.main:app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 90
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"Aegra did not start:\n{log.read_text(errors='replace')[-3000:]}")


def _client(url: str, who: str) -> SyncLangGraphClient:
    return get_sync_client(url=url, api_key=KEYS[who], timeout=300)


def _status(call: Any) -> int:
    with pytest.raises(httpx.HTTPStatusError) as err:
        call()
    return err.value.response.status_code


def _pending(client: SyncLangGraphClient, thread_id: str) -> dict[str, Any]:
    """The question the thread waits on (a LangChain HITL request's args)."""
    [interrupt] = client.threads.get_state(thread_id)["interrupts"]
    return interrupt["value"]["action_requests"][0]["args"]


def test_keys_are_checked_by_our_hook(aegra: str) -> None:
    # 401s prove the hook loaded: Aegra serves everyone when its auth file fails to import.
    # Aegra imports the hook at the first request (and the graph package with it): slow once.
    missing = httpx.post(f"{aegra}/threads", json={}, timeout=120)
    assert missing.status_code == 401 and "missing x-api-key" in missing.text
    wrong = httpx.post(
        f"{aegra}/threads", json={}, headers={"x-api-key": "rmn_" + "x" * 20}, timeout=60
    )
    assert wrong.status_code == 401 and "unknown API key" in wrong.text


def test_the_sdk_drives_a_brief_to_approval_on_aegra(aegra: str) -> None:
    planner, approver, other = (_client(aegra, who) for who in ("planner", "approver", "other"))
    thread_id = planner.threads.create()["thread_id"]
    # The client names another tenant and a model: the key's run context replaces both.
    run = planner.runs.create(
        thread_id, "rmn", input={"brief": BRIEF, "brand_id": None},
        context={"tenant": "globex", "model": "smollm2"},
    )  # fmt: skip
    planner.runs.join(thread_id, run["run_id"])
    pending = _pending(planner, thread_id)
    if pending["kind"] == "confirm_brief":  # the brief as read is right
        run = planner.runs.create(thread_id, "rmn", command={"resume": {"action": "approve"}})
        planner.runs.join(thread_id, run["run_id"])
        pending = _pending(planner, thread_id)
    assert pending["kind"] == "approval" and pending["tenant"] == "acme"

    # Another tenant's key finds nothing; the planner's role may not approve.
    assert _status(lambda: other.threads.get(thread_id)) == 404
    assert _status(lambda: other.threads.get_state(thread_id)) == 404
    approve = {"resume": {"action": "approve"}}
    assert _status(lambda: planner.runs.create(thread_id, "rmn", command=approve)) == 403

    run = approver.runs.create(thread_id, "rmn", command=approve)
    approver.runs.join(thread_id, run["run_id"])
    values = approver.threads.get_state(thread_id)["values"]
    assert values["status"] == "approved", values.get("error")
    assert values["plan"]["status"] == "approved" and values["tenant"] == "acme"
    assert [t["thread_id"] for t in other.threads.search()] == []
