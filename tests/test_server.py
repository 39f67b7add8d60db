"""The HTTP graph API, served for real (uvicorn on a loopback port) and driven with the official
`langgraph-sdk` clients and `RemoteGraph`: brief -> interrupt -> approve / edit / reject, streams,
cancel and join, tenants kept apart on every path, request validation, rate limits, the bounded
run pool, and threads that survive a restart. Most tests serve a small graph of the same shape
as the planning graph; the last ones serve the planning graph itself on the tiny model."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.pregel.remote import RemoteGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    RateLimitError,
)
from typing_extensions import TypedDict

from server import (
    ResumeDecision,
    ServerSettings,
    create_app,
    serve_in_thread,
    validate_brief_input,
)
from tools.brief import BriefError
from tools.errors import AccessDeniedError, UnknownBrandError, UnknownRetailerError
from tools.policy.ownership import check_brand_access, tenant_brands
from tools.tenants import (
    KeyConfigError,
    KeyRing,
    RateLimiter,
    add_key,
    hash_key,
    read_keys_file,
)

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


def plan_node(state: ToyState, runtime: Runtime[ToyContext]) -> dict[str, Any]:
    brief = state["brief"]
    with ACTIVE_LOCK:
        ACTIVE["now"] += 1
        ACTIVE["max"] = max(ACTIVE["max"], ACTIVE["now"])
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
    return {
        "tenant": runtime.context.tenant,
        "model": runtime.context.model,
        "plan": {
            "brief": brief,
            "budget": 100.0,
            "threshold": runtime.context.confidence_threshold,
        },
        "status": "awaiting_approval",
    }


def approval_node(state: ToyState) -> dict[str, Any]:
    answer = interrupt({"kind": "approval", "plan": state["plan"]})
    if answer["action"] == "edit":
        plan = {**state["plan"], **answer.get("changes", {})}
        return {"plan": plan, "decision": answer, "status": "edited"}
    status = "approved" if answer["action"] == "approve" else "rejected"
    return {"decision": answer, "status": status}


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


def toy_settings(state_dir: Path, **overrides: Any) -> ServerSettings:
    settings = ServerSettings(
        state_dir=state_dir,
        graph_id="toy",
        workers=2,
        client_context_fields=frozenset({"confidence_threshold"}),
        server_context={"model": "tiny"},
        resume_model=ResumeDecision,
    )
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


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


def start_interrupted(client: Any, brief: str = BRIEF) -> tuple[str, dict[str, Any]]:
    thread = client.threads.create()
    out = client.runs.wait(thread["thread_id"], "toy", input={"brief": brief, "brand_id": None})
    return thread["thread_id"], out


# --- tenants: keys, rate limits, brands -------------------------------------------------------


def test_keys_file_keeps_only_digests(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    key = add_key(path, "acme", label="ci")
    second = add_key(path, "globex", key="globex-key-0123456789abcdef")
    text = path.read_text()
    assert key not in text and second not in text
    assert hash_key(key) in text
    assert path.stat().st_mode & 0o777 == 0o600
    ring = KeyRing.load(path=path)
    assert ring.tenant_for(key) == "acme"
    assert ring.tenant_for(second) == "globex"
    assert ring.tenant_for("not-a-key-at-all-000") is None
    assert ring.tenants() == ["acme", "globex"]
    assert [e.tenant for e in read_keys_file(path).keys] == ["acme", "globex"]
    with pytest.raises(KeyConfigError, match="already"):
        add_key(path, "acme", key=key)
    # The env var and the file together; one key for two tenants is refused.
    both = KeyRing.load(env=f"{ACME_KEY}:acme", path=path)
    assert both.tenant_for(ACME_KEY) == "acme" and both.tenant_for(second) == "globex"
    with pytest.raises(KeyConfigError, match="two tenants"):
        KeyRing.load(env=f"{second}:acme", path=path)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("short:acme", "at least 16"),
        (f"{ACME_KEY}", "not 'key:tenant'"),
        (f"{ACME_KEY}:Not A Tenant", "not a valid id"),
    ],
)
def test_env_keys_are_checked(env: str, message: str) -> None:
    with pytest.raises(KeyConfigError, match=message):
        KeyRing.load(env=env)


def test_keys_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="does not exist"):
        KeyRing.load(path=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "keys": [{"tenant": "acme"}]}))
    with pytest.raises(KeyConfigError, match="invalid"):
        KeyRing.load(path=bad)


def test_keys_commands(tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from cli.serve import keys_app

    app = typer.Typer()
    app.add_typer(keys_app, name="keys")
    path = tmp_path / "keys.json"
    runner = CliRunner()
    made = runner.invoke(app, ["keys", "add", "acme", "--keys", str(path), "--json"])
    assert made.exit_code == 0, made.output
    key = json.loads(made.output)["key"]
    assert KeyRing.load(path=path).tenant_for(key) == "acme"
    listed = runner.invoke(app, ["keys", "list", "--keys", str(path), "--json"])
    assert [r["tenant"] for r in json.loads(listed.output)] == ["acme"]
    assert key not in listed.output
    bad = runner.invoke(app, ["keys", "add", "Not Valid", "--keys", str(path)])
    assert bad.exit_code == 2 and "not a valid id" in bad.output


def test_rate_limiter_refills_per_key() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(0.5)
    assert limiter.retry_after_header(wait) == "1"
    assert limiter.acquire("b") == 0.0  # other keys have their own bucket
    now[0] += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_brand_access_follows_brand_ownership() -> None:
    assert tenant_brands("acme") == ["acme"]
    assert tenant_brands("nobody") == []
    assert check_brand_access("acme", None, ["acme"]) == "acme"
    assert check_brand_access("acme", "acme", ["acme"]) == "acme"
    with pytest.raises(AccessDeniedError, match="does not belong"):
        check_brand_access("acme", "globex", ["acme"])
    with pytest.raises(UnknownBrandError):
        check_brand_access("acme", "umbrella", ["acme"])
    with pytest.raises(AccessDeniedError, match="several brands"):
        check_brand_access("holding", None, ["acme", "globex"])


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
    assert resumed[-1].data == {
        "approval": {"decision": {"action": "approve"}, "status": "approved"}
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
    brief = "gate:busy"
    thread_id = acme.threads.create()["thread_id"]
    first = acme.runs.create(thread_id, "toy", input={"brief": brief, "brand_id": None})
    assert STARTED.setdefault(brief, threading.Event()).wait(20)
    assert acme.threads.get(thread_id)["status"] == "busy"
    with pytest.raises(ConflictError, match="already has a run"):
        acme.runs.create(thread_id, "toy", input={"brief": BRIEF, "brand_id": None})
    queued = acme.runs.create(
        thread_id,
        "toy",
        command={"resume": {"action": "approve"}},
        multitask_strategy="enqueue",
    )
    GATES.setdefault(brief, threading.Event()).set()
    acme.runs.join(thread_id, first["run_id"])
    final = acme.runs.join(thread_id, queued["run_id"])
    assert final["status"] == "approved"


def test_runs_queue_on_a_bounded_pool(url: str, acme: Any) -> None:
    brief = "gate:pool"
    ACTIVE["max"] = 0

    def one() -> dict[str, Any]:
        client = get_sync_client(url=url, api_key=ACME_KEY)
        return client.runs.wait(None, "toy", input={"brief": brief, "brand_id": None})

    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(one())) for _ in range(6)]
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


def test_other_tenants_threads_and_runs_are_not_found(acme: Any, globex: Any, url: str) -> None:
    thread_id, out = start_interrupted(acme)
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
            thread_id, "toy", command={"resume": {"action": "approve"}}
        ),
        "resume (background)": lambda: globex.runs.create(
            thread_id, "toy", command={"resume": {"action": "approve"}}
        ),
        "resume (stream)": lambda: list(
            globex.runs.stream(thread_id, "toy", command={"resume": {"action": "approve"}})
        ),
        "resume, creating": lambda: globex.runs.wait(
            thread_id,
            "toy",
            command={"resume": {"action": "approve"}},
            if_not_exists="create",
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
    with pytest.raises(ConflictError):
        globex.threads.create(thread_id=thread_id)
    remote = RemoteGraph("toy", url=url, api_key=GLOBEX_KEY)
    with pytest.raises(NotFoundError):
        remote.get_state({"configurable": {"thread_id": thread_id}})
    # Nothing moved: the owner still finds its interrupt pending, and can answer it.
    assert acme.threads.get(thread_id)["status"] == "interrupted"
    assert acme.runs.wait(thread_id, "toy", command={"resume": {"action": "approve"}})[
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


def test_bad_requests_get_clear_json_errors(url: str, acme: Any) -> None:
    headers = {"x-api-key": ACME_KEY, "content-type": "application/json"}
    thread_id, _ = start_interrupted(acme)
    runs = f"{url}/threads/{thread_id}/runs/wait"

    def post(path: str, body: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.post(path, content=content, headers=headers)

    cases = [
        (post(runs, b"{not json"), 400, "not valid JSON"),
        (post(runs, {"input": {"brief": "x"}}), 422, "assistant_id"),
        (
            post(runs, {"assistant_id": "toy", "command": {"resume": {"action": "maybe"}}}),
            422,
            "action",
        ),
        (post(runs, {"assistant_id": "toy", "command": {"resume": "yes"}}), 422, "resume"),
        (
            post(
                runs, {"assistant_id": "toy", "command": {"resume": {"action": "approve", "x": 1}}}
            ),
            422,
            "Extra inputs",
        ),
        (
            post(runs, {"assistant_id": "toy", "command": {"update": {"plan": {}}, "resume": {}}}),
            422,
            "command.update",
        ),
        (post(runs, {"assistant_id": "toy"}), 422, "needs input"),
        (
            post(runs, {"assistant_id": "toy", "input": {"brief": BRIEF, "brand_id": None}}),
            409,
            "waiting for an answer",
        ),
        (post(runs, {"assistant_id": "nope", "input": {"brief": BRIEF}}), 404, "assistant"),
        (
            post(
                f"{url}/threads/{uuid.uuid4()}/runs/wait",
                {"assistant_id": "toy", "input": {"brief": BRIEF, "brand_id": None}},
            ),
            404,
            "not found",
        ),
        (post(f"{url}/threads/not-a-uuid/runs/wait", {"assistant_id": "toy"}), 422, "UUID"),
        (post(runs, {"assistant_id": "toy", "input": {"brand_id": None}}), 422, "brief"),
        (
            post(
                runs,
                {
                    "assistant_id": "toy",
                    "input": {"brief": BRIEF, "brand_id": None},
                    "stream_mode": "debug",
                },
            ),
            422,
            "stream mode",
        ),
        (
            post(
                runs,
                {
                    "assistant_id": "toy",
                    "webhook": "http://example.com",
                    "input": {"brief": BRIEF, "brand_id": None},
                },
            ),
            422,
            "webhook",
        ),
        (
            post(f"{url}/threads/{thread_id}/state", {"values": {"status": "approved"}}),
            403,
            "only through",
        ),
        (post(runs, b"x" * (64 * 1024 + 1)), 413, "larger than"),
        (httpx.get(f"{url}/no/such/path", headers=headers), 404, "Not Found"),
    ]
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


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    settings = toy_settings(tmp_path, rate_per_s=0.5, rate_burst=3)
    with serve_in_thread(create_app(toy_graph, KeyRing.from_keys(KEYS), settings)) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY)
        for _ in range(3):
            client.threads.search()
        with pytest.raises(RateLimitError) as caught:
            client.threads.search()
        assert int(caught.value.response.headers["Retry-After"]) >= 1
        assert caught.value.body["type"] == "rate_limited"
        # Each key has its own allowance.
        get_sync_client(url=base, api_key=GLOBEX_KEY).threads.search()


def test_without_keys_only_loopback_as_one_tenant(tmp_path: Path) -> None:
    settings = toy_settings(tmp_path, open_tenant="acme")
    app = create_app(toy_graph, None, settings)
    with serve_in_thread(app) as base:
        client = get_sync_client(url=base, api_key=None)
        _, out = start_interrupted(client)
        assert out["tenant"] == "acme"
    from fastapi.testclient import TestClient

    with TestClient(app, client=("203.0.113.9", 5000)) as remote:
        refused = remote.post("/threads", json={})
    assert refused.status_code == 403 and "loopback" in refused.json()["message"]


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


def test_a_run_cut_short_by_a_stop_is_marked_on_restart(tmp_path: Path) -> None:
    brief = "gate:restart"
    keys = KeyRing.from_keys(KEYS)
    with serve_in_thread(create_app(toy_graph, keys, toy_settings(tmp_path))) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY)
        thread_id = client.threads.create()["thread_id"]
        run = client.runs.create(thread_id, "toy", input={"brief": brief, "brand_id": None})
        assert STARTED.setdefault(brief, threading.Event()).wait(20)
        # The stop waits for the running step; let it finish shortly after the stop began.
        threading.Timer(0.3, GATES.setdefault(brief, threading.Event()).set).start()
    with serve_in_thread(create_app(toy_graph, keys, toy_settings(tmp_path))) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY)
        status = client.runs.get(thread_id, run["run_id"])["status"]
        assert status in ("interrupted", "error")
        assert client.threads.get(thread_id)["status"] in ("idle", "interrupted")


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


def test_wait_sends_heartbeats_while_a_run_is_long(
    acme: Any, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import server

    monkeypatch.setattr(server, "WAIT_HEARTBEAT_S", 0.05)
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
    from cli.server_bench import BenchConfigError, drive, percentile, run_server_bench

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


# --- the planning graph itself ----------------------------------------------------------------


@pytest.fixture(scope="module")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded market; built once per session (test_studio reuses the same folder)."""
    from tools.pipeline import WorldSpec, ensure_world

    path = tmp_path_factory.getbasetemp() / "small-world"
    ensure_world(path, WorldSpec(days=60, events=50_000))
    return path


