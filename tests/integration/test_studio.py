"""LangGraph Studio's local server: `langgraph dev` reads langgraph.json at the repository root,
serves the planning graph offline on a loopback port, shows its input and context schemas, and
runs a brief to the approval interrupt and on to an approved plan, driven with the SDK."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_cli.config import validate_config_file
from langgraph_sdk import get_sync_client
from review_support import assert_hitl_request
from serving_support import build_small_world

from graph.graph import graph as studio_graph
from tools.paths import PROJECT_ROOT

CONFIG = PROJECT_ROOT / "langgraph.json"
LANGGRAPH = Path(sys.executable).with_name("langgraph")
BRIEF = "Allocate $1M across Alpha and Beta to maximize incremental margin"
# What `langgraph dev` needs to run with no network: no browser, no reloader, no analytics,
# version check or tracing calls out.
OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory)


def test_langgraph_json_names_the_graph() -> None:
    config = validate_config_file(CONFIG)
    assert config["graphs"] == {"rmn": "./graph/graph.py:graph"}
    assert config["env"]["LANGGRAPH_NO_VERSION_CHECK"] == "true"
    # langgraph dev brings its own checkpointer; a compiled-in one would be refused.
    assert studio_graph.checkpointer is None
    assert set(studio_graph.get_input_jsonschema()["properties"]) == {"brief", "brand_id"}
    assert "tenant" in studio_graph.get_context_jsonschema()["properties"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`langgraph dev` on a free loopback port, polled on /ok until it answers."""
    if not LANGGRAPH.exists():
        pytest.fail(f"{LANGGRAPH} is missing: install langgraph-cli[inmem]")
    logs = tmp_path_factory.mktemp("dev") / "dev.log"
    env = {**os.environ, **OFFLINE_ENV}
    for _attempt in range(3):  # another process may grab the port between pick and bind
        port = _free_port()
        with logs.open("w") as log:
            proc = subprocess.Popen(
                [
                    str(LANGGRAPH),
                    "dev",
                    "--no-browser",
                    "--no-reload",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--config",
                    str(CONFIG),
                ],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        if proc.poll() is None and time.monotonic() < deadline:
            try:
                yield url
            finally:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            return
        proc.kill()
        proc.wait()
    pytest.fail(f"langgraph dev did not start:\n{logs.read_text()[-3000:]}")


def test_dev_server_shows_the_graph_and_its_schemas(dev_server: str) -> None:
    client = get_sync_client(url=dev_server, api_key=None)
    [assistant] = client.assistants.search(graph_id="rmn")
    schemas = client.assistants.get_schemas(assistant["assistant_id"])
    assert set(schemas["input_schema"]["properties"]) == {"brief", "brand_id"}
    context = schemas["context_schema"]["properties"]
    assert {"tenant", "model", "confidence_threshold", "auto_approve"} <= set(context)
    assert "status" in schemas["state_schema"]["properties"]
    graph = client.assistants.get_graph(assistant["assistant_id"])
    assert {"planner", "human_approval", "finalize"} <= {n["id"] for n in graph["nodes"]}


@pytest.mark.slow
def test_dev_server_runs_to_approval_and_resumes(dev_server: str, small_world: Path) -> None:
    client = get_sync_client(url=dev_server, api_key=None, timeout=300)
    context = {"tenant": "acme", "model": "tiny", "data_dir": str(small_world)}
    thread_id = client.threads.create()["thread_id"]
    out = client.runs.wait(
        thread_id, "rmn", input={"brief": BRIEF, "brand_id": None}, context=context
    )
    # Studio and LangChain's agent chat UI show a LangChain HITL request with their own buttons.
    pending = assert_hitl_request(out["__interrupt__"][0]["value"])
    if pending["kind"] == "confirm_brief":  # the brief as read is right
        out = client.runs.wait(
            thread_id, "rmn", command={"resume": {"action": "approve"}}, context=context
        )
        pending = assert_hitl_request(out["__interrupt__"][0]["value"])
    assert pending["kind"] == "approval", pending.get("message")
    assert pending["tenant"] == "acme"
    # Answered the way those UIs answer: LangChain's decisions, naming the plan version shown.
    approve = {"decisions": [{"type": "approve"}], "plan_version": pending["plan_version"]}
    out = client.runs.wait(thread_id, "rmn", command={"resume": approve}, context=context)
    assert out["status"] == "approved", out.get("error")
    state = client.threads.get_state(thread_id)
    assert state["next"] == [] and state["values"]["plan"]["status"] == "approved"
