"""The worker pool of the HTTP graph API, fair between tenants.

A pool taking runs first come, first served lets one tenant that sends many runs hold every
worker while another tenant's run waits behind all of them. Here each tenant has its own line
of ready runs, and a free worker takes the next run of the tenant served longest ago (a tenant
never served goes first); a tenant never has more than `per_tenant` runs running at once, so
with more workers than that, a worker is free for another tenant's run the moment it comes.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter, deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Task(Protocol):
    tenant: str


T = TypeVar("T", bound=Task)

__all__ = ["FairScheduler", "Task"]


class FairScheduler(Generic[T]):  # noqa: UP046 (Python 3.11: no PEP 695 syntax)
    """`workers` threads calling `work(task)` on submitted tasks, tenants in turn."""

    def __init__(self, workers: int, per_tenant: int, work: Callable[[T], None]) -> None:
        self.per_tenant = max(1, per_tenant)
        self._work = work
        self._cond = threading.Condition()
        self._ready: dict[str, deque[T]] = {}
        self._running: Counter[str] = Counter()
        self._served: dict[str, int] = {}  # tenant -> tick of its last turn
        self._ticks = itertools.count()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._loop, name=f"graph-run-{i}", daemon=True)
            for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, task: T) -> bool:
        """Queue `task` in its tenant's line; False when the pool is closed."""
        with self._cond:
            if self._closed:
                return False
            self._ready.setdefault(task.tenant, deque()).append(task)
            self._cond.notify()
            return True

    def running(self, tenant: str) -> int:
        with self._cond:
            return self._running[tenant]

    def close(self, timeout: float | None = None) -> list[T]:
        """Take no more tasks; answer the ones still waiting (never started), after the
        running ones have returned."""
        with self._cond:
            self._closed = True
            waiting = [t for line in self._ready.values() for t in line]
            self._ready.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        return waiting

    def _next(self) -> T | None:
        """Under the lock: the next task of the eligible tenant served longest ago."""
        eligible = [
            t for t, line in self._ready.items() if line and self._running[t] < self.per_tenant
        ]
        if not eligible:
            return None
        tenant = min(eligible, key=lambda t: self._served.get(t, -1))
        line = self._ready[tenant]
        task = line.popleft()
        if not line:
            del self._ready[tenant]
        self._running[tenant] += 1
        self._served[tenant] = next(self._ticks)
        return task

    def _loop(self) -> None:
        while True:
            with self._cond:
                task = self._next()
                while task is None:
                    if self._closed:
                        return
                    self._cond.wait()
                    task = self._next()
            try:
                self._work(task)
            finally:
                with self._cond:
                    self._running[task.tenant] -= 1
                    self._cond.notify_all()
