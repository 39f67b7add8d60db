"""How many runs may wait: the server holds at most `max_queued_runs` queued or running (then
503), a tenant `max_queued_per_tenant` (then 429, other tenants unaffected)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from graph.serving.errors import RateLimitedError, ServerBusyError
from graph.serving.settings import ServerSettings

__all__ = ["RunCounts", "TenantQueueFullError"]


class TenantQueueFullError(RateLimitedError):
    """A tenant with as many runs queued or running as it may hold."""

    kind = "tenant_queue_full"


@dataclass
class RunCounts:
    """Runs queued or running, in all and per tenant; read and changed under the server's
    lock."""

    settings: ServerSettings
    queued: int = 0
    per_tenant: Counter[str] = field(default_factory=Counter)

    def check_room(self, tenant: str, *, stopping: bool) -> None:
        """503 while stopping or when the server's queue is full, 429 when the tenant's is."""
        if stopping:
            raise ServerBusyError("the server is stopping", headers={"Retry-After": "5"})
        if self.queued >= self.settings.max_queued_runs:
            raise ServerBusyError(
                f"{self.queued} runs are waiting; try again shortly",
                headers={"Retry-After": "5"},
            )
        limit = self.settings.max_queued_per_tenant
        if self.per_tenant[tenant] >= limit:
            raise TenantQueueFullError(
                f"tenant {tenant} has {limit} runs queued or running, as many as it may; "
                "wait for one to end",
                headers={"Retry-After": "5"},
                limit=limit,
            )

    def add(self, tenant: str) -> None:
        self.queued += 1
        self.per_tenant[tenant] += 1

    def remove(self, tenant: str) -> None:
        self.queued -= 1
        self.per_tenant[tenant] -= 1
