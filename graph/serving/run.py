"""A run of the HTTP graph API in memory while it is queued or running: what it was asked
(kept in the store until it ends, `Run.payload`), who asked (`Caller`), and the events it
streams to its listeners on the app's event loop."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from graph.serving.policy import Caller
from graph.serving.schemas import INTERRUPT_KEY, dumps, interrupt_json, jsonable

# What a run's listeners receive: (event, JSON data), then None when the run is done.
Events = asyncio.Queue[tuple[str, str] | None]
# A run cut short by a stop: left as it is in the store, so the next start takes it up.
STOPPED = "stopped"

__all__ = ["STOPPED", "Events", "Run"]


@dataclass(eq=False)
class Run:
    """A run in memory while it is queued or running: its inputs, and the events it streams."""

    run_id: str
    thread_id: str  # the id its tenant knows the thread by
    key: str  # where the thread's checkpoints are kept
    caller: Caller
    assistant_id: str
    created_at: str
    metadata: dict[str, Any]
    multitask_strategy: str
    graph_input: Any  # the input dict, or the resume value when `resume` is True
    resume: bool
    client_context: dict[str, Any]
    context: Any
    config: dict[str, Any]
    modes: list[str]
    subgraphs: bool
    durability: str | None
    temporary: bool
    loop: asyncio.AbstractEventLoop
    carry_on: bool = False  # continue from the thread's last checkpoint (no new input)
    status: str = "pending"
    checked: bool = False  # the thread's state was checked for this run (see `admit`)
    stored: bool = False  # in the run store (a replica renews its lease from then on)
    result: dict[str, Any] | None = None
    yielded_s: float = 0.0  # waited between steps for other tenants' runs (`FairScheduler.turn`)
    cancel: threading.Event = field(default_factory=threading.Event)
    cancel_status: str = "interrupted"
    done: asyncio.Event = field(default_factory=asyncio.Event)
    subscribers: list[Events] = field(default_factory=list)

    @property
    def tenant(self) -> str:
        return self.caller.tenant

    @classmethod
    def from_stored(
        cls,
        row: dict[str, Any],
        key: str,
        caller: Caller,
        context: Any,
        loop: asyncio.AbstractEventLoop,
        *,
        carry_on: bool,
    ) -> Run:
        """A stored run taken up again (`row`: the store's, with the `payload` it was asked)."""
        payload = row["payload"]
        return cls(
            run_id=row["run_id"],
            thread_id=row["thread_id"],
            key=key,
            caller=caller,
            assistant_id=row["assistant_id"],
            created_at=row["created_at"],
            metadata=row["metadata"],
            multitask_strategy=row["multitask_strategy"],
            graph_input=payload["graph_input"],
            resume=payload["resume"],
            client_context=payload["client_context"],
            context=context,
            config={**payload["config"], "run_id": uuid.UUID(row["run_id"])},
            modes=payload["modes"],
            subgraphs=payload["subgraphs"],
            durability=payload["durability"],
            temporary=payload["temporary"],
            loop=loop,
            carry_on=carry_on,
            stored=True,
        )

    def payload(self) -> dict[str, Any]:
        """What the run was asked, as kept in the store until it ends."""
        return {
            "graph_input": self.graph_input,
            "resume": self.resume,
            "client_context": self.client_context,
            "config": {k: v for k, v in self.config.items() if k != "run_id"},
            "modes": self.modes,
            "subgraphs": self.subgraphs,
            "durability": self.durability,
            "temporary": self.temporary,
            "role": self.caller.role,
        }

    def emit(self, mode: str, chunk: Any, ns: tuple[str, ...]) -> None:
        """One chunk of the graph's stream (`mode`, from subgraph `ns`), as the run's events."""
        suffix = "|" + "|".join(ns) if ns else ""
        has_interrupt = isinstance(chunk, dict) and INTERRUPT_KEY in chunk
        if has_interrupt:
            chunk = {**chunk, INTERRUPT_KEY: [interrupt_json(i) for i in chunk[INTERRUPT_KEY]]}
        if mode == "updates" and has_interrupt and "updates" not in self.modes:
            # The graph's own values chunk carries the interrupt when values were asked for;
            # otherwise, like LangGraph Server, send it as a values event.
            if "values" not in self.modes:
                self.publish("values" + suffix, chunk)
        elif mode in self.modes:
            self.publish(mode + suffix, jsonable(chunk))

    def subscribe(self) -> Events:
        """Called on the event loop, before the run can start or while it runs."""
        queue: Events = asyncio.Queue()
        if self.done.is_set():
            queue.put_nowait(None)
        else:
            self.subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: Events) -> None:
        with suppress(ValueError):
            self.subscribers.remove(queue)

    def publish(self, event: str, data: Any) -> None:
        """From the worker thread: serialise here, fan out on the loop."""
        self._on_loop(self._fanout, (event, dumps(data)))

    def finish(self) -> None:
        self._on_loop(self._close)

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        # A loop that has closed (server stopped) has no listeners left to tell.
        with suppress(RuntimeError):
            self.loop.call_soon_threadsafe(fn, *args)

    def _fanout(self, item: tuple[str, str]) -> None:
        for queue in self.subscribers:
            queue.put_nowait(item)

    def _close(self) -> None:
        for queue in self.subscribers:
            queue.put_nowait(None)
        self.subscribers.clear()
        self.done.set()
