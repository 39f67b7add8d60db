"""Feedback over HTTP (issue #14): `POST /threads/{id}/feedback` rates the plan's copy and
rationale or says why it was edited or rejected, `GET` lists the caller tenant's; another
tenant's thread answers exactly as an id nobody uses, and `DELETE /threads/{id}` erases the
thread's ratings with it. A real `rmn` server in a thread, planning without a model (template
copy and rationale: rated, kept, with no prompt)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from serving_support import ACME_KEY, GLOBEX_KEY, KEYS, asked, build_small_world

from graph.serving.auth import KeyRing
from server import create_rmn_app, rmn_settings, serve_in_thread
from tools.plan.feedback import FeedbackStore, feedback_path

BRIEF = "Allocate $1M across Alpha and Beta to maximize incremental margin"
APPROVE = {"resume": {"action": "approve"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory)


def _post(base: str, key: str, thread_id: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{base}/threads/{thread_id}/feedback", json=body,
                      headers={"x-api-key": key}, timeout=60)  # fmt: skip


def _get(base: str, key: str, path: str) -> httpx.Response:
    return httpx.get(f"{base}{path}", headers={"x-api-key": key}, timeout=60)


@pytest.mark.slow
def test_feedback_is_tenant_scoped_and_erased_with_its_thread(world: Path, tmp_path: Path) -> None:
    settings = rmn_settings(tmp_path / "server",
                            server_context={"model": "none", "data_dir": str(world)})  # fmt: skip
    with serve_in_thread(create_rmn_app(KeyRing.from_keys(KEYS), settings)) as base:
        acme = get_sync_client(url=base, api_key=ACME_KEY, timeout=300)
        tid = acme.threads.create()["thread_id"]
        out = acme.runs.wait(tid, "rmn", input={"brief": BRIEF, "brand_id": "acme"})
        while out.get("__interrupt__") and asked(out)["kind"] != "approval":
            out = acme.runs.wait(tid, "rmn", command=APPROVE)
        assert asked(out)["kind"] == "approval"

        rated = _post(base, ACME_KEY, tid, {"target": "copy", "index": 0, "thumbs": "down",
                                            "score": 2, "corrected": "Crisp\nFresh today."})
        assert rated.status_code == 201, rated.text
        record = rated.json()
        assert record["task"] == "copy" and record["reviewer"].startswith("key-")
        assert record["thread_id"] == tid and record["output"].startswith('{"headline"')
        # the model was off: template copy, rated and kept, with no prompt to train on
        assert record["written_by"] == "fallback" and record["prompt"] is None
        why = _post(base, ACME_KEY, tid, {"target": "plan", "decision": "edited",
                                          "reason": "floor too low"})  # fmt: skip
        assert why.status_code == 201, why.text
        bad = _post(base, ACME_KEY, tid, {"target": "copy", "index": 99, "thumbs": "up"})
        assert bad.status_code == 422 and bad.json()["type"] == "invalid_feedback", bad.text
        empty = _post(base, ACME_KEY, tid, {"target": "copy", "index": 0})
        assert empty.status_code == 422 and "thumbs" in empty.json()["message"], empty.text

        # Another tenant: refused exactly as an id nobody uses, and it lists nothing.
        unknown = str(uuid.uuid4())
        theirs = _post(base, GLOBEX_KEY, tid, {"target": "copy", "index": 0, "thumbs": "up"})
        nobody = _post(base, GLOBEX_KEY, unknown, {"target": "copy", "index": 0, "thumbs": "up"})
        assert theirs.status_code == nobody.status_code == 404
        assert theirs.json()["type"] == nobody.json()["type"] == "not_found"
        assert theirs.json()["message"].replace(tid, "ID") == nobody.json()["message"].replace(
            unknown, "ID")  # fmt: skip
        listed = _get(base, GLOBEX_KEY, f"/threads/{tid}/feedback")
        assert listed.status_code == 404
        assert _get(base, GLOBEX_KEY, "/feedback").json() == []
        mine = _get(base, ACME_KEY, f"/threads/{tid}/feedback").json()
        assert [r["task"] for r in mine] == ["copy", "plan"]
        assert len(_get(base, ACME_KEY, "/feedback").json()) == 2

        acme.threads.delete(tid)
        assert _get(base, ACME_KEY, "/feedback").json() == []
        assert FeedbackStore(feedback_path(world)).list("acme") == []
        assert _get(base, ACME_KEY, f"/threads/{tid}/feedback").status_code == 404
