"""What users type stays private: a brief's PII is redacted before anything is checkpointed.

LangGraph checkpoints the graph's input itself (the `input` checkpoint at step -1 and the
start task's writes) before any node runs, then every step's state. A brief with an email and
a phone number is planned through Python `invoke` and over HTTP, and every place it could land
is read back: each checkpoint in the thread's history (values and metadata), the raw saver's
checkpoints, metadata and pending writes, the SQLite files' bytes (the write-ahead log too),
the server's run store and the report and decision files.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command
from langgraph_sdk import get_sync_client
from serving_support import ACME_KEY, KEYS, build_small_world

from graph import Context, build_graph, run_config
from graph.checkpoint import sqlite_saver
from graph.serving.auth import KeyRing
from server import create_rmn_app, rmn_settings, serve_in_thread, validate_brief_input
from tools.plan.questions import question_of

EMAIL = "privacy.probe.7f3a@example.com"
PHONE = "312-555-0147"
SECRETS = (EMAIL, PHONE, "privacy.probe", "555-0147")
BRIEF = (
    "Allocate $1M across Alpha and Beta to maximize incremental margin. "
    f"Questions to {EMAIL} or {PHONE}."
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory)


def kind(out: dict[str, Any]) -> str | None:
    """The kind of question a run over HTTP stopped at."""
    question = question_of(out["__interrupt__"][0]["value"])
    return question["kind"] if question else None


def leaks(blob: Any) -> list[str]:
    text = blob if isinstance(blob, str) else repr(blob)
    return [s for s in SECRETS if s in text]


def file_leaks(folder: Path) -> dict[str, list[str]]:
    """Every file under `folder` (SQLite databases with their -wal/-shm files, reports,
    JSON) whose bytes hold one of the secrets."""
    found: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        hits = [s for s in SECRETS if s.encode() in data]
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


def saver_leaks(saver: Any, thread_id: str) -> list[tuple[Any, str, list[str]]]:
    """(step, what, secrets) for every raw checkpoint tuple of the thread that holds one."""
    out = []
    for tup in saver.list({"configurable": {"thread_id": thread_id}}):
        step = tup.metadata.get("step")
        for what, part in (
            ("checkpoint", tup.checkpoint),
            ("metadata", tup.metadata),
            ("pending_writes", tup.pending_writes),
        ):
            if hits := leaks(part):
                out.append((step, what, hits))
    return out


def test_a_brief_is_redacted_before_any_checkpoint_in_python(world: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    app = build_graph(checkpointer=sqlite_saver(store / "checkpoints.sqlite"))
    context = Context(
        tenant="acme",
        model="none",
        data_dir=str(world),
        reports_dir=str(store / "reports"),
        copy_variants=1,
        max_creative_attempts=1,
    )
    thread_id = f"privacy-{uuid.uuid4().hex[:8]}"
    config = run_config(thread_id, "acme")
    out = app.invoke({"brief": BRIEF, "brand_id": "acme"}, config, context=context)
    while out.get("__interrupt__"):
        out = app.invoke(Command(resume={"action": "approve"}), config, context=context)
    assert out["status"] == "approved"
    # Before: 6 of the 9 checkpoints up to the approval question held the raw brief.
    history = list(app.get_state_history(config))
    assert len(history) >= 9
    bad = [
        (s.metadata.get("step"), leaks(s.values) + leaks(s.metadata))
        for s in history
        if leaks(s.values) or leaks(s.metadata)
    ]
    assert bad == []
    assert saver_leaks(app.checkpointer, thread_id) == []
    assert file_leaks(store) == {}
    # What the thread keeps instead, and governance still reports what the brief held.
    assert out["brief"].endswith("Questions to <EMAIL> or <PHONE>.")
    plan = out["plan"]
    assert plan["brief_text"] == out["brief"] and plan["brief"]["total_budget"] == 1_000_000
    found = {(f["type"], f["where"]) for f in plan["governance"]}
    assert {("EMAIL", "brief"), ("PHONE", "brief")} <= found


def test_a_brief_written_into_the_state_later_is_redacted_too(world: Path, tmp_path: Path) -> None:
    app = build_graph(checkpointer=sqlite_saver(tmp_path / "checkpoints.sqlite"))
    config = run_config("privacy-update", "acme")
    app.update_state(config, {"brief": BRIEF, "brand_id": "acme"}, as_node="__start__")
    assert app.get_state(config).values["brief"].endswith("<EMAIL> or <PHONE>.")
    assert saver_leaks(app.checkpointer, "privacy-update") == []


def test_the_servers_brief_check_hands_on_the_redacted_brief() -> None:
    checked = validate_brief_input("acme", {"brief": BRIEF, "brand_id": None})
    assert leaks(checked) == [] and checked["brief"].endswith("<EMAIL> or <PHONE>.")


def test_a_brief_is_redacted_before_any_checkpoint_over_http(world: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    settings = rmn_settings(
        store / "server",
        server_context={"model": "none", "data_dir": str(world), "reports_dir": str(store)},
        checkpointer=lambda: sqlite_saver(store / "checkpoints.sqlite"),
    )
    with serve_in_thread(create_rmn_app(KeyRing.from_keys(KEYS), settings)) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY, timeout=300)
        thread_id = client.threads.create()["thread_id"]
        out = client.runs.wait(thread_id, "rmn", input={"brief": BRIEF, "brand_id": None})
        if kind(out) == "confirm_brief":
            out = client.runs.wait(thread_id, "rmn", command={"resume": {"action": "approve"}})
        assert kind(out) == "approval"
        history = client.threads.get_history(thread_id, limit=100)
        assert len(history) >= 9
        assert [h["metadata"].get("step") for h in history if leaks(h)] == []
        assert leaks(client.threads.get(thread_id)) == []
        assert leaks(client.runs.list(thread_id)) == []
        assert out["brief"].endswith("<EMAIL> or <PHONE>.")
    # The raw stores: the checkpoints (and their WAL) and the server's run store.
    assert file_leaks(store) == {}
    saver = sqlite_saver(store / "checkpoints.sqlite")
    assert saver_leaks(saver, f"acme.{thread_id}") == []
    assert json.dumps(out).count("<EMAIL>") >= 1
