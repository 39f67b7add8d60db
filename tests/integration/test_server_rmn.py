"""The planning graph behind the HTTP API (server.py): its brief check before a run, the same
check over HTTP in front of a small graph, the planning graph itself served on the tiny model,
from brief to an approved plan, and its threads shared with the CLI (`rmn threads/show/resume`)
with no server paths in their state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph_sdk import get_sync_client
from serving_support import (
    ACME_KEY,
    BRIEF,
    GLOBEX_KEY,
    KEYS,
    asked,
    build_small_world,
    refused,
    toy_graph,
    toy_settings,
)
from typer.testing import CliRunner

from cli.main import app as rmn
from graph.serving.auth import KeyRing
from server import (
    create_app,
    create_rmn_app,
    rmn_settings,
    serve_in_thread,
    validate_brief_input,
)
from tools.brief import BriefError
from tools.errors import AccessDeniedError, UnknownRetailerError

APPROVER_KEY = "test-key-acme-approver-0123456789"


def test_brief_input_is_checked_before_a_run() -> None:
    ok = validate_brief_input("acme", {"brief": BRIEF, "brand_id": None})
    assert ok["brand_id"] == "acme"
    with pytest.raises(UnknownRetailerError, match="Zeta"):
        validate_brief_input("acme", {"brief": "Allocate $2M across Alpha and Zeta"})
    with pytest.raises(BriefError, match="no budget"):
        validate_brief_input("acme", {"brief": "make it pop"})
    with pytest.raises(AccessDeniedError):
        validate_brief_input("acme", {"brief": BRIEF, "brand_id": "globex"})
    with pytest.raises(Exception, match="non-empty"):
        validate_brief_input("acme", {"brief": "   "})


def test_product_input_checks_over_http(tmp_path: Path) -> None:
    settings = toy_settings(tmp_path, validate_input=validate_brief_input)
    with serve_in_thread(create_app(toy_graph, KeyRing.from_keys(KEYS), settings)) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY)
        thread_id = client.threads.create()["thread_id"]
        unknown = refused(
            422,
            lambda: client.runs.wait(
                thread_id, "toy", input={"brief": "Put $2M on Alpha and Zeta", "brand_id": None}
            ),
            "Zeta",
        )
        assert unknown["type"] == "unknown_retailer" and unknown["retailers"] == ["Zeta"]
        refused(
            422,
            lambda: client.runs.wait(
                thread_id, "toy", input={"brief": "make it pop", "brand_id": None}
            ),
            "no budget",
        )
        refused(
            403,
            lambda: client.runs.create(
                thread_id, "toy", input={"brief": BRIEF, "brand_id": "globex"}
            ),
            "does not belong",
        )
        out = client.runs.wait(thread_id, "toy", input={"brief": BRIEF, "brand_id": None})
        assert out["brand_id"] == "acme" and "__interrupt__" in out


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory)


@pytest.mark.slow
def test_planning_graph_over_http(tmp_path: Path, small_world: Path) -> None:
    settings = rmn_settings(
        tmp_path / "server", server_context={"model": "tiny", "data_dir": str(small_world)}
    )
    keys = KeyRing.from_keys({**KEYS, APPROVER_KEY: "acme:approver"})
    with serve_in_thread(create_rmn_app(keys, settings)) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY, timeout=300)
        # Every context field is the server's: auto-approval is the tenant's policy.
        schemas = client.assistants.get_schemas("rmn")
        assert schemas["context_schema"]["properties"] == {}
        thread_id = client.threads.create()["thread_id"]
        out = client.runs.wait(thread_id, "rmn", input={"brief": BRIEF, "brand_id": None})
        if asked(out)["kind"] == "confirm_brief":
            out = client.runs.wait(thread_id, "rmn", command={"resume": {"action": "approve"}})
        [pending] = out["__interrupt__"]
        assert asked(out)["kind"] == "approval" and asked(out)["tenant"] == "acme"
        # The graph's own response schema checks answers before any run starts.
        assert isinstance(pending["response_schema"], dict)
        refused(
            422,
            lambda: client.runs.wait(thread_id, "rmn", command={"resume": {"action": "maybe"}}),
            "does not fit the interrupt",
        )
        refused(404, lambda: get_sync_client(url=base, api_key=GLOBEX_KEY).threads.get(thread_id))
        # $1M is above the default separation threshold: another key of acme approves.
        approver = get_sync_client(url=base, api_key=APPROVER_KEY, timeout=300)
        final = approver.runs.wait(thread_id, "rmn", command={"resume": {"action": "approve"}})
        assert final["status"] == "approved" and "__interrupt__" not in final
        assert final["plan"]["tenant"] == "acme" and final["plan"]["allocation"]


def _paths_in(value: object) -> list[str]:
    """Every string in a JSON value that is an absolute file path."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in _paths_in(v)]
    if isinstance(value, list):
        return [p for v in value for p in _paths_in(v)]
    return [value] if isinstance(value, str) and value.startswith("/") else []


@pytest.mark.slow
def test_threads_made_over_http_are_the_clis_and_carry_no_server_paths(
    tmp_path: Path, small_world: Path
) -> None:
    """A thread made over HTTP is listed, shown and answered by `rmn threads/show/resume` on
    the same data directory (under `<tenant>.<thread id>`); the server then sees the answer.
    No state value carries an absolute path of the server's disk; the CLI still prints where
    the report is."""
    settings = rmn_settings(
        tmp_path / "server", server_context={"model": "none", "data_dir": str(small_world)}
    )
    runner = CliRunner()
    common = ["--brand", "acme", "--data-dir", str(small_world)]
    with serve_in_thread(create_rmn_app(KeyRing.from_keys(KEYS), settings)) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY, timeout=300)
        thread_id = client.threads.create()["thread_id"]
        out = client.runs.wait(thread_id, "rmn", input={"brief": BRIEF, "brand_id": None})
        if asked(out)["kind"] == "confirm_brief":
            out = client.runs.wait(thread_id, "rmn", command={"resume": {"action": "approve"}})
        assert asked(out)["kind"] == "approval"
        key = out["thread_id"]
        assert key == f"acme.{thread_id}"
        assert _paths_in(out) == []

        listed = runner.invoke(rmn, ["threads", *common, "--json"])
        assert listed.exit_code == 0, listed.output
        [row] = [r for r in json.loads(listed.output) if r["thread_id"] == key]
        assert row["status"] == "awaiting_approval"
        shown = runner.invoke(rmn, ["show", key, *common, "--json"])
        assert json.loads(shown.output)["question"]["kind"] == "approval"
        answered = runner.invoke(
            rmn, ["resume", key, "--approve", "--model", "none", *common, "--json"]
        )
        assert answered.exit_code == 0, answered.output
        assert json.loads(answered.output)["status"] == "approved"

        thread = client.threads.get(thread_id)
        assert thread["status"] == "idle" and thread["values"]["status"] == "approved"
        values = client.threads.get_state(thread_id)["values"]
        assert values["report"]["markdown"] == f"{key}/report.md"
        assert _paths_in(values) == [], _paths_in(values)
        history = client.threads.get_history(thread_id, limit=100)
        assert _paths_in([h["values"] for h in history]) == []
    printed = runner.invoke(rmn, ["show", key, *common])
    report = printed.output.split("report: ")[1].strip()
    assert Path(report).is_file() and report.endswith(f"{key}/report.md")
