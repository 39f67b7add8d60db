"""The runtime's request queue: rows from any number of threads, decoded in shared batches.

Calls from any number of threads queue their rows; whichever caller finds the model free runs
the queued rows as batches (one at a time) while the others wait, so adapter loading,
composition and generation never overlap. A caller that finds fewer rows queued than a batch
holds waits `window_s` first, so that callers arriving at the same moment share its batch. Which
queued rows may share a batch is the runtime's decision (`admits`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from adapters.registry import AdapterEntry
from adapters.structured import OutputSchema


@dataclass
class Row:
    """One decoded row of a batch."""

    tokens: list[int]
    text: str
    finish_reason: str
    batch_size: int
    composition: str
    decode: str
    forced: int = 0  # tokens the grammar forced, fed without a pass of their own
    # Each chosen (not forced) token's log-probability under the model's own scores before the
    # grammar masked them: how far the grammar bent the model (recorded by `ForwardLoop`).
    logprobs: list[float] = field(default_factory=list)


@dataclass(eq=False)
class Job:
    """One prompt waiting for its row; `done` once decoded (`row`) or failed (`error`)."""

    prompt: list[int]
    entries: tuple[AdapterEntry, ...]
    max_new_tokens: int
    schema: OutputSchema | None
    temperature: float = 0.0  # 0: greedy
    seed: int | None = None
    # The prompt's first tokens that are the same from call to call (a chat's turns before
    # its last user message), which the decoder may keep computed (`PrefixCache`); 0: none.
    prefix_len: int = 0
    done: bool = False
    row: Row | None = None
    error: BaseException | None = None

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(e.peft_name for e in self.entries)


# (the batch so far, the adapter sets in it, a queued job) -> whether the job may join.
Admits = Callable[[list[Job], set[tuple[str, ...]], Job], bool]


class BatchQueue:
    """Queued jobs and the one caller at a time that decodes them (`decode`: a batch -> its
    rows, in order)."""

    def __init__(
        self,
        decode: Callable[[list[Job]], list[Row]],
        admits: Admits,
        max_batch: int,
        window_s: float,
    ) -> None:
        self.decode = decode
        self.admits = admits
        self.max_batch = max_batch
        self.window_s = window_s
        self._cond = threading.Condition()
        self._pending: list[Job] = []
        self._busy = False

    def run(self, jobs: list[Job]) -> None:
        """Queue the jobs; run queued batches while this thread holds the model, else wait
        until another thread has run them."""
        with self._cond:
            self._pending.extend(jobs)
            while not all(j.done for j in jobs):
                if not self._busy:
                    self._busy = True
                    break
                self._cond.wait()
            else:
                return
        try:
            first = True
            while not all(j.done for j in jobs):
                if first and self.window_s > 0:
                    with self._cond:
                        short = len(self._pending) < self.max_batch
                    if short:  # let callers arriving at the same moment share this batch
                        time.sleep(self.window_s)
                first = False
                with self._cond:
                    batch = self._take_batch()
                self._run_batch(batch)
                with self._cond:
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the model (no batch runs meanwhile), e.g. to load or compose adapters."""
        with self._cond:
            while self._busy:
                self._cond.wait()
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _take_batch(self) -> list[Job]:
        """The next batch, oldest first, of the queued jobs `admits` lets in together."""
        batch: list[Job] = []
        keys: set[tuple[str, ...]] = set()
        for job in self._pending:
            if len(batch) == self.max_batch:
                break
            if not self.admits(batch, keys, job):
                continue
            batch.append(job)
            keys.add(job.key)
        for job in batch:
            self._pending.remove(job)
        return batch

    def _run_batch(self, batch: list[Job]) -> None:
        try:
            rows = self.decode(batch)
            for job, row in zip(batch, rows, strict=True):
                job.row = row
        except BaseException as err:  # every waiting caller must wake up, with the reason
            for job in batch:
                job.error = err
        finally:
            for job in batch:
                job.done = True
