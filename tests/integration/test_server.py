"""The HTTP graph API, served for real (uvicorn on a loopback port) and driven with the official
`langgraph-sdk` clients and `RemoteGraph`: brief -> interrupt -> approve / edit / reject, streams,
cancel and join, tenants kept apart on every path, request validation, the bounded run pool,
and threads that survive a restart. The tests serve a small graph of the same shape as the
planning graph (tests/serving_support.py); the cross-tenant checks serve the planning graph
too. Keys and rate limits: test_serving_auth.py; the planning graph's own checks:
test_server_rmn.py."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.pregel.remote import RemoteGraph
from langgraph.types import Command
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import AuthenticationError, ConflictError, NotFoundError
from serving_support import (
    ACME_KEY,
    ACTIVE,
    BRIEF,
    GATES,
    GLOBEX_KEY,
    KEYS,
    STARTED,
    STARTS,
    asked,
    build_small_world,
    refused,
    start_interrupted,
    toy_graph,
    toy_settings,
)

from cli.server_bench import BenchConfigError, drive, percentile, run_server_bench
from graph.serving.auth import KeyRing
from graph.serving.routes import runs as run_routes
from server import (
    TenantPolicies,
    TenantPolicy,
    create_app,
    create_rmn_app,
    rmn_settings,
    serve_in_thread,
)


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(toy_graph, KeyRing.from_keys(KEYS), toy_settings(tmp_path_factory.mktemp("s")))
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture()
def acme(url: str) -> Any:
    return get_sync_client(url=url, api_key=ACME_KEY)


@pytest.fixture()
def globex(url: str) -> Any:
    return get_sync_client(url=url, api_key=GLOBEX_KEY)


# --- the protocol, with the official clients --------------------------------------------------


def test_ok_docs_and_assistant(url: str, acme: Any) -> None:
    assert httpx.get(f"{url}/ok").json() == {"ok": True}
    assert httpx.get(f"{url}/docs").status_code == 200
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert "/threads/{thread_id}/runs/stream" in paths
    assert "/threads/{thread_id}/state/checkpoint" in paths
    [assistant] = acme.assistants.search()
    assert assistant["graph_id"] == "toy"
    assert acme.assistants.get(assistant["assistant_id"])["graph_id"] == "toy"
    schemas = acme.assistants.get_schemas("toy")
    assert set(schemas["input_schema"]["properties"]) == {"brief", "brand_id"}
    # Only what a client may set is offered: the tenant and server fields are not.
    assert set(schemas["context_schema"]["properties"]) == {"confidence_threshold"}
    graph = acme.assistants.get_graph("toy")
    assert {n["id"] for n in graph["nodes"]} >= {"plan", "approval"}


def test_brief_interrupt_approve(acme: Any) -> None:
    thread_id, out = start_interrupted(acme)
    [pending] = out["__interrupt__"]
    assert pending["value"]["kind"] == "approval" and set(pending) == {"value", "id"}
    # The tenant comes from the key, the model from the server.
    assert out["tenant"] == "acme" and out["model"] == "tiny"
    thread = acme.threads.get(thread_id)
    assert thread["status"] == "interrupted"
    assert [i["id"] for i in next(iter(thread["interrupts"].values()))] == [pending["id"]]
    state = acme.threads.get_state(thread_id)
    assert state["next"] == ["approval"] and state["interrupts"][0]["id"] == pending["id"]
    final = acme.runs.wait(thread_id, "toy", command={"resume": {"action": "approve"}})
    assert final["status"] == "approved" and "__interrupt__" not in final
    assert acme.threads.get(thread_id)["status"] == "idle"
    runs = acme.runs.list(thread_id)
    assert [r["status"] for r in runs] == ["success", "success"]
    history = acme.threads.get_history(thread_id, limit=20)
    assert history[0]["values"]["status"] == "approved"
    assert len(history) >= 4


def test_edit_then_reject(acme: Any) -> None:
    thread_id, _ = start_interrupted(acme)
    edited = acme.runs.wait(
        thread_id, "toy", command={"resume": {"action": "edit", "changes": {"budget": 5.0}}}
    )
    assert edited["plan"]["budget"] == 5.0
    assert edited["__interrupt__"][0]["value"]["plan"]["budget"] == 5.0
    final = acme.runs.wait(
        thread_id, "toy", command={"resume": {"action": "reject", "reason": "too small"}}
    )
    assert final["status"] == "rejected" and final["decision"]["reason"] == "too small"


def test_stream_values_and_updates(acme: Any) -> None:
    thread = acme.threads.create()
    parts = list(
        acme.runs.stream(
            thread["thread_id"],
            "toy",
            input={"brief": BRIEF, "brand_id": None},
            stream_mode=["values", "updates"],
        )
    )
    events = [p.event for p in parts]
    assert events[0] == "metadata" and "run_id" in parts[0].data
    assert "values" in events and "updates" in events
    updates = [p.data for p in parts if p.event == "updates"]
    assert updates[0]["plan"]["status"] == "awaiting_approval"
    [interrupt_event] = [u for u in updates if "__interrupt__" in u]
    assert set(interrupt_event["__interrupt__"][0]) == {"value", "id"}
    resumed = list(
        acme.runs.stream(
            thread["thread_id"],
            "toy",
            command={"resume": {"action": "approve"}},
            stream_mode="updates",
        )
    )
    # The decision says which key made it (its id, never the key).
    who = KeyRing.from_keys(KEYS).caller(ACME_KEY).key_id
    assert resumed[-1].data == {
        "approval": {"decision": {"action": "approve", "by": who}, "status": "approved"}
    }


def test_stream_values_only_still_shows_the_interrupt(acme: Any) -> None:
    thread = acme.threads.create()
    parts = list(
        acme.runs.stream(thread["thread_id"], "toy", input={"brief": BRIEF, "brand_id": None})
    )
    assert {p.event for p in parts} == {"metadata", "values"}
    assert "__interrupt__" in parts[-1].data


def test_async_client(url: str) -> None:
    async def scenario() -> dict[str, Any]:
        client = get_client(url=url, api_key=ACME_KEY)
        thread = await client.threads.create()
        first = await client.runs.wait(
            thread["thread_id"], "toy", input={"brief": BRIEF, "brand_id": None}
        )
        assert "__interrupt__" in first
        chunks = [
            part
            async for part in client.runs.stream(
                thread["thread_id"],
                "toy",
                command={"resume": {"action": "approve"}},
                stream_mode="values",
            )
        ]
        return chunks[-1].data

    assert asyncio.run(scenario())["status"] == "approved"


def test_remote_graph(url: str) -> None:
    remote = RemoteGraph("toy", url=url, api_key=ACME_KEY)
    config = {"configurable": {"thread_id": str(uuid.uuid4())}}
    first = remote.invoke({"brief": BRIEF, "brand_id": None}, config)
    assert first["__interrupt__"][0]["value"]["kind"] == "approval"
    snapshot = remote.get_state(config)  # POST /threads/{id}/state/checkpoint
    assert snapshot.next == ("approval",)
    assert snapshot.interrupts[0].value["kind"] == "approval"
    history = list(remote.get_state_history(config))
    assert (
        history[0].config["configurable"]["checkpoint_id"]
        == (snapshot.config["configurable"]["checkpoint_id"])
    )
    modes = list(
        remote.stream(
            Command(resume={"action": "edit", "changes": {"budget": 9.0}}),
            config,
            stream_mode="updates",
        )
    )
    assert any("__interrupt__" in m for m in modes)
    final = remote.invoke(Command(resume={"action": "approve"}), config)
    assert final["status"] == "approved" and final["plan"]["budget"] == 9.0
    assert remote.get_state(config).next == ()


def test_background_run_join_and_run_status(acme: Any) -> None:
    thread = acme.threads.create()
    run = acme.runs.create(
        thread["thread_id"], "toy", input={"brief": "slow:" + BRIEF, "brand_id": None}
    )
    assert run["status"] in ("pending", "running")
    joined = acme.runs.join(thread["thread_id"], run["run_id"])
    assert "__interrupt__" in joined
    assert acme.runs.get(thread["thread_id"], run["run_id"])["status"] == "success"
    # Joining a finished run answers the thread's values.
    again = acme.runs.join(thread["thread_id"], run["run_id"])
    assert again["__interrupt__"] == joined["__interrupt__"]


def test_cancel_stops_a_run_between_steps(acme: Any) -> None:
    brief = "gate:cancel"
    thread = acme.threads.create()
    run = acme.runs.create(thread["thread_id"], "toy", input={"brief": brief, "brand_id": None})
    assert STARTED.setdefault(brief, threading.Event()).wait(20)
    acme.runs.cancel(thread["thread_id"], run["run_id"])
    GATES.setdefault(brief, threading.Event()).set()
    acme.runs.join(thread["thread_id"], run["run_id"])
    assert acme.runs.get(thread["thread_id"], run["run_id"])["status"] == "interrupted"
    with pytest.raises(ConflictError, match="already finished"):
        acme.runs.cancel(thread["thread_id"], run["run_id"])


def test_one_run_per_thread_unless_enqueued(acme: Any) -> None:
    """While a run is on a thread, another is refused (409) unless it asks to wait its turn;
    an enqueued run starts only when the one ahead has ended, and is checked against the
    thread's state then (here the first left a question, so new input is refused). An answer
    cannot be enqueued while no question is pending (test_review_http.py)."""
    brief = "gate:busy"
    thread_id = acme.threads.create()["thread_id"]
    first = acme.runs.create(thread_id, "toy", input={"brief": brief, "brand_id": None})
    assert STARTED.setdefault(brief, threading.Event()).wait(20)
    assert acme.threads.get(thread_id)["status"] == "busy"
    with pytest.raises(ConflictError, match="already has a run"):
        acme.runs.create(thread_id, "toy", input={"brief": BRIEF, "brand_id": None})
    queued = acme.runs.create(
        thread_id, "toy", input={"brief": "slow:" + BRIEF, "brand_id": None},
        multitask_strategy="enqueue",
    )  # fmt: skip
    assert acme.runs.get(thread_id, queued["run_id"])["status"] == "pending"
    GATES.setdefault(brief, threading.Event()).set()
    assert "__interrupt__" in acme.runs.join(thread_id, first["run_id"])
    acme.runs.join(thread_id, queued["run_id"])  # (a run already ended joins as the thread)
    refused_at_start = acme.runs.get(thread_id, queued["run_id"])
    assert refused_at_start["status"] == "error"
    assert "waiting for an answer" in refused_at_start["error"]
    # The question the first run left is still there to answer.
    final = acme.runs.wait(thread_id, "toy", command={"resume": {"action": "approve"}})
    assert final["status"] == "approved" and final["plan"]["brief"] == brief


def test_runs_queue_on_a_bounded_pool(url: str, acme: Any) -> None:
    """Two workers, six runs of two tenants (a tenant runs one at a time with two workers):
    two run, four wait, and all end."""
    brief = "gate:pool"
    ACTIVE["max"] = 0

    def one(key: str) -> dict[str, Any]:
        client = get_sync_client(url=url, api_key=key)
        return client.runs.wait(None, "toy", input={"brief": brief, "brand_id": None})

    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda k=key: results.append(one(k)))
        for key in [ACME_KEY, GLOBEX_KEY] * 3
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while ACTIVE["now"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # room for a third run to start, were the pool not bounded
    assert ACTIVE["now"] == 2  # workers=2: two run, four wait
    GATES.setdefault(brief, threading.Event()).set()
    for t in threads:
        t.join(60)
    assert len(results) == 6 and all("__interrupt__" in r for r in results)
    assert ACTIVE["max"] == 2


def test_graph_errors_reach_the_client_without_internals(acme: Any) -> None:
    thread_id = acme.threads.create()["thread_id"]
    parts = list(acme.runs.stream(thread_id, "toy", input={"brief": "explode", "brand_id": None}))
    error = parts[-1]
    assert error.event == "error" and error.data["error"] == "RuntimeError"
    assert "/srv/private" not in json.dumps(error.data) and "Traceback" not in json.dumps(
        error.data
    )
    assert acme.threads.get(thread_id)["status"] == "error"
    with pytest.raises(Exception, match="RuntimeError"):
        acme.runs.wait(thread_id, "toy", input={"brief": "explode", "brand_id": None})


# --- tenants over HTTP ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_small_world(tmp_path_factory)


@pytest.fixture(scope="module", params=["toy", pytest.param("rmn", marks=pytest.mark.slow)])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """(base URL, graph id): the small graph (this module's server), or the planning graph
    itself, on a small market with no model (`none` needs no LLM)."""
    if request.param == "toy":
        yield request.getfixturevalue("url"), "toy"
        return
    context = {"model": "none", "data_dir": str(request.getfixturevalue("small_world"))}
    # The acme key both starts and approves: separation of duties (test_server_policy.py) is
    # not what these tests are about.
    no_separation = TenantPolicies(default=TenantPolicy(separation_of_duties=False))
    settings = rmn_settings(
        tmp_path_factory.mktemp("rmn"), server_context=context, policies=no_separation
    )
    with serve_in_thread(create_rmn_app(KeyRing.from_keys(KEYS), settings)) as base:
        yield base, "rmn"


def test_other_tenants_threads_and_runs_are_not_found(served: tuple[str, str]) -> None:
    url, graph_id = served
    acme = get_sync_client(url=url, api_key=ACME_KEY, timeout=300)
    globex = get_sync_client(url=url, api_key=GLOBEX_KEY, timeout=300)
    thread_id, out = start_interrupted(acme, graph_id=graph_id)
    if asked(out)["kind"] == "confirm_brief":  # the brief as read is right
        out = acme.runs.wait(thread_id, graph_id, command={"resume": {"action": "approve"}})
    assert asked(out)["kind"] == "approval"
    run_id = acme.runs.list(thread_id)[0]["run_id"]
    checkpoint = acme.threads.get_state(thread_id)["checkpoint"]
    attempts = {
        "get thread": lambda: globex.threads.get(thread_id),
        "patch thread": lambda: globex.threads.update(thread_id, metadata={"x": 1}),
        "delete thread": lambda: globex.threads.delete(thread_id),
        "state": lambda: globex.threads.get_state(thread_id),
        "state at checkpoint": lambda: globex.threads.get_state(thread_id, checkpoint=checkpoint),
        "state by id": lambda: globex.threads.get_state(
            thread_id, checkpoint_id=checkpoint["checkpoint_id"]
        ),
        "history": lambda: globex.threads.get_history(thread_id),
        "list runs": lambda: globex.runs.list(thread_id),
        "get run": lambda: globex.runs.get(thread_id, run_id),
        "join run": lambda: globex.runs.join(thread_id, run_id),
        "cancel run": lambda: globex.runs.cancel(thread_id, run_id),
        "delete run": lambda: globex.runs.delete(thread_id, run_id),
        "resume (wait)": lambda: globex.runs.wait(
            thread_id, graph_id, command={"resume": {"action": "approve"}}
        ),
        "resume (background)": lambda: globex.runs.create(
            thread_id, graph_id, command={"resume": {"action": "approve"}}
        ),
        "resume (stream)": lambda: list(
            globex.runs.stream(thread_id, graph_id, command={"resume": {"action": "approve"}})
        ),
        "join stream": lambda: list(globex.runs.join_stream(thread_id, run_id)),
    }
    for name, attempt in attempts.items():
        # Some client calls raise the typed NotFoundError, the reconnecting ones plain httpx.
        with pytest.raises(httpx.HTTPStatusError) as caught:
            attempt()
        assert caught.value.response.status_code == 404, name
        assert caught.value.response.json()["type"] == "not_found", name
    assert thread_id not in {t["thread_id"] for t in globex.threads.search(limit=1000)}
    assert globex.threads.count() == len(globex.threads.search(limit=1000))
    remote = RemoteGraph(graph_id, url=url, api_key=GLOBEX_KEY)
    with pytest.raises(NotFoundError):
        remote.get_state({"configurable": {"thread_id": thread_id}})
    # Thread ids are the tenant's own: answering with `if_not_exists: create` or creating a
    # thread of acme's id makes globex's own thread, as for an id nobody has
    # (test_server_hostile.py compares every answer with an unknown id's).
    refused(
        409,
        lambda: globex.runs.wait(
            thread_id, graph_id, command={"resume": {"action": "approve"}}, if_not_exists="create"
        ),
        "no pending interrupt",
    )
    assert globex.threads.get(thread_id)["values"] == {}
    # Nothing moved: the owner still finds its interrupt pending, and can answer it.
    assert acme.threads.get(thread_id)["status"] == "interrupted"
    assert acme.runs.wait(thread_id, graph_id, command={"resume": {"action": "approve"}})[
        "status"
    ] == ("approved")


def test_context_tenant_cannot_be_chosen(acme: Any) -> None:
    thread_id = acme.threads.create()["thread_id"]
    for context in ({"tenant": "globex"}, {"model": "smollm2"}):
        refused(
            422,
            lambda c=context: acme.runs.wait(
                thread_id, "toy", input={"brief": BRIEF, "brand_id": None}, context=c
            ),
            "cannot be set by clients",
        )
    out = acme.runs.wait(
        thread_id,
        "toy",
        input={"brief": BRIEF, "brand_id": None},
        context={"confidence_threshold": 0.5},
        config={"configurable": {"thread_id": str(uuid.uuid4()), "tenant": "globex"}},
    )
    assert out["tenant"] == "acme" and out["plan"]["threshold"] == 0.5
    assert acme.threads.get_state(thread_id)["values"]["tenant"] == "acme"


def test_keys_are_required(url: str) -> None:
    with pytest.raises(AuthenticationError, match="missing"):
        get_sync_client(url=url, api_key=None).threads.create()
    with pytest.raises(AuthenticationError, match="unknown API key"):
        get_sync_client(url=url, api_key="wrong-key-0123456789").threads.create()
    assert httpx.get(f"{url}/ok").status_code == 200  # health needs no key


# --- validation -------------------------------------------------------------------------------


def _content(body: Any) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def bad_requests(url: str, thread_id: str) -> list[tuple[str, Any, int, str]]:
    """(URL, JSON body or raw bytes, status, words of the message): requests the server must
    refuse, all on a thread waiting at its interrupt."""
    runs = f"{url}/threads/{thread_id}/runs/wait"
    toy = {"assistant_id": "toy"}
    new = {**toy, "input": {"brief": BRIEF, "brand_id": None}}
    return [
        (runs, b"{not json", 400, "not valid JSON"),
        (runs, {"input": {"brief": "x"}}, 422, "assistant_id"),
        (runs, {**toy, "command": {"resume": {"action": "maybe"}}}, 422, "action"),
        (runs, {**toy, "command": {"resume": "yes"}}, 422, "resume"),
        (runs, {**toy, "command": {"resume": {"action": "approve", "x": 1}}}, 422, "Extra inputs"),
        (runs, {**toy, "command": {"update": {"plan": {}}, "resume": {}}}, 422, "command.update"),
        (runs, toy, 422, "needs input"),
        (runs, new, 409, "waiting for an answer"),
        (runs, {"assistant_id": "nope", "input": {"brief": BRIEF}}, 404, "assistant"),
        (f"{url}/threads/{uuid.uuid4()}/runs/wait", new, 404, "not found"),
        (f"{url}/threads/not-a-uuid/runs/wait", toy, 422, "UUID"),
        (runs, {**toy, "input": {"brand_id": None}}, 422, "brief"),
        (runs, {**new, "stream_mode": "debug"}, 422, "stream mode"),
        (runs, {**new, "webhook": "http://example.com"}, 422, "webhook"),
        (
            f"{url}/threads/{thread_id}/state",
            {"values": {"status": "approved"}},
            403,
            "only through",
        ),
        (runs, b"x" * (64 * 1024 + 1), 413, "larger than"),
    ]


def test_bad_requests_get_clear_json_errors(url: str, acme: Any) -> None:
    headers = {"x-api-key": ACME_KEY, "content-type": "application/json"}
    thread_id, _ = start_interrupted(acme)
    runs = f"{url}/threads/{thread_id}/runs/wait"
    cases = [
        (httpx.post(path, content=_content(body), headers=headers), status, text)
        for path, body, status, text in bad_requests(url, thread_id)
    ]
    cases.append((httpx.get(f"{url}/no/such/path", headers=headers), 404, "Not Found"))
    for response, status, text in cases:
        body = response.json()
        assert response.status_code == status, (status, body)
        assert set(body) >= {"type", "message"}, body
        assert text in body["message"], body
        assert "Traceback" not in response.text
    # A chunked body of unknown length is cut off too.
    chunked = httpx.post(
        runs, content=iter([b"{" + b" " * 40_000, b" " * 40_000 + b"}"]), headers=headers
    )
    assert chunked.status_code == 413
    # Nothing above touched the thread.
    assert acme.threads.get(thread_id)["status"] == "interrupted"
    fresh = acme.threads.create()["thread_id"]
    refused(
        409,
        lambda: acme.runs.wait(fresh, "toy", command={"resume": {"action": "approve"}}),
        "no pending interrupt",
    )


def test_restart_keeps_threads_and_pending_interrupts(tmp_path: Path) -> None:
    keys = KeyRing.from_keys(KEYS)
    with serve_in_thread(create_app(toy_graph, keys, toy_settings(tmp_path))) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY)
        thread_id, out = start_interrupted(client)
        pending = out["__interrupt__"][0]["id"]
    with serve_in_thread(create_app(toy_graph, keys, toy_settings(tmp_path))) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY)
        thread = client.threads.get(thread_id)
        assert thread["status"] == "interrupted"
        assert next(iter(thread["interrupts"].values()))[0]["id"] == pending
        with pytest.raises(NotFoundError):
            get_sync_client(url=base, api_key=GLOBEX_KEY).threads.get(thread_id)
        final = client.runs.wait(thread_id, "toy", command={"resume": {"action": "approve"}})
        assert final["status"] == "approved"
        assert [r["status"] for r in client.runs.list(thread_id)] == ["success", "success"]


def test_runs_cut_short_by_a_stop_go_on_after_the_restart(tmp_path: Path) -> None:
    """A stop lets the running step finish and leaves its run to the next start, which
    continues it from the thread's last checkpoint (its plan step is not run again); a run
    still queued at the stop starts on the next start as it was asked. A SIGKILLed server:
    test_server_recovery.py."""
    brief = "gate:restart"
    keys = KeyRing.from_keys(KEYS)
    app = create_app(toy_graph, keys, toy_settings(tmp_path, workers=1))
    with serve_in_thread(app) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY)
        thread_id = client.threads.create()["thread_id"]
        run = client.runs.create(thread_id, "toy", input={"brief": brief, "brand_id": None})
        assert STARTED.setdefault(brief, threading.Event()).wait(20)
        # The one worker is busy: this run waits in the pool's queue.
        queued_thread = client.threads.create()["thread_id"]
        queued = client.runs.create(queued_thread, "toy", input={"brief": BRIEF, "brand_id": None})
        live = app.state.server.active(run["run_id"])
        assert live is not None

        def open_the_gate_once_the_stop_began() -> None:
            if live.cancel.wait(20):  # the stop cancels every run before it waits for them
                GATES.setdefault(brief, threading.Event()).set()

        threading.Thread(target=open_the_gate_once_the_stop_began, daemon=True).start()
    STARTS.clear()
    with serve_in_thread(create_app(toy_graph, keys, toy_settings(tmp_path))) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY)
        went_on = client.runs.join(thread_id, run["run_id"])
        assert went_on["plan"]["brief"] == brief and "__interrupt__" in went_on
        assert client.runs.get(thread_id, run["run_id"])["status"] == "success"
        assert client.threads.get(thread_id)["status"] == "interrupted"
        started = client.runs.join(queued_thread, queued["run_id"])
        assert "__interrupt__" in started
        assert client.runs.get(queued_thread, queued["run_id"])["status"] == "success"
    # Only the queued run's plan step ran after the restart: the stopped run's was kept.
    assert list(STARTS) == [BRIEF]


def test_wait_sends_heartbeats_while_a_run_is_long(
    acme: Any, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_routes, "WAIT_HEARTBEAT_S", 0.05)
    brief = "gate:heartbeat"
    thread_id = acme.threads.create()["thread_id"]
    threading.Timer(0.5, GATES.setdefault(brief, threading.Event()).set).start()
    response = httpx.post(
        f"{url}/threads/{thread_id}/runs/wait",
        json={"assistant_id": "toy", "input": {"brief": brief, "brand_id": None}},
        headers={"x-api-key": ACME_KEY},
        timeout=30,
    )
    assert response.text.startswith("\n")  # heartbeats came before the result
    assert "__interrupt__" in json.loads(response.text)


def test_bench_counts_plans_latencies_and_errors(url: str) -> None:
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)
    with pytest.raises(BenchConfigError, match="clients"):
        run_server_bench(clients=0)
    # acme's plans reach the approval and end approved; globex's brief breaks the graph.
    result = drive(
        url,
        KEYS,
        {"acme": "slow:bench", "globex": "explode"},
        clients=3,
        runs=6,
        timeout_s=60,
        assistant="toy",
    )
    assert (result["completed"], result["errors"], result["lost"]) == (3, 3, 0)
    assert result["latency_to_approval_s"]["n"] == 3
    assert 0.15 <= result["latency_to_approval_s"]["p50"] <= result["latency_to_final_s"]["p95"]
    assert all(e.startswith("globex: ") for e in result["error_samples"])
