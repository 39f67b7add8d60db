"""The auth hook of a LangGraph server that serves this graph from langgraph.json: Aegra
(`aegra-api`, on PostgreSQL) and `langgraph dev` both load `auth` from here.

API keys map to tenants by the rule `rmn serve` uses (`graph.serving.auth.authenticate`, the
same `RMN_API_KEYS` syntax and keys file), and a key's role allows what it allows there
(`graph.serving.policy`):

- The admitted user's identity is the key's tenant: Aegra owns every thread and run by it, so
  another tenant's key gets 404. Threads also carry `tenant` in their metadata, and every
  thread and run handler returns it as a filter, which is how langgraph-api scopes them.
- The run context is the server's, never the client's: the user carries it (`rmn_context`:
  the key's tenant and id, the tenant's approval policy, the server's model) and the graph
  applies it to every run (`graph.context.served_context`), whichever endpoint started it.
- Roles: starting runs and threads takes `planner` or `admin`, a resume that approves takes
  `approver` or `admin`, deleting a thread takes `admin`; thread edits, assistants, crons, the
  store and commands other than `resume` are the server's (refused to every key). Aegra runs
  the run handler for POST /threads/{id}/runs only, so there roles hold on that endpoint
  alone (README, "Scaling out").

With no keys configured (a developer's `langgraph dev` or loopback Aegra) every request is the
open tenant as admin, nothing is filtered, and the run context is the client's (Studio's
context form), as before this hook existed. Such a server must listen on loopback only: unlike
`rmn serve`, the hook does not see the client's address (Aegra hands it the headers alone).

Settings come from the environment and are read at the first request, so a bad one refuses
every request rather than failing the import (Aegra serves everyone when this module cannot
be imported): `RMN_API_KEYS`, `RMN_KEYS_FILE` (`rmn keys add`), `RMN_POLICY_FILE` (tenant
policies), `RMN_OPEN_TENANT` (default `acme`), `RMN_MODEL` (smollm2, tiny or none; default
the graph's).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from langgraph_sdk import Auth

from graph.context import SERVED_CONTEXT_FIELD
from graph.serving.auth import ENV_VAR, KeyRing, authenticate
from graph.serving.errors import UnauthorizedError
from graph.serving.policy import (
    Action,
    Caller,
    Role,
    RoleDeniedError,
    TenantPolicies,
    check_role,
    load_policies,
)
from tools.errors import RMNError

KEYS_FILE_VAR = "RMN_KEYS_FILE"
POLICY_FILE_VAR = "RMN_POLICY_FILE"
OPEN_TENANT_VAR = "RMN_OPEN_TENANT"
MODEL_VAR = "RMN_MODEL"
TENANT_FIELD = "tenant"

__all__ = ["PlatformSettings", "api_key_of", "auth", "platform_settings", "user_of"]

auth = Auth()


@dataclass(frozen=True)
class PlatformSettings:
    """What the hook knows of the server: its keys, tenant policies, open tenant and model."""

    keys: KeyRing
    policies: TenantPolicies
    open_tenant: str = "acme"
    model: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PlatformSettings:
        keys_file = env.get(KEYS_FILE_VAR)
        policy_file = env.get(POLICY_FILE_VAR)
        return cls(
            keys=KeyRing.load(env=env.get(ENV_VAR), path=Path(keys_file) if keys_file else None),
            policies=load_policies(Path(policy_file)) if policy_file else TenantPolicies(),
            open_tenant=env.get(OPEN_TENANT_VAR) or "acme",
            model=env.get(MODEL_VAR) or None,
        )

    def run_context(self, caller: Caller) -> dict[str, Any]:
        """The whole run context a key's runs get (clients set none of it, as on `rmn
        serve`); data and reports come from the server's RMN_DATA_DIR."""
        policy = self.policies.for_tenant(caller.tenant)
        context: dict[str, Any] = {
            "tenant": caller.tenant,
            "actor": caller.key_id,
            "auto_approve": policy.auto_approve,
            "confidence_threshold": policy.auto_approve_confidence,
        }
        if self.model:
            context["model"] = self.model
        return context


@functools.lru_cache(maxsize=1)
def platform_settings() -> PlatformSettings:
    return PlatformSettings.from_env(os.environ)


def api_key_of(headers: Mapping[Any, Any]) -> str | None:
    """The `x-api-key` header, from str headers (Aegra) or bytes headers (langgraph-api)."""
    for name, value in headers.items():
        if _text(name).lower() == "x-api-key":
            return _text(value)
    return None


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def user_of(caller: Caller, settings: PlatformSettings) -> dict[str, Any]:
    """The user a LangGraph server keeps for a request: identity is the tenant (Aegra scopes
    by it); the role, key id and, with keys, the run context ride along."""
    user: dict[str, Any] = {
        "identity": caller.tenant,
        "display_name": caller.reviewer,
        "is_authenticated": True,
        "permissions": [f"role:{caller.role}"],
        "tenant": caller.tenant,
        "role": caller.role,
        "key_id": caller.key_id,
    }
    if caller.key_id is not None:
        user[SERVED_CONTEXT_FIELD] = settings.run_context(caller)
    return user


def _refuse(status: int, err: RMNError | str) -> Auth.exceptions.HTTPException:
    detail = f"{err.kind}: {err}" if isinstance(err, RMNError) else err
    return Auth.exceptions.HTTPException(status_code=status, detail=detail)


@auth.authenticate
async def authenticate_request(headers: Mapping[Any, Any]) -> dict[str, Any]:
    try:
        settings = platform_settings()
        caller = authenticate(settings.keys, api_key_of(headers), open_tenant=settings.open_tenant)
    except UnauthorizedError as err:
        raise _refuse(401, err) from None
    except RMNError as err:  # keys or policy misconfigured: refuse, never serve open
        raise _refuse(500, err) from None
    return user_of(caller, settings)


def _caller(ctx: Auth.types.AuthContext) -> Caller:
    """The caller our authenticate admitted; any other user (Studio's own login) is refused."""
    user = ctx.user
    fields = {k: _field(user, k) for k in ("tenant", "role", "key_id")}
    if not fields["tenant"] or fields["role"] not in get_args(Role):
        raise _refuse(403, "this user was not admitted with an RMN API key")
    return Caller(**fields)


def _field(user: Any, name: str) -> Any:
    if isinstance(user, Mapping):
        return user.get(name)
    return getattr(user, name, None)


def _allow(caller: Caller, action: Action) -> dict[str, str] | None:
    """The role check, then the tenant filter (None without keys: nothing to scope)."""
    try:
        check_role(caller, action)
    except RoleDeniedError as err:
        raise _refuse(403, err) from None
    return None if caller.key_id is None else {TENANT_FIELD: caller.tenant}


@auth.on.threads.create
async def on_thread_create(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> Any:
    caller = _caller(ctx)
    scope = _allow(caller, "start")
    if scope is not None:
        # Mutated in place: both servers store the metadata object they handed over.
        metadata = value.get("metadata")
        if metadata is None:
            metadata = value["metadata"] = {}
        metadata[TENANT_FIELD] = caller.tenant
    return scope


@auth.on.threads.read
@auth.on.threads.search
async def on_thread_read(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> Any:
    return _allow(_caller(ctx), "read")


@auth.on.threads.update
async def on_thread_update(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> Any:
    caller = _caller(ctx)
    if caller.key_id is not None:
        # langgraph-api routes state writes here too: one could mark a plan approved past its
        # question. `rmn serve` offers neither metadata nor state edits.
        raise _refuse(403, "threads are changed by runs only: answer the pending question")
    return None


@auth.on.threads.delete
async def on_thread_delete(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> Any:
    return _allow(_caller(ctx), "delete")


@auth.on.threads.create_run
async def on_run(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> Any:
    caller = _caller(ctx)
    # langgraph-api nests the run's fields under `kwargs`; Aegra hands them over at the top.
    command = (value.get("kwargs") or value).get("command")
    return _allow(caller, _run_action(caller, command))


def _run_action(caller: Caller, command: Any) -> Action:
    """What a run does, for the role check: start, answer a question, or approve a plan."""
    # Aegra's request model lists every command field, unset ones as None.
    sent = {k for k, v in (command or {}).items() if v is not None}
    if not sent:
        return "start"
    if caller.key_id is not None and sent - {"resume"}:
        # `update` or `goto` would write the thread's state past its questions.
        raise _refuse(403, "only command.resume may be sent: answer the pending question")
    if "resume" not in sent:
        return "start"
    from server import approves  # late: server.py loads the graph, this hook must import light

    return "approve" if approves(command["resume"]) else "answer"


@auth.on
async def on_anything_else(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> Any:
    # Aegra's run reads and deletes ("runs"), and whatever a later server version adds:
    # reading takes any role, anything else the role that starts runs.
    return _allow(_caller(ctx), "read" if ctx.action in ("read", "search") else "start")


@auth.on.assistants
@auth.on.crons
@auth.on.store
async def on_server_owned(ctx: Auth.types.AuthContext, value: dict[str, Any]) -> Any:
    """Assistants (which could carry a run context of their own), crons and the store belong
    to the server; a key may read assistants and nothing else here."""
    caller = _caller(ctx)
    if caller.key_id is None:
        return None
    if ctx.resource == "assistants" and ctx.action in ("read", "search"):
        return None  # the graph's own assistant, from langgraph.json, shared by all tenants
    raise _refuse(403, f"{ctx.resource} {ctx.action} is the server's, not a key's")
