"""What the HTTP graph API tests share: a small graph of the planning graph's shape (a plan
step tests can hold at a gate, then an approval interrupt), the keys and server settings they
serve it with, a check for refusals, and the small seeded market the planning graph runs on
(test_studio uses it too)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import interrupt
from typing_extensions import TypedDict

from server import ResumeDecision, ServerSettings
from tools.plan.questions import question_of
from tools.world import WorldSpec, ensure_world

ACME_KEY = "test-key-acme-0123456789"
GLOBEX_KEY = "test-key-globex-0123456789"
KEYS = {ACME_KEY: "acme", GLOBEX_KEY: "globex"}
BRIEF = "Allocate $1M across Alpha and Beta to maximize incremental margin"


# --- a graph of the planning graph's shape ----------------------------------------------------


@dataclass(kw_only=True)
class ToyContext:
    tenant: str = "nobody"
    confidence_threshold: float = 0.8
    model: str = "real"
    actor: str | None = None


class ToyInput(TypedDict):
    brief: str
    brand_id: str | None


class ToyState(TypedDict, total=False):
    brief: str
    brand_id: str | None
    tenant: str
    model: str
    plan: dict[str, Any]
    decision: dict[str, Any]
    status: str


GATES: dict[str, threading.Event] = {}
STARTED: dict[str, threading.Event] = {}
ACTIVE = {"now": 0, "max": 0}
ACTIVE_LOCK = threading.Lock()
# Briefs in the order their plan step started (the fair-scheduling tests read it).
STARTS: list[str] = []


def plan_node(state: ToyState, runtime: Runtime[ToyContext]) -> dict[str, Any]:
    brief = state["brief"]
    with ACTIVE_LOCK:
        ACTIVE["now"] += 1
        ACTIVE["max"] = max(ACTIVE["max"], ACTIVE["now"])
        STARTS.append(brief)
    try:
        if brief.startswith("gate:"):
            STARTED.setdefault(brief, threading.Event()).set()
            GATES.setdefault(brief, threading.Event()).wait(20)
        if brief.startswith("slow:"):
            time.sleep(0.15)
        if brief == "explode":
            raise RuntimeError("secret internals at /srv/private/path")
    finally:
        with ACTIVE_LOCK:
            ACTIVE["now"] -= 1
    # "nan:" and "inf:" briefs put a non-finite number in the state, as a tool's bug might.
    budget = {"nan:": float("nan"), "inf:": float("inf")}.get(brief[:4], 100.0)
    return {
        "tenant": runtime.context.tenant,
        "model": runtime.context.model,
        "plan": {
            "brief": brief,
            "budget": budget,
            "threshold": runtime.context.confidence_threshold,
        },
        "status": "awaiting_approval",
    }


def approval_node(state: ToyState, runtime: Runtime[ToyContext]) -> dict[str, Any]:
    answer = interrupt({"kind": "approval", "plan": state["plan"]})
    # Who answered: the key the server put in the run's context (None without keys).
    decision = {**answer, "by": runtime.context.actor} if runtime.context.actor else answer
    if answer["action"] == "edit":
        plan = {**state["plan"], **answer.get("changes", {})}
        return {"plan": plan, "decision": decision, "status": "edited"}
    status = "approved" if answer["action"] == "approve" else "rejected"
    return {"decision": decision, "status": status}


def after_approval(state: ToyState) -> str:
    return "approval" if state.get("status") == "edited" else END


def toy_graph(saver: Any) -> Any:
    builder = StateGraph(ToyState, context_schema=ToyContext, input_schema=ToyInput)
    builder.add_node("plan", plan_node)
    builder.add_node("approval", approval_node)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "approval")
    builder.add_conditional_edges("approval", after_approval, ["approval", END])
    return builder.compile(checkpointer=saver)


def toy_approval_amount(value: Any) -> float | None:
    """What an interrupt of the small graph asks to approve: its plan's budget."""
    if isinstance(value, dict) and value.get("kind") == "approval":
        return value["plan"]["budget"]
    return None


def toy_approves(answer: Any) -> bool:
    return isinstance(answer, dict) and answer.get("action") == "approve"


def toy_settings(state_dir: Path, **overrides: Any) -> ServerSettings:
    settings = ServerSettings(
        state_dir=state_dir,
        graph_id="toy",
        workers=2,
        client_context_fields=frozenset({"confidence_threshold"}),
        server_context={"model": "tiny"},
        resume_model=ResumeDecision,
        approval_amount=toy_approval_amount,
        approves=toy_approves,
        actor_field="actor",
    )
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


def refused(status: int, call: Any, match: str = "") -> dict[str, Any]:
    """The JSON error body of a call the server must refuse with `status`. The client raises
    its typed errors (subclasses of httpx.HTTPStatusError) or, on reconnecting calls such as
    `runs.wait`, httpx's own."""
    with pytest.raises(httpx.HTTPStatusError) as caught:
        call()
    body = caught.value.response.json()
    assert caught.value.response.status_code == status, body
    assert match in body["message"], body
    return body


def asked(out: dict[str, Any]) -> dict[str, Any]:
    """The question a thread waits on, from a run's answer: the planning graph's summary (the
    args of its LangChain HITL request, with `kind`), or the small graph's value as it is."""
    pending = out.get("__interrupt__") or []
    assert pending, f"no question pending: {str(out)[:300]}"
    question = question_of(pending[0]["value"])
    assert question is not None, pending[0]["value"]
    return question


def start_interrupted(
    client: Any, brief: str = BRIEF, graph_id: str = "toy"
) -> tuple[str, dict[str, Any]]:
    thread = client.threads.create()
    out = client.runs.wait(thread["thread_id"], graph_id, input={"brief": brief, "brand_id": None})
    return thread["thread_id"], out


def build_small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded market, built once per session: every module that uses it shares one
    folder."""
    path = tmp_path_factory.getbasetemp() / "small-world"
    ensure_world(path, WorldSpec(days=60, events=50_000))
    return path


# --- `rmn serve` in its own process -----------------------------------------------------------

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """A running `rmn serve` on a loopback port: its URL, its process and its log."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the machine or the OOM killer stops it."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)


@contextmanager
def serve_process(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[ServeProcess]:
    """`rmn serve --host 127.0.0.1 --port P ARGS` (P free), polled on /ok until it answers;
    stopped (SIGTERM, then SIGKILL) on exit unless the test killed it."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port",
             str(port), "--log-level", "warning", *args],
            cwd=PROJECT_ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    served = ServeProcess(proc, url, log)
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"rmn serve did not start:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
        yield served
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
