"""Nothing lost when the server dies (issue #12): a real `rmn serve` process SIGKILLed in the
middle of a plan, with another run still queued behind it, picks both up on restart from their
last checkpoints; the interrupted plan reaches the same question an uninterrupted one does. A
graceful stop (tests/integration/test_server.py) continues its runs on the next start the same
way. The moment that made the SIGKILL test flaky (killed after a step's writes were saved,
before the checkpoint after them) is reproduced in-process, without timing luck, by the first
test."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph_sdk import get_sync_client
from serving_support import (
    ACME_KEY,
    KEYS,
    STARTS,
    asked,
    serve_process,
    toy_graph,
    toy_settings,
)

from graph import thread_status
from graph.serving.app import create_app, serve_in_thread
from graph.serving.auth import KeyRing, add_key
from graph.serving.runs import GraphServer
from graph.serving.schemas import RunCreate
from tools.world import WorldSpec, ensure_world

BRIEF = "Allocate $1M across Alpha and Beta to maximize incremental margin"
APPROVE = {"resume": {"action": "approve"}}


def _approval(client: Any, thread_id: str, out: dict[str, Any]) -> dict[str, Any]:
    """The approval question a thread reaches, confirming the brief on the way if asked."""
    for _ in range(3):
        question = asked(out)
        if question["kind"] == "approval":
            return question
        out = client.runs.wait(thread_id, "rmn", command=APPROVE)
    raise AssertionError(f"no approval question: {out}")


def _comparable(question: dict[str, Any]) -> dict[str, Any]:
    """What two runs of one brief must agree on: the money and what it is expected to buy."""
    return {k: question[k] for k in ("brief", "allocation", "expected_outcome", "experiment")}


def _runs(state_dir: Path) -> dict[str, str]:
    with sqlite3.connect(state_dir / "server.sqlite") as con:
        return dict(con.execute("SELECT run_id, status FROM runs").fetchall())


class DiesBeforeTheNextCheckpoint(InMemorySaver):
    """Checkpoints kept as a process leaves them when it dies between saving a step's writes
    and saving the checkpoint after them: the run's first step (`plan`) finishes and its writes
    are kept; from the save of the next checkpoint on nothing more is (the call never returns,
    as in a process SIGKILLed right there), until `revive` makes it a plain saver for the next
    process. This is the moment the flaky SIGKILL test below hit about 2 times in 3: with
    asynchronous saves a kill lands there whenever the next checkpoint is still being saved."""

    def __init__(self) -> None:
        super().__init__()
        self.plan_saved = threading.Event()
        self.died = threading.Event()
        self._dead = False
        self._buried = threading.Event()

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        dies_now = not self.died.is_set() and metadata.get("step", -1) >= 1
        if self._dead or (dies_now and self.plan_saved.wait(20)):
            self._die()
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        if self._dead:
            self._die()
        super().put_writes(config, writes, task_id, task_path)
        if any(channel == "plan" for channel, _ in writes):
            self.plan_saved.set()

    def _die(self) -> None:
        self._dead = True
        self.died.set()
        self._buried.wait()  # the dead process's calls end only when the test is over
        raise RuntimeError("this process was killed")

    def revive(self) -> None:
        """What the next process opens: everything saved before the death, nothing after."""
        self._dead = False

    def bury(self) -> None:
        """Let the dead process's blocked calls fail, so its threads end with the test."""
        self._dead = True
        self._buried.set()


@pytest.fixture()
def dying_saver() -> Iterator[DiesBeforeTheNextCheckpoint]:
    saver = DiesBeforeTheNextCheckpoint()
    yield saver
    saver.bury()


