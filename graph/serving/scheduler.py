"""The worker pool of the HTTP graph API, fair between tenants.

A pool taking runs first come, first served lets one tenant that sends many runs hold every
worker while another tenant's run waits behind all of them. Here each tenant has its own line
of ready runs, and a free worker takes the next run of the tenant served longest ago (a tenant
never served goes first); a tenant never has more than `per_tenant` runs running at once, so
with more workers than that, a worker is free for another tenant's run the moment it comes.

Runs in one process share the CPU (the GIL), so a flooding tenant's one running run still
halves the speed of everyone else's: measured with `rmn bench server --flood` on 2 cores, the
other tenant's p50 went from 1.32 s idle to 2.78 s (2.11x). Between steps, a run therefore
takes its turn (`turn`): a tenant with runs waiting in its line wants more than its share, and
its run waits while a run of a tenant with none waiting is running, at most `yield_s` per
step, so it is slowed and never stopped. Tenants in the same state share the CPU as before.
Measured the same way with it: 1.14 s idle, 1.52 s under the flood (1.34x).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class Task(Protocol):
    tenant: str


T = TypeVar("T", bound=Task)

__all__ = ["FairScheduler", "Task"]


class FairScheduler(Generic[T]):  # noqa: UP046 (Python 3.11: no PEP 695 syntax)
    """`workers` threads calling `work(task)` on submitted tasks, tenants in turn."""

    def __init__(
        self, workers: int, per_tenant: int, work: Callable[[T], None], yield_s: float = 5.0
    ) -> None:
        self.per_tenant = max(1, per_tenant)
        self.yield_s = max(0.0, yield_s)
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
            self._cond.notify_all()  # an idle worker, whichever thread wakes first
            return True

    def running(self, tenant: str) -> int:
        with self._cond:
            return self._running[tenant]

    def turn(self, tenant: str) -> float:
        """Called by a running run of `tenant` between its steps: wait while the tenant has
        runs waiting in its line and another tenant without any has a run running (at most
        `yield_s`); the seconds waited."""
        start = time.monotonic()
        end = start + self.yield_s
        with self._cond:
            while not self._closed and self._behind(tenant):
                left = end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        return time.monotonic() - start

    def _behind(self, tenant: str) -> bool:
        """Under the lock: `tenant` has a backlog and someone without one is running."""
        if not self._ready.get(tenant):
            return False
        return any(
            n > 0 and t != tenant and not self._ready.get(t) for t, n in self._running.items()
        )

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