@pytest.mark.slow
def test_planning_graph_over_http(tmp_path: Path, small_world: Path) -> None:
    from server import create_rmn_app, rmn_settings

    settings = rmn_settings(
        tmp_path / "server", server_context={"model": "tiny", "data_dir": str(small_world)}
    )
    with serve_in_thread(create_rmn_app(KeyRing.from_keys(KEYS), settings)) as base:
        client = get_sync_client(url=base, api_key=ACME_KEY, timeout=300)
        schemas = client.assistants.get_schemas("rmn")
        assert set(schemas["context_schema"]["properties"]) == {
            "confidence_threshold",
            "auto_approve",
        }
        thread_id = client.threads.create()["thread_id"]
        out = client.runs.wait(thread_id, "rmn", input={"brief": BRIEF, "brand_id": None})
        if out["__interrupt__"][0]["value"]["kind"] == "confirm_brief":
            out = client.runs.wait(thread_id, "rmn", command={"resume": {"action": "approve"}})
        [pending] = out["__interrupt__"]
        assert pending["value"]["kind"] == "approval" and pending["value"]["tenant"] == "acme"
        # The graph's own response schema checks answers before any run starts.
        assert pending["response_schema"]["required"] == ["action"]
        refused(
            422,
            lambda: client.runs.wait(thread_id, "rmn", command={"resume": {"action": "maybe"}}),
            "does not fit the interrupt",
        )
        refused(404, lambda: get_sync_client(url=base, api_key=GLOBEX_KEY).threads.get(thread_id))
        final = client.runs.wait(thread_id, "rmn", command={"resume": {"action": "approve"}})
        assert final["status"] == "approved" and "__interrupt__" not in final
        assert final["plan"]["tenant"] == "acme" and final["plan"]["allocation"]