def test_a_run_killed_between_a_step_and_its_checkpoint_is_joined_to_its_end(
    tmp_path: Path, dying_saver: DiesBeforeTheNextCheckpoint
) -> None:
    """The last checkpoint of a killed run may still list the step it had finished (its
    writes are saved beside it): the thread had not reached its question, so the restart
    carries the run on, and `join` waits for it to ask, instead of answering at once with the
    values after the plan step and no question (the run taken for done)."""
    brief = "killed between a step and its checkpoint"
    settings = toy_settings(tmp_path, workers=1, checkpointer=lambda: dying_saver)
    first = GraphServer(toy_graph, settings)  # the process that dies: never stopped
    first.start(asyncio.new_event_loop())
    caller = KeyRing.from_keys(KEYS).caller(ACME_KEY)
    assert caller is not None
    thread_id = str(uuid.uuid4())
    assert first.new_thread(caller, thread_id, {})
    body = RunCreate(assistant_id="toy", input={"brief": brief, "brand_id": None})
    run = first.new_run(caller, thread_id, body, asyncio.new_event_loop())
    first.admit(run)
    assert dying_saver.died.wait(20)
    # As the kill left it: the run recorded running, its plan step's writes kept beside the
    # checkpoint before it, which the live state no longer lists as a step to take.
    assert first.store is not None and first.store.run(run.run_id)["status"] == "running"
    dying_saver.revive()
    left = first.graph.get_state({"configurable": {"thread_id": run.key}})
    assert (left.next, left.interrupts, left.values["status"]) == ((), (), "awaiting_approval")
    assert thread_status(left) == "resumable"  # not the status the kept writes say

    STARTS.clear()
    app = create_app(toy_graph, KeyRing.from_keys(KEYS), settings)
    with serve_in_thread(app) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY)
        joined = client.runs.join(thread_id, run.run_id)
        assert asked(joined)["kind"] == "approval"
        assert joined["plan"]["brief"] == brief
        assert client.runs.get(thread_id, run.run_id)["status"] == "success"
        assert client.threads.get(thread_id)["status"] == "interrupted"
    assert STARTS == []  # the plan step's kept writes were used, not the step run again


@pytest.mark.slow
def test_a_server_killed_mid_run_picks_its_runs_up_on_restart(tmp_path: Path) -> None:
    # A market of its own: its curves are not fitted yet, so the clean-room step is long
    # enough to be killed in.
    world = tmp_path / "world"
    ensure_world(world, WorldSpec(days=60, events=50_000))
    key = add_key(tmp_path / "keys.json", "acme")
    state_dir = tmp_path / "server"
    args = ["--keys", str(tmp_path / "keys.json"), "--data-dir", str(world), "--model", "none",
            "--workers", "1", "--state-dir", str(state_dir)]  # fmt: skip
    log = tmp_path / "serve.log"

    with serve_process(args, log) as first:
        client = get_sync_client(url=first.url, api_key=key, timeout=300)
        killed = client.threads.create()["thread_id"]
        queued = client.threads.create()["thread_id"]
        stream = client.runs.stream(
            killed, "rmn", input={"brief": BRIEF, "brand_id": None}, stream_mode="updates"
        )
        metadata = next(stream)
        assert metadata.event == "metadata"
        killed_run = metadata.data["run_id"]
        # One worker, busy: this run waits in the queue.
        queued_run = client.runs.create(queued, "rmn", input={"brief": BRIEF, "brand_id": None})
        seen = []
        for part in stream:
            seen += list(part.data) if isinstance(part.data, dict) else []
            if "planner" in seen:
                first.kill()
                break
    assert "planner" in seen
    # Cut off mid-run: one run was running past its first step, the other never started.
    assert _runs(state_dir) == {killed_run: "running", queued_run["run_id"]: "pending"}

    with serve_process(args, log) as second:
        client = get_sync_client(url=second.url, api_key=key, timeout=300)
        resumed = client.runs.join(killed, killed_run)
        question = _approval(client, killed, resumed)
        assert question["kind"] == "approval"
        assert "__interrupt__" in client.runs.join(queued, queued_run["run_id"])
        statuses = {r["run_id"]: r["status"] for r in client.runs.list(killed)}
        assert statuses[killed_run] == "success"
        assert client.runs.get(queued, queued_run["run_id"])["status"] == "success"
        # The planner's step is not run again: the checkpoint after it was kept, and the run
        # went on from there (one checkpoint waits for the clean room, not two).
        history = client.threads.get_history(killed, limit=100)
        assert [h["next"] for h in history].count(["clean_room"]) == 1
        # The same brief, never interrupted, reaches the same question.
        fresh = client.threads.create()["thread_id"]
        out = client.runs.wait(fresh, "rmn", input={"brief": BRIEF, "brand_id": None})
        assert _comparable(_approval(client, fresh, out)) == _comparable(question)
