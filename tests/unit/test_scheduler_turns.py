"""The worker pool's turns between steps (issue #12, noisy neighbour): a tenant with runs
waiting in its line gives way, between its steps, to a tenant without a backlog while that
tenant's run is running; never for more than `yield_s` a step, and not at all when nobody
else is running or when every running tenant has a backlog too."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from graph.serving.scheduler import FairScheduler


@dataclass
class Job:
    tenant: str
    name: str
    release: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)


class Pool:
    """A FairScheduler whose jobs log events; the `flood` jobs take a turn after a first step
    and record how long they waited, the others wait for their `release`."""

    def __init__(self, yield_s: float) -> None:
        self.log: list[str] = []
        self.waited: dict[str, float] = {}
        self.lock = threading.Lock()
        self.pool: FairScheduler[Job] = FairScheduler(2, 1, self.work, yield_s=yield_s)

    def wait_for(self, event: str) -> None:
        deadline = time.monotonic() + 5
        while event not in self.log and time.monotonic() < deadline:
            time.sleep(0.02)
        assert event in self.log, (event, self.log)

    def note(self, event: str) -> None:
        with self.lock:
            self.log.append(event)

    def work(self, job: Job) -> None:
        job.started.set()
        self.note(f"{job.name} starts")
        if job.name.startswith("flood"):
            job.release.wait(10)  # its first step
            self.waited[job.name] = self.pool.turn(job.tenant)
        else:
            job.release.wait(10)
        self.note(f"{job.name} ends")


def test_a_tenant_with_a_backlog_gives_way_to_one_without() -> None:
    p = Pool(yield_s=10.0)
    flood, backlog = Job("acme", "flood-1"), Job("acme", "flood-2")
    neighbour = Job("globex", "neighbour")
    p.pool.submit(flood)
    assert flood.started.wait(5)
    p.pool.submit(backlog)  # waits: acme may run one at a time
    p.pool.submit(neighbour)
    assert neighbour.started.wait(5)
    flood.release.set()  # acme's step ends while globex's run is running: acme waits
    time.sleep(0.3)
    assert "flood-1 ends" not in p.log
    neighbour.release.set()
    backlog.release.set()
    p.wait_for("flood-2 ends")
    assert p.pool.close(5) == []
    assert p.log.index("neighbour ends") < p.log.index("flood-1 ends")
    assert p.waited["flood-1"] >= 0.25


def test_giving_way_is_bounded_per_step() -> None:
    p = Pool(yield_s=0.3)
    flood, backlog = Job("acme", "flood-1"), Job("acme", "flood-2")
    neighbour = Job("globex", "neighbour")
    p.pool.submit(flood)
    assert flood.started.wait(5)
    p.pool.submit(backlog)
    p.pool.submit(neighbour)
    assert neighbour.started.wait(5)
    flood.release.set()
    p.wait_for("flood-1 ends")
    assert "neighbour ends" not in p.log  # slowed, not stopped
    assert 0.25 <= p.waited["flood-1"] < 2.0
    neighbour.release.set()
    backlog.release.set()
    p.wait_for("flood-2 ends")
    p.pool.close(5)


def test_no_waiting_alone_or_when_every_running_tenant_has_a_backlog() -> None:
    p = Pool(yield_s=10.0)
    alone = Job("acme", "flood-alone")
    p.pool.submit(alone)
    assert alone.started.wait(5)
    queued = Job("acme", "flood-queued")
    p.pool.submit(queued)  # a backlog, and nobody else running
    alone.release.set()
    queued.release.set()
    p.wait_for("flood-queued ends")
    assert p.waited["flood-alone"] < 0.5
    p.pool.close(5)
    # Two tenants, each with a backlog: neither gives way to the other.
    q = Pool(yield_s=10.0)
    a1, a2 = Job("acme", "flood-a1"), Job("acme", "flood-a2")
    g1, g2 = Job("globex", "flood-g1"), Job("globex", "flood-g2")
    for job in (a1, a2, g1, g2):
        q.pool.submit(job)
    assert a1.started.wait(5) and g1.started.wait(5)
    a1.release.set()
    g1.release.set()
    for job in (a2, g2):
        job.release.set()
    q.wait_for("flood-a2 ends")
    q.wait_for("flood-g2 ends")
    q.pool.close(5)
    assert q.waited["flood-a1"] < 0.5 and q.waited["flood-g1"] < 0.5
