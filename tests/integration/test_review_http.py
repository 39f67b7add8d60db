"""Review integrity over HTTP with the official SDK (issues #12 and #14), on the planning graph
served by `server.py` without a model: a question arrives as a LangChain HITL request; an answer
for an older question (another plan version or interrupt id) is refused with 409
`stale_decision` naming the current question before any run starts; an approval queued behind
an edit (`multitask_strategy=enqueue`) is refused when its run starts, never applied to the
re-planned plan; bad edits ask the same question again (or, for NaN and infinities that JSON
cannot carry, are 422 before a run) with the thread still waiting and the plan kept; and an
approval in LangChain's or Agent Inbox's form needs an approver's role like our own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from review_support import assert_hitl_request
from serving_support import ACME_KEY, BRIEF, build_small_world, refused

from graph.serving.auth import KeyRing
from server import create_rmn_app, rmn_settings, serve_in_thread

PLANNER = "test-key-acme-planner-0123456789"
KEYS = {ACME_KEY: "acme", PLANNER: "acme:planner"}  # ACME_KEY has no role: an admin


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    world = build_small_world(tmp_path_factory)
    settings = rmn_settings(
        tmp_path_factory.mktemp("review-server"),
        server_context={"model": "none", "data_dir": str(world)},
    )
    with serve_in_thread(create_rmn_app(KeyRing.from_keys(KEYS), settings)) as url:
        yield url


def sdk(base: str, key: str) -> Any:
    return get_sync_client(url=base, api_key=key, timeout=300)


def question(out: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(interrupt id, the question's args) of a run's answer, checked as a HITL request."""
    [pending] = out["__interrupt__"]
    return pending["id"], assert_hitl_request(pending["value"])


def to_approval(base: str, starter: str = PLANNER) -> tuple[str, dict[str, Any]]:
    """A plan started by `starter` (the planner key), at its approval question: (thread id,
    run answer)."""
    planner = sdk(base, starter)
    thread_id = planner.threads.create()["thread_id"]
    out = planner.runs.wait(thread_id, "rmn", input={"brief": BRIEF, "brand_id": None})
    if question(out)[1]["kind"] == "confirm_brief":  # the planner may confirm a brief
        out = planner.runs.wait(thread_id, "rmn", command={"resume": {"action": "approve"}})
    assert question(out)[1]["kind"] == "approval"
    return thread_id, out


def resume(client: Any, thread_id: str, value: Any, **kw: Any) -> dict[str, Any]:
    return client.runs.wait(thread_id, "rmn", command={"resume": value}, **kw)


def test_a_stale_answer_is_refused_naming_the_current_question(base: str) -> None:
    admin = sdk(base, ACME_KEY)
    thread_id, out = to_approval(base)
    first_id, first = question(out)
    edit = {"decisions": [{"type": "edit",
                           "edited_action": {"name": "approve_plan", "args": {"roas_floor": 2.2}}}],
            "plan_version": first["plan_version"]}  # fmt: skip
    out = resume(admin, thread_id, edit)
    current_id, current = question(out)
    assert current["brief"]["roas_floor"] == 2.2 and current_id != first_id
    now = {"interrupt_id": current_id, "plan_version": current["plan_version"], "kind": "approval"}

    for stale in (
        {"action": "approve", "plan_version": first["plan_version"]},
        {"decisions": [{"type": "approve"}], "plan_version": first["plan_version"]},
        {first_id: {"action": "approve"}},  # LangGraph's resume by interrupt id
    ):
        body = refused(409, lambda s=stale: resume(admin, thread_id, s), "stale decision")
        assert body["type"] == "stale_decision" and body["current"] == now, body
        assert current["plan_version"] in body["message"]
    state = admin.threads.get_state(thread_id)
    assert state["values"]["status"] == "awaiting_approval"
    assert [i["id"] for i in state["interrupts"]] == [current_id]

    final = resume(admin, thread_id, [{"type": "accept", "plan_version": current["plan_version"]}])
    assert final["status"] == "approved" and final["plan"]["brief"]["roas_floor"] == 2.2


