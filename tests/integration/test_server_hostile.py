"""The HTTP graph API against a hostile or careless client (issue #12): bad filters and
checkpoint ids in search/history requests are 4xx and leave the connection usable, another
tenant's thread id answers exactly like an unknown one on every route (no existence oracle),
non-finite numbers are refused in every request and never sent as bare NaN/Infinity, and the
official SDK parses every answer. Served for real on loopback, on the small graph of
tests/serving_support.py."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_sync_client
from serving_support import (
    ACME_KEY,
    BRIEF,
    GLOBEX_KEY,
    KEYS,
    start_interrupted,
    toy_graph,
    toy_settings,
)

from graph.serving.auth import KeyRing
from server import create_app, serve_in_thread

NEW = {"assistant_id": "toy", "input": {"brief": BRIEF, "brand_id": None}}
APPROVE = {"assistant_id": "toy", "command": {"resume": {"action": "approve"}}}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Many requests per test: the rate limit (test_server_fairness.py) is not what is tested.
    settings = toy_settings(tmp_path_factory.mktemp("hostile"), rate_per_s=1000, rate_burst=10_000)
    with serve_in_thread(create_app(toy_graph, KeyRing.from_keys(KEYS), settings)) as base:
        yield base


@pytest.fixture()
def acme(url: str) -> Any:
    return get_sync_client(url=url, api_key=ACME_KEY)


def _post_raw(http: httpx.Client, path: str, text: str) -> httpx.Response:
    return http.post(path, content=text.encode(), headers={"content-type": "application/json"})


# --- search and history filters ---------------------------------------------------------------


def test_bad_filters_and_checkpoint_ids_are_4xx_and_the_connection_stays_usable(
    url: str, acme: Any
) -> None:
    thread_id, _ = start_interrupted(acme)
    history = f"/threads/{thread_id}/history"
    bad: list[tuple[str, dict[str, Any]]] = [
        (history, {"metadata": {"a') = 1 OR ('1": 1}}),
        (history, {"metadata": {"": 1}}),
        (history, {"metadata": {'a"b': 1}}),
        (history, {"metadata": {"step": {"nested": [1, 2]}}}),
        (history, {"before": "not-a-checkpoint"}),
        (history, {"checkpoint": {"checkpoint_id": "zzz"}}),
        (f"/threads/{thread_id}/state/checkpoint", {"checkpoint": {"checkpoint_id": "../x"}}),
        ("/threads/search", {"metadata": {"a') = 1 OR ('1": 1}}),
        ("/threads/search", {"values": {"": 1}}),
        ("/threads/search", {"ids": ["not-a-uuid"]}),
        ("/threads/search", {"status": "everything"}),
        ("/threads/count", {"metadata": "oops"}),
    ]
    # One keep-alive connection for every request: a refusal must not spoil it.
    with httpx.Client(base_url=url, headers={"x-api-key": ACME_KEY}, timeout=30) as http:
        for path, body in bad:
            response = http.post(path, json=body)
            assert 400 <= response.status_code < 500, (path, body, response.text)
            assert set(response.json()) >= {"type", "message"}, response.text
        assert http.get(f"/threads/{thread_id}/state/not-a-checkpoint").status_code == 422
        # The same connection still answers, and the thread's history is intact.
        ok = http.post(history, json={"metadata": {"step": 1}})
        assert ok.status_code == 200 and len(ok.json()) == 1
        assert http.post("/threads/search", json={"metadata": {}}).status_code == 200
    assert acme.threads.get(thread_id)["status"] == "interrupted"


# --- non-finite numbers -----------------------------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_non_finite_numbers_are_refused_in_every_request(url: str, acme: Any, literal: str) -> None:
    thread_id, _ = start_interrupted(acme)
    brief = json.dumps(BRIEF)
    bodies = {
        f"/threads/{thread_id}/runs/wait": (
            '{"assistant_id": "toy", "command": {"resume": {"action": "edit", '
            f'"changes": {{"budget": {literal}}}}}}}}}'
        ),
        "/runs/wait": (
            f'{{"assistant_id": "toy", "input": {{"brief": {brief}, "brand_id": null}}, '
            f'"context": {{"confidence_threshold": {literal}}}}}'
        ),
        "/threads": f'{{"metadata": {{"score": {literal}}}}}',
        "/threads/search": f'{{"metadata": {{"score": {literal}}}}}',
        f"/threads/{thread_id}/history": f'{{"metadata": {{"step": {literal}}}}}',
    }
    with httpx.Client(base_url=url, headers={"x-api-key": ACME_KEY}, timeout=30) as http:
        for path, text in bodies.items():
            response = _post_raw(http, path, text)
            assert response.status_code == 422, (path, response.text)
            assert "non-finite" in response.json()["message"], response.text
    # Nothing was applied: the plan under review is the one it was.
    state = acme.threads.get_state(thread_id)
    assert state["values"]["plan"]["budget"] == 100.0 and state["interrupts"]


@pytest.mark.parametrize("brief", ["nan:budget", "inf:budget"])
def test_non_finite_state_values_never_reach_a_client_as_bare_nan(
    url: str, acme: Any, brief: str
) -> None:
    """A tool's bug that leaves NaN or infinity in the state: every answer is still strict
    JSON (the SDK parses it with orjson), the number sent as null."""
    thread_id = acme.threads.create()["thread_id"]
    out = acme.runs.wait(thread_id, "toy", input={"brief": brief, "brand_id": None})
    assert out["plan"]["budget"] is None and "__interrupt__" in out
    run_id = acme.runs.list(thread_id)[0]["run_id"]
    assert acme.runs.join(thread_id, run_id)["plan"]["budget"] is None
    assert acme.threads.get_state(thread_id)["values"]["plan"]["budget"] is None
    assert acme.threads.get(thread_id)["values"]["plan"]["budget"] is None
    assert acme.threads.get_history(thread_id)[0]["values"]["plan"]["budget"] is None
    assert acme.threads.search(values={"brief": brief})[0]["thread_id"] == thread_id
    # (Rejected: a budget that is not a number cannot be approved by the key that started it.)
    parts = list(
        acme.runs.stream(
            thread_id,
            "toy",
            command={"resume": {"action": "reject", "reason": "no budget"}},
            stream_mode=["values", "updates"],
        )
    )
    assert parts[-1].event == "values" and parts[-1].data["plan"]["budget"] is None
    raw = httpx.get(f"{url}/threads/{thread_id}/state", headers={"x-api-key": ACME_KEY})
    assert raw.status_code == 200
    assert not re.search(r"\b(NaN|Infinity)\b", raw.text)


# --- no existence oracle ----------------------------------------------------------------------


def _normal(response: httpx.Response, thread_id: str) -> tuple[int, Any]:
    """A response with the thread id and anything that differs between two fresh threads
    (timestamps, generated ids) taken out."""
    text = response.text.replace(thread_id, "THREAD")
    text = re.sub(r"\d{4}-\d\d-\d\dT[0-9:.+-]+(Z|\+00:00)?", "TIME", text)
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)
    try:
        body: Any = json.loads(text)
    except json.JSONDecodeError:
        body = text
    return response.status_code, body


def _routes(thread_id: str, run_id: str) -> dict[str, Callable[[httpx.Client], httpx.Response]]:
    t = f"/threads/{thread_id}"
    r = f"{t}/runs/{run_id}"
    checkpoint = {"checkpoint": {"checkpoint_id": str(uuid.uuid4())}}
    return {
        "get thread": lambda h: h.get(t),
        "patch thread": lambda h: h.patch(t, json={"metadata": {"x": 1}}),
        "delete thread": lambda h: h.delete(t),
        "state": lambda h: h.get(f"{t}/state"),
        "update state": lambda h: h.post(f"{t}/state", json={"values": {}}),
        "state at checkpoint": lambda h: h.post(f"{t}/state/checkpoint", json=checkpoint),
        "state by id": lambda h: h.get(f"{t}/state/{uuid.uuid4()}"),
        "history": lambda h: h.post(f"{t}/history", json={}),
        "list runs": lambda h: h.get(f"{t}/runs"),
        "get run": lambda h: h.get(r),
        "join run": lambda h: h.get(f"{r}/join"),
        "join stream": lambda h: h.get(f"{r}/stream"),
        "cancel run": lambda h: h.post(f"{r}/cancel"),
        "delete run": lambda h: h.delete(r),
        "resume (wait)": lambda h: h.post(f"{t}/runs/wait", json=APPROVE),
        "resume (background)": lambda h: h.post(f"{t}/runs", json=APPROVE),
        "resume (stream)": lambda h: h.post(f"{t}/runs/stream", json=APPROVE),
        "new input": lambda h: h.post(f"{t}/runs/wait", json=NEW),
        # The last two make the thread (the caller's own) when it is not the caller's.
        "resume, creating": lambda h: h.post(
            f"{t}/runs/wait", json={**APPROVE, "if_not_exists": "create"}
        ),
        "create thread": lambda h: h.post("/threads", json={"thread_id": thread_id}),
    }


def test_another_tenants_thread_id_answers_exactly_like_an_unknown_one(url: str, acme: Any) -> None:
    names = list(_routes("x", "y"))
    with httpx.Client(base_url=url, headers={"x-api-key": GLOBEX_KEY}, timeout=60) as globex:
        for name in names:
            # A fresh thread of acme's for each route: some routes make the thread they name.
            owned, _ = start_interrupted(acme)
            run_id = acme.runs.list(owned)[0]["run_id"]
            unknown = str(uuid.uuid4())
            theirs = _normal(_routes(owned, run_id)[name](globex), owned)
            # The same request for an id nobody has, with acme's run id where one is needed.
            fresh = _normal(_routes(unknown, run_id)[name](globex), unknown)
            assert theirs == fresh, name
            assert theirs[0] in (200, 404, 409), (name, theirs)
            # acme's thread did not move.
            assert acme.threads.get(owned)["status"] == "interrupted", name
    # The last thread: globex's thread of the same id is globex's own, acme's is untouched.
    globex_client = get_sync_client(url=url, api_key=GLOBEX_KEY)
    assert globex_client.threads.get(owned)["values"] == {}
    final = acme.runs.wait(owned, "toy", command={"resume": {"action": "approve"}})
    assert final["status"] == "approved"
    assert globex_client.threads.get(owned)["values"] == {}


def test_cli_json_output_is_strict(capsys: pytest.CaptureFixture[str]) -> None:
    """`--json` output of every command goes through `cli.common.emit`: a non-finite number
    from a tool is written as null, never as bare NaN or Infinity."""
    from cli.common import emit

    emit({"iroas": float("nan"), "spend": [float("inf"), 1.5], "ok": -float("inf")}, True)
    text = capsys.readouterr().out
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}")) == {
        "iroas": None,
        "spend": [None, 1.5],
        "ok": None,
    }


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--rate", "nan"], "0.01"),  # click's own range check
        (["--rate", "inf"], "--rate must be a finite number"),
        (["--policy", "missing-policy.json"], "cannot be read"),
    ],
)
def test_rmn_serve_refuses_bad_settings_before_serving(
    tmp_path: pytest.TempPathFactory, args: list[str], words: str
) -> None:
    """Click reads `inf` as a float and a lower bound lets it through; the server would then
    rate-limit with infinite tokens. Refused with exit 2 and one line, nothing served."""
    from typer.testing import CliRunner

    from cli.main import app as rmn

    done = CliRunner().invoke(rmn, ["serve", "--state-dir", str(tmp_path), *args])
    assert done.exit_code == 2, done.output
    assert words in done.output
