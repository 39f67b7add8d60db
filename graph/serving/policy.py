"""Who may do what on the HTTP graph API: the roles of a tenant's keys, and each tenant's
policy, which the server's config sets (never a client's run context).

Roles. Every key has one; a key made before roles existed is an `admin`, as it could do
everything then.

| action                                           | planner | approver | admin |
|--------------------------------------------------|---------|----------|-------|
| read threads, state, history, runs               | yes     | yes      | yes   |
| create threads, start runs, cancel runs           | yes     | -        | yes   |
| answer a question that is not an approval         | yes     | yes      | yes   |
| answer an approval question                       | -       | yes      | yes   |
| delete threads (erases their records)             | -       | -        | yes   |

Separation of duties. When a tenant's policy asks for it (on by default) and the plan under
approval is above `separation_above_usd`, the key that started the plan cannot approve it: a
second key of the tenant with an approving role must. The starter may still edit or reject.
Without keys (loopback-only serving) there are no keys to tell apart, so no separation.

Auto-approval (`auto_approve`, `auto_approve_confidence`) is part of the same policy: the
product turns it into run context (`ServerSettings.tenant_context`); clients cannot set it.

    policies = load_policies(Path("tenants.json"))
    # {"default": {"separation_above_usd": 100000},
    #  "tenants": {"acme": {"auto_approve": true, "auto_approve_confidence": 0.9}}}
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from graph.serving.errors import ApiError
from graph.serving.schemas import problems
from tools.errors import RMNError

Role = Literal["planner", "approver", "admin"]
Action = Literal["read", "start", "answer", "approve", "delete"]
# Roles allowed each action (the table above).
ALLOWED: dict[str, frozenset[str]] = {
    "read": frozenset({"planner", "approver", "admin"}),
    "start": frozenset({"planner", "admin"}),
    "answer": frozenset({"planner", "approver", "admin"}),
    "approve": frozenset({"approver", "admin"}),
    "delete": frozenset({"admin"}),
}
TENANT_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
DEFAULT_SEPARATION_ABOVE_USD = 100_000.0

__all__ = [
    "ALLOWED",
    "DEFAULT_SEPARATION_ABOVE_USD",
    "Action",
    "Caller",
    "PolicyFileError",
    "Role",
    "RoleDeniedError",
    "SeparationOfDutiesError",
    "TenantPolicies",
    "TenantPolicy",
    "check_answer",
    "check_role",
    "load_policies",
]


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the key's tenant, its role and its id (None without keys)."""

    tenant: str
    role: Role
    key_id: str | None
    label: str | None = None  # the name the key was given (`rmn keys add --label`)

    @property
    def reviewer(self) -> str:
        """Who this is in a reviewer's record: the key's label and id, the id alone, or the
        open tenant of a server without keys."""
        if self.key_id is None:
            return "no key (loopback server)"
        return f"{self.label} ({self.key_id})" if self.label else self.key_id


class RoleDeniedError(ApiError):
    kind = "role_denied"
    status = 403


class SeparationOfDutiesError(ApiError):
    kind = "separation_of_duties"
    status = 403


class PolicyFileError(RMNError):
    """A tenant policy file that cannot be used (missing, not JSON, unknown or bad fields)."""

    kind = "policy_config"


class TenantPolicy(BaseModel):
    """One tenant's rules for approvals."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    separation_of_duties: bool = Field(
        True, description="the key that started a plan may not approve it alone"
    )
    separation_above_usd: float = Field(
        DEFAULT_SEPARATION_ABOVE_USD,
        ge=0,
        description="separation applies to plans whose budget is above this (USD)",
    )
    auto_approve: bool = Field(
        False, description="approve without a human when confidence is high and nothing flagged"
    )
    auto_approve_confidence: float = Field(
        0.8, ge=0, le=1, description="confidence at or above which auto-approval may apply"
    )


class TenantPolicies(BaseModel):
    """Every tenant's policy: `default`, and the tenants that differ."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    default: TenantPolicy = Field(default_factory=TenantPolicy)
    tenants: dict[str, TenantPolicy] = Field(default_factory=dict)

    @field_validator("tenants")
    @classmethod
    def _tenant_ids(cls, value: dict[str, TenantPolicy]) -> dict[str, TenantPolicy]:
        bad = [t for t in value if not re.match(TENANT_ID, t)]
        if bad:
            raise ValueError(f"tenant id(s) {bad} are not valid ids")
        return value

    def for_tenant(self, tenant: str) -> TenantPolicy:
        return self.tenants.get(tenant, self.default)


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def load_policies(path: Path) -> TenantPolicies:
    """A tenant policy file (JSON), checked: unknown fields, numbers out of range and
    non-finite numbers are refused with the field named."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyFileError(f"policy file {path} cannot be read: {err}") from None
    try:
        raw = json.loads(text, parse_constant=_no_constants)
    except ValueError as err:
        raise PolicyFileError(f"policy file {path} is not valid JSON: {err}") from None
    try:
        return TenantPolicies.model_validate(raw)
    except ValidationError as err:
        raise PolicyFileError(f"policy file {path} is invalid: {problems(err.errors())}") from None


def check_role(caller: Caller, action: Action) -> None:
    """403 unless the caller's role may take `action`."""
    if caller.role not in ALLOWED[action]:
        allowed = ", ".join(sorted(ALLOWED[action]))
        raise RoleDeniedError(
            f"a key with role {caller.role} may not {_VERBS[action]}; roles allowed: {allowed}",
            role=caller.role,
            action=action,
        )


_VERBS = {
    "read": "read threads",
    "start": "start runs or create threads",
    "answer": "answer questions",
    "approve": "answer an approval question",
    "delete": "delete threads",
}


def check_answer(
    caller: Caller,
    policy: TenantPolicy,
    *,
    amount: float | None,
    approves: bool,
    started_by: str | None,
) -> None:
    """Whether `caller` may send this answer. `amount`: the budget of the plan the pending
    question asks to approve (None: the question is not an approval); `approves`: the
    answer approves it; `started_by`: the key id that started the plan."""
    if amount is None:
        check_role(caller, "answer")
        return
    check_role(caller, "approve")
    if not (approves and policy.separation_of_duties and caller.key_id is not None):
        return
    # An amount that is not a finite number cannot be shown to be under the threshold.
    above = not math.isfinite(amount) or amount > policy.separation_above_usd
    if above and started_by == caller.key_id:
        budget = f"${amount:,.0f}" if math.isfinite(amount) else "(not a finite number)"
        raise SeparationOfDutiesError(
            f"separation of duties: the key that started this plan ({caller.key_id}) cannot "
            f"approve it alone; the plan's budget {budget} is above "
            f"${policy.separation_above_usd:,.0f}, so another key of tenant {caller.tenant} "
            "with role approver or admin must approve it (this key may still edit or reject)",
            key_id=caller.key_id,
            threshold_usd=policy.separation_above_usd,
        )
