"""Runs of the HTTP graph API: `GraphServer`, which adds the run queue, the executor and the
recovery of unfinished runs to the graph's host (`GraphHost`); a run in memory is a `Run`
(`graph.serving.run`).

Runs go to a worker pool that takes tenants in turn (`graph.serving.scheduler`); one thread's
runs never overlap; how many may wait is `graph.serving.limits`'s to say.

Nothing is lost when the server stops or dies. A run keeps what it was asked until it ends
(`graph.serving.store`); on the next start, runs that were queued start again as asked, and runs
that were running continue from their thread's last checkpoint: a run whose thread had moved on
goes on from there with no new input (a thread that had reached an interrupt or its end was
done), one whose thread had not moved yet starts again as asked. A stop lets running steps finish
first; a cancel ends a run `interrupted` and it stays so.

On a shared database (PostgreSQL), several servers (replicas) serve the same threads: each run
is held by one replica under a lease, a replica that dies leaves its runs to the others, and
one thread's runs still never overlap (`graph.serving.replicas`). On SQLite, the default, none
of that runs: the process is the only one, and takes up its runs when it starts."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import Counter, deque
from contextlib import suppress
from typing import Any

from langgraph.types import Command

from graph.serving.checks import RunChecks
from graph.serving.errors import (
    ApiError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    public_message,
)
from graph.serving.limits import RunCounts, TenantQueueFullError
from graph.serving.policy import Caller, check_role
from graph.serving.replicas import LEASE_S, TICK_S, Ticker, replica_id
from graph.serving.run import STOPPED, Events, Run
from graph.serving.scheduler import FairScheduler
from graph.serving.schemas import (
    INTERRUPT_KEY,
    RunCreate,
    check_uuid,
    interrupt_json,
    now,
)
from graph.serving.settings import GraphFactory, ServerSettings
from graph.serving.threads import GraphHost

log = logging.getLogger("rmn.server")


__all__ = ["Events", "GraphServer", "Run", "TenantQueueFullError"]


class GraphServer(GraphHost):
    """The graph, its checkpointer, the metadata store and the run pool; no HTTP here."""

    def __init__(self, graph_factory: GraphFactory, settings: ServerSettings) -> None:
        super().__init__(graph_factory, settings)
        self._pool: FairScheduler[Run] | None = None
        self._checks: RunChecks | None = None
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Run]] = {}  # thread key -> its runs, the head one running
        self._runs: dict[str, Run] = {}
        self._counts = RunCounts(settings)  # runs queued or running
        self._stopping = False
        self.yielded_s: Counter[str] = Counter()  # tenant -> seconds its runs gave way to others
        # Replicas (a shared database): this process as a run holder, its runs waiting for
        # their thread's earlier runs on other replicas, and the tick that renews and claims.
        self.replica = replica_id()
        self._parked: dict[str, Run] = {}
        self._ticker: Ticker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # lifecycle

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Open the stores and the pool, and take up the runs the last process left (their
        events go to `loop`, the app's event loop)."""
        super().start()
        self._checks = RunChecks(self.graph, self.settings)
        self._pool = FairScheduler(self.settings.workers, self.settings.running_cap(), self._work)
        self._stopping = False
        self._loop = loop
        if self.shared:  # other replicas may be running these: take only the lapsed ones
            self._claim_lapsed()
            self._ticker = Ticker(TICK_S, self._tick)
            return
        for row in self._store.unfinished():
            self._recover(row, loop)

    def stop(self) -> None:
        """Stop taking runs and let running steps finish; the runs cut short, and those still
        queued, are taken up again on the next start. Then close the stores."""
        if self._ticker is not None:
            self._ticker.stop()
        with self._lock:
            self._stopping = True
            for run in self._runs.values():
                run.cancel_status = STOPPED
                run.cancel.set()
            parked = list(self._parked.values())
            self._parked.clear()
        if self._pool is not None:
            for run in [*self._pool.close(), *parked]:
                self._end(run, STOPPED, None)
        if self.shared:  # the other replicas take them up at once, not a lease later
            with suppress(Exception):
                self._store.release(self.replica)
        super().stop()

    @property
    def shared(self) -> bool:
        """Whether other replicas may serve the same threads (the store is PostgreSQL)."""
        return self._store.shared

    def busy(self, key: str) -> bool:
        with self._lock:
            if self._queues.get(key):
                return True
        return self.shared and self._store.busy_key(key)

    def delete_thread(self, caller: Caller, thread_id: str) -> dict[str, Any]:
        check_role(caller, "delete")
        row = self.own_thread(caller.tenant, thread_id)
        with self._lock:  # held until the thread is gone: no run can join its line meanwhile
            if self._queues.get(row["key"]) or (self.shared and self._store.busy_key(row["key"])):
                raise ConflictError(f"thread {row['thread_id']} has a run in progress")
            return self._drop_thread(row)

    # runs: creation

    def new_run(
        self,
        caller: Caller,
        thread_id: str | None,
        body: RunCreate,
        loop: asyncio.AbstractEventLoop,
    ) -> Run:
        """Check a run request and make its run; nothing is queued or stored yet (`admit`).
        A tenant without room for another run is refused before its input is read: a flood
        costs the server no more than the refusal."""
        with self._lock:
            self._counts.check_room(caller.tenant, stopping=self._stopping)
        if thread_id is not None:
            thread_id = check_uuid(thread_id, "thread_id")
        assistant = self.assistant(body.assistant_id)
        modes = self.checks.options(body)
        client_context = dict(body.context or {})
        context = self.checks.context(caller, client_context)
        graph_input, resume = self.checks.graph_input(caller.tenant, body)
        if not resume:
            check_role(caller, "start")
        temporary = thread_id is None
        row = self._run_thread(caller, thread_id, body)
        run_id = str(uuid.uuid4())
        metadata = dict(body.metadata or {})
        config = self.checks.config(
            row["key"], run_id, assistant, body.config or {}, metadata, row["thread_id"]
        )
        return Run(
            run_id=run_id,
            thread_id=row["thread_id"],
            key=row["key"],
            caller=caller,
            assistant_id=assistant["assistant_id"],
            created_at=now(),
            metadata=metadata,
            multitask_strategy=body.multitask_strategy,
            graph_input=graph_input,
            resume=resume,
            client_context=client_context,
            context=context,
            config=config,
            modes=modes,
            subgraphs=body.stream_subgraphs,
            durability=body.durability,
            temporary=temporary and body.on_completion != "keep",
            loop=loop,
        )

    def _run_thread(self, caller: Caller, thread_id: str | None, body: RunCreate) -> dict[str, Any]:
        """The thread a run goes on: a new one for a stateless run, else the caller's own
        (made first when the request says `if_not_exists: create`)."""
        if thread_id is None:
            thread_id = str(uuid.uuid4())
            self.new_thread(caller, thread_id, {})
        elif body.if_not_exists == "create" and not self._store.thread(caller.tenant, thread_id):
            self.new_thread(caller, thread_id, {})
        return self.own_thread(caller.tenant, thread_id)

    def admit(self, run: Run) -> None:
        """Queue the run on its thread (409 when the thread is busy and the strategy is
        `reject`), check the thread's state when it is first in line (an answer behind
        another run is pinned to the question pending now, `RunChecks.pin`), store it, start
        it."""
        first = self._enqueue(run)
        try:
            if first and self.shared:  # the thread may have a run on another replica
                first = self._free_elsewhere(run)
            if first:
                self._check_thread_state(run)
                run.checked = True
            elif run.resume:  # it answers the question pending now; checked when it starts
                pending = list(self._snapshot(run.key).interrupts)
                run.graph_input = self.checks.pin(run.thread_id, run.graph_input, pending)
            ready = self._store_run(run)
        except BaseException:
            self._leave(run, start_next=True)
            if run.temporary:
                self._drop_thread(self.own_thread(run.tenant, run.thread_id))
            raise
        if self.shared:
            run.checked = run.checked and ready  # another replica's run slipped in before it
            self._dispatch(run, ready)
        elif first:
            self._submit(run)

    def _free_elsewhere(self, run: Run) -> bool:
        """Whether no other replica has a run of the thread unfinished; `reject` runs are
        refused here when one has (and again under the thread's lock when stored)."""
        if self._store.first_unfinished(run.tenant, run.thread_id) is None:
            return True
        if run.multitask_strategy == "reject":
            raise ConflictError(
                f"thread {run.thread_id} already has a run in progress; wait for it, or send "
                "multitask_strategy='enqueue'",
                thread_id=run.thread_id,
            )
        return False

    def _store_run(self, run: Run) -> bool:
        """Store the run (held by this replica on a shared database); whether it may start
        now as far as other replicas are concerned."""
        ready = self._store.insert_run(
            run_id=run.run_id,
            tenant=run.tenant,
            thread_id=run.thread_id,
            assistant_id=run.assistant_id,
            created_at=run.created_at,
            metadata=run.metadata,
            multitask_strategy=run.multitask_strategy,
            actor=run.caller.key_id,
            payload=run.payload(),
            owner=self.replica if self.shared else None,
            lease_s=LEASE_S,
        )
        run.stored = True
        return ready

    def _enqueue(self, run: Run, *, limits: bool = True) -> bool:
        """Put the run in its thread's line; True when it is first (it may start now)."""
        with self._lock:
            if limits:
                self._within_limits(run)
            line = self._queues.get(run.key)
            first = not line
            self._queues.setdefault(run.key, deque()).append(run)
            self._runs[run.run_id] = run
            self._counts.add(run.tenant)
        return first

    def _within_limits(self, run: Run) -> None:
        """Under the lock: the server is taking runs, it and the tenant have room, and the
        thread is free unless the run may wait its turn."""
        self._counts.check_room(run.tenant, stopping=self._stopping)
        if self._queues.get(run.key) and run.multitask_strategy == "reject":
            raise ConflictError(
                f"thread {run.thread_id} already has a run in progress; wait for it, or send "
                "multitask_strategy='enqueue'",
                thread_id=run.thread_id,
            )

    def _check_thread_state(self, run: Run) -> None:
        """An answer needs a pending interrupt, a valid answer and a caller who may give it;
        new input needs none pending. A run that carries on from a checkpoint needs nothing."""
        if run.carry_on:
            return
        pending = list(self._snapshot(run.key).interrupts)
        if run.resume:
            if not pending:
                raise ConflictError(
                    f"thread {run.thread_id} has no pending interrupt to resume",
                    thread_id=run.thread_id,
                )
            self.checks.resume(run.graph_input, pending)
            row = self.own_thread(run.tenant, run.thread_id)
            self.checks.authorize_answer(run.caller, run.graph_input, pending, row["started_by"])
        elif pending:
            raise ConflictError(
                f"thread {run.thread_id} is waiting for an answer to its interrupt; resume it "
                "with command.resume before sending new input",
                thread_id=run.thread_id,
                interrupts=[interrupt_json(i) for i in pending],
            )
        elif run.caller.key_id is not None:
            # Who started the plan now on the thread: separation of duties asks someone else
            # to approve it.
            self._store.set_thread(run.key, started_by=run.caller.key_id)

    # runs: taken up again after a stop or a crash

    def _recover(self, row: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        """A run the last process did not finish: start it again as asked, carry it on from
        its thread's last checkpoint, or record that it was done."""
        payload = row.get("payload")
        thread = self._store.thread(row["tenant"], row["thread_id"])
        if payload is None or thread is None:
            self._set_run(row["run_id"], "error", "the server stopped before the run ended")
            return
        snap = self._snapshot(thread["key"])
        at = (snap.config or {}).get("configurable", {}).get("checkpoint_id")
        carry_on = row["status"] == "running" and at != row["start_checkpoint"]
        if carry_on and self.at_rest(thread["key"], snap, at):
            # It had reached its interrupt (or its end) when the process went: it was done.
            if self._set_run(row["run_id"], "success"):
                self._store.set_thread(thread["key"], status=self._resting_status(thread["key"]))
            return
        caller = Caller(tenant=row["tenant"], role=payload["role"], key_id=row["actor"])
        try:
            context = self.checks.context(caller, payload["client_context"])
        except ApiError as err:  # the server's settings changed: the run no longer fits them
            self._set_run(row["run_id"], "error", f"not taken up again: {err.message}")
            return
        run = Run.from_stored(row, thread["key"], caller, context, loop, carry_on=carry_on)
        log.info("run %s on thread %s taken up again (%s)", run.run_id, run.thread_id,
                 "from its last checkpoint" if carry_on else "as asked")  # fmt: skip
        first = self._enqueue(run, limits=False)
        if self.shared:
            self._dispatch(run, False)
        elif first:
            self._submit(run)

    # runs: replicas on a shared database (graph.serving.replicas)

    def _set_run(self, run_id: str, status: str, error: str | None = None, **kw: Any) -> bool:
        """Record a run's status; on a shared database only while this replica holds it."""
        owner = self.replica if self.shared else None
        return self._store.set_run(run_id, status, error, owner=owner, **kw)

    def _dispatch(self, run: Run, ready: bool) -> None:
        """Start the run, or park it until it is its thread's earliest unfinished run."""
        if ready:
            self._submit(run)
            return
        with self._lock:
            self._parked[run.run_id] = run
        self._wake(run)  # the run it waited for may have ended meanwhile

    def _wake(self, run: Run) -> None:
        """Start a parked run if its thread's earlier runs have all ended, on every replica."""
        if self._store.first_unfinished(run.tenant, run.thread_id) != run.run_id:
            return
        with self._lock:
            if self._parked.pop(run.run_id, None) is None:
                return  # woken by another thread meanwhile
        self._submit(run)

    def _wake_key(self, key: str) -> None:
        with self._lock:
            waiting = [r for r in self._parked.values() if r.key == key]
        for run in waiting:
            self._wake(run)

    def _tick(self) -> None:
        """Every `TICK_S`: renew this replica's leases, start parked runs whose turn came,
        take up runs whose holder is gone."""
        self._renew()
        with self._lock:
            parked = list(self._parked.values())
        for run in parked:
            self._wake(run)
        self._claim_lapsed()

    def _renew(self) -> None:
        """Extend the leases of this replica's runs; a run it no longer holds (it stalled a
        whole lease and another replica took the run) stops here between steps."""
        held = self._store.renew(self.replica, LEASE_S)
        with self._lock:
            lost = [r for r in self._runs.values() if r.stored and r.run_id not in held
                    and r.status in ("pending", "running")]  # fmt: skip
            parked = [self._parked.pop(r.run_id) for r in lost if r.run_id in self._parked]
        for run in lost:
            log.warning("run %s is held by another replica now; stopping it here", run.run_id)
            run.cancel_status = STOPPED
            run.cancel.set()
        for run in parked:
            self._end(run, STOPPED, None)

    def _claim_lapsed(self) -> None:
        """Take up the unfinished runs nobody holds (their replica died or stopped)."""
        if self._stopping or self._loop is None:
            return
        for run_id in self._store.claimable():
            row = self._store.claim(run_id, self.replica, LEASE_S)
            if row is not None:
                log.info("run %s claimed by %s (attempt %s)", run_id, self.replica, row["attempt"])
                self._recover(row, self._loop)

    def elsewhere(self, row: dict[str, Any]) -> bool:
        """Whether the run is unfinished and not this replica's: another executes it."""
        return self.shared and self.active(row["run_id"]) is None and row["status"] in (
            "pending", "running")  # fmt: skip

    def finished(self, run_id: str) -> bool:
        """Whether the run has ended (or is gone), as the shared store says."""
        row = self._store.run(run_id)
        return row is None or row["status"] not in ("pending", "running")

    # runs: execution

    def _submit(self, run: Run) -> None:
        assert self._pool is not None
        if not self._pool.submit(run):  # the pool closed while the run waited
            self._end(run, STOPPED, None)

    def _work(self, run: Run) -> None:
        try:
            if run.cancel.is_set():
                self._end(run, run.cancel_status, None)
                return
            try:
                if not run.checked:  # it waited behind another run: the state may have moved
                    self._check_thread_state(run)
            except ApiError as err:
                kind, message = public_message(err)
                run.publish("error", {"error": kind, "message": message})
                self._end(run, "error", {"__error__": {"error": kind, "message": message}})
                return
            at = (self._snapshot(run.key).config or {}).get("configurable", {})
            held = self._set_run(run.run_id, "running", start_checkpoint=at.get("checkpoint_id"))
            if not held and self.shared:
                self._end(run, STOPPED, None)  # another replica holds it now: it runs there
                return
            run.status = "running"
            self._store.set_thread(run.key, status="busy")
            self._execute(run)
        except Exception:  # never lose a run silently: the pool would swallow it
            log.exception("run %s failed outside the graph", run.run_id)
            self._end(run, "error", {"__error__": {"error": "internal_error", "message": ""}})

    def _graph_input(self, run: Run) -> Any:
        if run.carry_on:
            return None
        return Command(resume=run.graph_input) if run.resume else run.graph_input

    def _execute(self, run: Run) -> None:
        internal = list(dict.fromkeys([*run.modes, "updates"]))
        timeout = self.settings.run_timeout_s
        deadline = time.monotonic() + timeout if timeout else None
        stopped: str | None = None
        try:
            for item in self.graph.stream(
                self._graph_input(run),
                run.config,
                context=run.context,
                stream_mode=internal,
                subgraphs=run.subgraphs,
                durability=run.durability,
            ):
                ns: tuple[str, ...]
                if run.subgraphs:
                    ns, mode, chunk = item
                else:
                    (mode, chunk), ns = item, ()
                run.emit(mode, chunk, ns)
                if mode == "updates" and self._pool is not None:
                    run.yielded_s += self._pool.turn(run.tenant)  # a step ended: fair turn
                if run.cancel.is_set():
                    stopped = run.cancel_status
                    break
                if deadline is not None and time.monotonic() > deadline:
                    stopped = "timeout"
                    break
        except Exception as err:
            log.exception("run %s on thread %s failed", run.run_id, run.thread_id)
            kind, message = public_message(err)
            run.publish("error", {"error": kind, "message": message})
            self._end(run, "error", {"__error__": {"error": kind, "message": message}}, "error")
            return
        self._end(run, stopped or "success", self.thread_values(run.key))

    def _end(
        self,
        run: Run,
        status: str,
        result: dict[str, Any] | None,
        resting: str | None = None,
    ) -> None:
        run.status = status
        run.result = result if result is not None else self._safe_final(run.key)
        error = None
        if status == "error" and run.result and INTERRUPT_KEY not in run.result:
            error = (run.result.get("__error__") or {}).get("message")
        with suppress(Exception):  # the store is closed if the server stopped meanwhile
            # A stopped run stays as it was stored: the next start takes it. A run another
            # replica took over is that replica's to record.
            if status != STOPPED and self._set_run(run.run_id, status, error):
                if run.temporary:
                    self._drop_thread(self.own_thread(run.tenant, run.thread_id))
                else:
                    self._store.set_thread(run.key, status=resting or self._resting_status(run.key))
        if run.yielded_s:
            log.info("run %s gave way to other tenants for %.2f s", run.run_id, run.yielded_s)
        with self._lock:
            self.yielded_s[run.tenant] += run.yielded_s
        self._leave(run, start_next=status != STOPPED)
        run.finish()

    def _leave(self, run: Run, *, start_next: bool) -> None:
        nxt: Run | None = None
        with self._lock:
            line = self._queues.get(run.key)
            if line and run in line:
                head = line[0] is run
                line.remove(run)
                self._counts.remove(run.tenant)
                if head and line and start_next and not self._stopping:
                    nxt = line[0]
                if not line:
                    del self._queues[run.key]
            self._runs.pop(run.run_id, None)
        if self.shared and start_next and not self._stopping:
            self._wake_key(run.key)  # the thread's next run, whichever replica stored it first
        elif nxt is not None and not self.shared:
            self._submit(nxt)

    # runs: queries and control

    def own_run(self, tenant: str, thread_id: str, run_id: str) -> dict[str, Any]:
        row = self.own_thread(tenant, thread_id)
        run_id = check_uuid(run_id, "run_id")
        run = self._store.run(run_id)
        if run is None or run["thread_id"] != row["thread_id"] or run["tenant"] != tenant:
            raise NotFoundError(f"run {run_id} not found", run_id=run_id)
        return run

    def active(self, run_id: str) -> Run | None:
        with self._lock:
            return self._runs.get(run_id)

    def run_json(self, row: dict[str, Any]) -> dict[str, Any]:
        keys = ("run_id", "thread_id", "assistant_id", "created_at", "updated_at", "status",
                "metadata", "multitask_strategy", "actor")  # fmt: skip
        out = {k: row.get(k) for k in keys}
        live = self.active(row["run_id"])
        if live is not None and live.status == "running":
            out["status"] = "running"
        if row.get("error"):
            out["error"] = row["error"]
        return out

    def list_runs(
        self, tenant: str, thread_id: str, limit: int, offset: int, status: str | None
    ) -> list[dict[str, Any]]:
        row = self.own_thread(tenant, thread_id)
        rows = self._store.runs(tenant, row["thread_id"], limit, offset, status)
        return [self.run_json(r) for r in rows]

    def cancel(self, caller: Caller, thread_id: str, run_id: str, action: str) -> Run:
        row = self.own_run(caller.tenant, thread_id, run_id)
        check_role(caller, "start")
        if action != "interrupt":
            raise InvalidRequestError(
                f"cancel action {action!r} is not supported; use 'interrupt'", field="action"
            )
        live = self.active(row["run_id"])
        if live is None and self.elsewhere(row):
            raise ConflictError(
                f"run {row['run_id']} is executing on another replica; cancel it there",
                status=row["status"],
            )
        if live is None:
            raise ConflictError(
                f"run {row['run_id']} has already finished ({row['status']})",
                status=row["status"],
            )
        live.cancel_status = "interrupted"
        live.cancel.set()
        return live

    def delete_run(self, caller: Caller, thread_id: str, run_id: str) -> None:
        row = self.own_run(caller.tenant, thread_id, run_id)
        check_role(caller, "start")
        if self.active(row["run_id"]) is not None or self.elsewhere(row):
            raise ConflictError(f"run {row['run_id']} is still in progress; cancel it first")
        self._store.delete_run(row["run_id"])

    @property
    def checks(self) -> RunChecks:
        assert self._checks is not None, "GraphServer.start() was not called"
        return self._checks