def test_approvals_queued_behind_an_edit_are_never_applied(base: str) -> None:
    admin = sdk(base, ACME_KEY)
    thread_id, out = to_approval(base)
    first_id, first = question(out)
    queued = {"multitask_strategy": "enqueue"}

    def send(value: Any) -> dict[str, Any]:
        return admin.runs.create(thread_id, "rmn", command={"resume": value}, **queued)

    edit_run = send({"action": "edit", "changes": {"roas_floor": 2.2}})
    # Sent right behind the edit, as a script would: naming the question it saw, by id or by
    # version, or naming none.
    waiting = [
        send({first_id: {"action": "approve"}}),
        send({"action": "approve", "plan_version": first["plan_version"]}),
    ]
    try:
        waiting.append(send({"action": "approve"}))
    except httpx.HTTPStatusError as err:  # the edit was re-planning: no question to answer
        assert err.response.status_code == 409, err.response.text
        assert err.response.json()["type"] == "stale_decision"
    edited = admin.runs.join(thread_id, edit_run["run_id"])
    current_id, current = question(edited)
    assert current_id != first_id and current["brief"]["roas_floor"] == 2.2
    for run in waiting:  # each waited its turn and was refused when it started
        admin.runs.join(thread_id, run["run_id"])
        ended = admin.runs.get(thread_id, run["run_id"])
        assert ended["status"] == "error" and "stale decision" in ended["error"], ended
        assert current["plan_version"] in ended["error"]
    values = admin.threads.get_state(thread_id)["values"]
    assert values["status"] == "awaiting_approval" and values["plan"]["status"] != "approved"
    assert [d["decision"]["action"] for d in values["decisions"]] == ["edit"]
    # Answering the question now pending, by its version, approves the re-planned plan.
    final = resume(admin, thread_id, {"action": "approve", "plan_version": current["plan_version"]})
    assert final["status"] == "approved" and final["plan"]["brief"]["roas_floor"] == 2.2


def test_bad_edits_ask_again_or_are_refused_and_keep_the_plan(base: str) -> None:
    admin = sdk(base, ACME_KEY)
    thread_id, out = to_approval(base)
    _, shown = question(out)
    reviewed = out["plan"]
    for changes, says in (
        ({"retailer_caps": {"alpha": -1}}, "retailer_caps"),
        ({"flight_start": "2026-10-05", "flight_end": "2028-10-05"}, "366 days"),
        ({"roas_floor": "inf"}, "roas_floor"),
        ({"colour": "blue"}, "cannot change 'colour'"),
    ):
        out = resume(admin, thread_id, {"action": "edit", "changes": changes})
        _, again = question(out)
        assert again["error"] and says in again["error"], (changes, again["error"])
        assert again["plan_version"] == shown["plan_version"] and out["plan"] == reviewed
    # Numbers JSON cannot carry: the SDK will not send them, a raw body is refused before any
    # run starts.
    for number in ("NaN", "Infinity", "-Infinity", "1e400"):
        body = (
            '{"assistant_id": "rmn", "command": {"resume": {"action": "edit", "changes": '
            f'{{"roas_floor": {number}}}}}}}}}'
        )
        answer = httpx.post(
            f"{base}/threads/{thread_id}/runs/wait",
            content=body,
            headers={"x-api-key": ACME_KEY, "content-type": "application/json"},
            timeout=60,
        )
        assert answer.status_code == 422, (number, answer.text)
        assert set(answer.json()) >= {"type", "message"}
    state = admin.threads.get_state(thread_id)
    _, still = question({"__interrupt__": state["interrupts"]})
    assert still["plan_version"] == shown["plan_version"] and state["values"]["plan"] == reviewed
    final = resume(admin, thread_id, {"action": "approve", "plan_version": shown["plan_version"]})
    assert final["status"] == "approved" and final["plan"]["allocation"] == reviewed["allocation"]


def test_every_approval_form_counts_for_separation_of_duties(base: str) -> None:
    """The key that started a $1M plan may not approve it alone, in whatever form it
    approves (the tenant's default policy: separation above $100,000); it may reject it."""
    admin = sdk(base, ACME_KEY)
    thread_id, _ = to_approval(base, starter=ACME_KEY)
    for approval in (
        {"action": "approve"},
        {"decisions": [{"type": "approve"}]},
        [{"type": "accept", "args": None}],
    ):
        body = refused(403, lambda a=approval: resume(admin, thread_id, a), "separation")
        assert body["type"] == "separation_of_duties"
    assert admin.threads.get_state(thread_id)["values"]["status"] == "awaiting_approval"
    out = resume(admin, thread_id, [{"type": "response", "args": "not this quarter"}])
    assert out["status"] == "rejected" and out["plan"]["decision"]["reason"] == "not this quarter"
