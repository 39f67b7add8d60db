"""The LangGraph-server auth hook (graph/platform_auth.py) without a server: keys map to the
callers `rmn serve` would admit, roles decide runs, and the key's run context replaces the
client's in the graph (`served_context`). tests/integration/test_aegra.py runs it in Aegra."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langgraph_sdk import Auth

from graph import platform_auth
from graph.context import AUTH_USER_KEY, Context, served_context
from graph.serving.auth import KeyRing, authenticate
from graph.serving.errors import UnauthorizedError
from graph.serving.policy import TenantPolicies

PLANNER, APPROVER = "rmn_unit_planner_key_01", "rmn_unit_approver_key_2"


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> platform_auth.PlatformSettings:
    settings = platform_auth.PlatformSettings(
        keys=KeyRing.from_keys({PLANNER: "acme:planner", APPROVER: "acme:approver"}),
        policies=TenantPolicies(),
        model="none",
    )
    monkeypatch.setattr(platform_auth, "platform_settings", lambda: settings)
    return settings


def _admit(headers: dict[Any, Any]) -> dict[str, Any]:
    return asyncio.run(platform_auth.authenticate_request(headers))


def _ctx(user: dict[str, Any], resource: str, action: str) -> Auth.types.AuthContext:
    return Auth.types.AuthContext(
        user=user,
        permissions=[],
        resource=resource,
        action=action,  # type: ignore[arg-type]
    )


def test_the_shared_rule_is_rmn_serves() -> None:
    ring = KeyRing.from_keys({PLANNER: "acme:planner"})
    assert authenticate(ring, PLANNER, open_tenant="x").role == "planner"
    assert authenticate(KeyRing(), None, open_tenant="local").tenant == "local"
    for key in (None, "rmn_unknown_key_000000"):
        with pytest.raises(UnauthorizedError):
            authenticate(ring, key, open_tenant="x")


def test_keys_from_str_or_bytes_headers(keyed: platform_auth.PlatformSettings) -> None:
    user = _admit({b"x-api-key": PLANNER.encode()})  # langgraph-api's headers
    assert user["identity"] == "acme" and user["role"] == "planner"
    assert user["rmn_context"] == {
        "tenant": "acme",
        "actor": user["key_id"],
        "auto_approve": False,
        "confidence_threshold": 0.8,
        "model": "none",
    }
    assert _admit({"X-Api-Key": APPROVER})["role"] == "approver"  # Aegra's
    for headers in ({}, {"x-api-key": "rmn_unknown_key_000000"}):
        with pytest.raises(Auth.exceptions.HTTPException) as err:
            _admit(headers)
        assert err.value.status_code == 401


def test_roles_decide_runs(keyed: platform_auth.PlatformSettings) -> None:
    planner, approver = _admit({"x-api-key": PLANNER}), _admit({"x-api-key": APPROVER})
    approve = {"command": {"resume": {"action": "approve"}, "update": None, "goto": None}}

    def run(user: dict[str, Any], value: dict[str, Any]) -> Any:
        return asyncio.run(platform_auth.on_run(_ctx(user, "threads", "create_run"), value))

    assert run(planner, {"command": None}) == {"tenant": "acme"}
    assert run(approver, {"kwargs": approve}) == {"tenant": "acme"}  # langgraph-api's shape
    refused = [
        (planner, approve),  # a planner may not approve
        (approver, {"command": None}),  # an approver may not start
        (planner, {"command": {"update": {"status": "approved"}}}),  # no state writes
    ]
    for user, value in refused:
        with pytest.raises(Auth.exceptions.HTTPException) as err:
            run(user, value)
        assert err.value.status_code == 403


def test_without_keys_the_hook_leaves_everything_open(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = platform_auth.PlatformSettings(keys=KeyRing(), policies=TenantPolicies())
    monkeypatch.setattr(platform_auth, "platform_settings", lambda: settings)
    user = _admit({})
    assert user["identity"] == "acme" and "rmn_context" not in user
    value: dict[str, Any] = {"metadata": None}
    ctx = _ctx(user, "threads", "create")
    assert asyncio.run(platform_auth.on_thread_create(ctx, value)) is None
    assert value["metadata"] is None


def test_the_keys_context_replaces_the_clients(keyed: platform_auth.PlatformSettings) -> None:
    user = _admit({"x-api-key": PLANNER})
    client = Context(tenant="globex", model="smollm2", auto_approve=True)
    served = served_context(client, {AUTH_USER_KEY: user})
    assert (served.tenant, served.model, served.auto_approve) == ("acme", "none", False)
    assert served.actor == user["key_id"]
    assert served_context(client, {}) is client  # our own server, the CLI, open langgraph dev
