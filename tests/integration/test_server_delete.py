"""Privacy of what users type (issue #12): deleting a thread, over HTTP (`DELETE
/threads/{id}`) or from the terminal (`rmn threads delete`), erases it from every store that
held it: its checkpoints, the server's thread and run rows, its report folder and its rows in
the decision store, and the reflection's memory of past plans stops citing it. Each store is
inspected afterwards, down to the bytes of every file under the data and server folders."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk import get_sync_client
from serving_support import ACME_KEY, KEYS, asked, refused
from typer.testing import CliRunner

from cli.main import app as rmn
from graph import build_graph
from graph.serving.auth import KeyRing
from server import create_rmn_app, rmn_settings, serve_in_thread
from tools.brief import parse_brief
from tools.plan.decisions import DecisionStore, decisions_path
from tools.world import WorldSpec, ensure_world

APPROVE = {"resume": {"action": "approve"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A market of this module's own: every file under it is searched for what was typed."""
    path = tmp_path_factory.mktemp("delete-world")
    ensure_world(path, WorldSpec(days=60, events=50_000))
    return path


def _brief(marker: str) -> str:
    return f"Allocate $1M across Alpha and Beta to maximize incremental margin for {marker}"


def _files_holding(root: Path, marker: str) -> list[str]:
    needle = marker.encode()
    files = [p for p in root.rglob("*") if p.is_file()]
    return sorted(str(p.relative_to(root)) for p in files if needle in p.read_bytes())


def _to_approval(client: Any, thread_id: str, out: dict[str, Any]) -> dict[str, Any]:
    while out.get("__interrupt__") and asked(out)["kind"] != "approval":
        out = client.runs.wait(thread_id, "rmn", command=APPROVE)
    return out


def _cited(memory: list[str], thread_key: str) -> bool:
    return any(thread_key in line for line in memory)


@pytest.mark.slow
def test_delete_over_http_erases_every_store(world: Path, tmp_path: Path) -> None:
    marker = f"zebra{uuid.uuid4().hex[:8]}"
    state_dir = tmp_path / "server"
    settings = rmn_settings(state_dir, server_context={"model": "none", "data_dir": str(world)})
    with serve_in_thread(create_rmn_app(KeyRing.from_keys(KEYS), settings)) as base:
        acme = get_sync_client(url=base, api_key=ACME_KEY, timeout=300)
        doomed = acme.threads.create()["thread_id"]
        out = _to_approval(
            acme, doomed, acme.runs.wait(doomed, "rmn", input={"brief": _brief(marker)})
        )
        final = acme.runs.wait(
            doomed, "rmn", command={"resume": {"action": "reject", "reason": "too much display"}}
        )
        assert final["status"] == "rejected"
        key = final["plan"]["thread_id"]  # the thread's name in the stores
        report = world / "reports" / key
        store = DecisionStore(decisions_path(world))
        brief = parse_brief(_brief(marker), "acme", path="rules")
        # Before: every store holds it, and a later plan's memory cites it.
        assert report.is_dir() and (report / "plan.json").is_file()
        assert [r.action for r in store.list("acme") if r.thread_id == key] == ["reject"]
        assert _cited(store.similar("acme", brief, k=10), key)
        assert _files_holding(world, marker) and _files_holding(state_dir, marker)
        later = acme.threads.create()["thread_id"]
        out = _to_approval(acme, later, acme.runs.wait(later, "rmn", input={"brief": _brief("x")}))
        assert _cited(out["memory"], key)

        acme.threads.delete(doomed)

        refused(404, lambda: acme.threads.get(doomed))
        assert doomed not in {t["thread_id"] for t in acme.threads.search(limit=1000)}
        assert not report.exists()
        assert [r for r in store.list() if r.thread_id == key] == []
        assert not _cited(store.similar("acme", brief, k=10), key)
        assert build_graph(data_dir=world).get_state(
            {"configurable": {"thread_id": key}}
        ).values in ({}, None)
        # Nothing anywhere still holds what was typed: not the checkpoints, the server's rows
        # (a run keeps its input until it is done), the decisions or the report.
        assert _files_holding(world, marker) == []
        assert _files_holding(state_dir, marker) == []
        # A new plan's memory no longer cites it.
        newer = acme.threads.create()["thread_id"]
        out = _to_approval(acme, newer, acme.runs.wait(newer, "rmn", input={"brief": _brief("y")}))
        assert not _cited(out["memory"], key)


@pytest.mark.slow
def test_rmn_threads_delete_erases_every_store(world: Path) -> None:
    marker = f"okapi{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    common = ["--data-dir", str(world)]
    made = runner.invoke(
        rmn,
        ["plan", _brief(marker), "--brand", "acme", "--model", "none", "--approve", "--json",
         *common],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    result = json.loads(made.output)
    thread_id = result["thread_id"]
    assert result["status"] == "approved"
    report = world / "reports" / thread_id
    assert report.is_dir() and _files_holding(world, marker)

    refused_other = runner.invoke(
        rmn, ["threads", "delete", thread_id, "--brand", "globex", *common]
    )
    assert refused_other.exit_code == 2 and report.is_dir()
    gone = runner.invoke(
        rmn, ["threads", "delete", thread_id, "--brand", "acme", "--json", *common]
    )
    assert gone.exit_code == 0, gone.output
    erased = json.loads(gone.output)
    assert erased["thread_id"] == thread_id and erased["checkpoints"] > 0
    assert erased["decisions"] >= 1 and erased["report"] is True

    assert not report.exists()
    rows = DecisionStore(decisions_path(world)).list()
    assert [r for r in rows if r.thread_id == thread_id] == []
    listed = runner.invoke(rmn, ["threads", "--brand", "acme", "--json", *common])
    assert thread_id not in {r["thread_id"] for r in json.loads(listed.output)}
    assert _files_holding(world, marker) == []
    again = runner.invoke(rmn, ["threads", "delete", thread_id, "--brand", "acme", *common])
    assert again.exit_code == 2 and "no thread" in again.output
