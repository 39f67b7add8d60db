"""Several `rmn serve` replicas on one PostgreSQL database (`RMN_DATABASE_URL`): what each
replica does besides serving its own requests (`GraphServer` calls it; graph/serving/runs.py).

- A run is held by the replica that stored it (`owner`, `lease_until` in the run store) and
  executes only there. Every `TICK_S` the holder renews the leases of all its unfinished runs
  with one UPDATE; a run whose lease lapsed (its holder was killed, or lost its database) is
  claimed by another replica with one atomic `UPDATE ... WHERE owner IS NULL OR lease_until <
  now`, so exactly one claimer gets it, and taken up from its thread's last checkpoint as a
  restarted server does (`GraphServer._recover`). A replica that stops lets go of its runs at
  once; a replica that finds, when it renews, that it no longer holds a run (it stalled for a
  whole lease and another replica claimed it) stops that run between steps, and a run's end is
  recorded only by its holder: a run never completes twice.
- The runs of one thread go one at a time, in the order they were stored, whichever replica
  they came through: a run stored behind another unfinished run of its thread waits
  (`parked`) until it is the thread's earliest unfinished run; `reject` runs are refused (409)
  while the thread has one, on any replica (the check and the insert hold the thread's advisory
  lock, so two replicas cannot both pass it).
- `join`, `wait` on an existing run and the join stream of a run another replica executes poll
  the shared store until it ends and answer from the shared checkpointer: its final values, not
  its live events (streaming across replicas is not done).

Lease and tick: a lease of 12 s renewed every 2 s survives five missed renewals (a replica busy
in a long step still renews: the tick has its own thread), and a killed replica's run is taken
up 12-14 s after its last renewal. Each tick costs a replica three small queries (renew, parked
runs' turn, lapsed runs), on the `runs_status` index.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

log = logging.getLogger("rmn.server")

LEASE_S = 12.0
TICK_S = 2.0
# How often a replica answering `join` for another replica's run looks at the store.
REMOTE_POLL_S = 0.5

__all__ = ["LEASE_S", "REMOTE_POLL_S", "TICK_S", "Ticker", "replica_id"]


def replica_id() -> str:
    """This process's name as a run holder: host and pid for people, a random part so that a
    restarted process with a reused pid is someone else."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Ticker:
    """Calls `tick()` every `interval` seconds on a thread of its own until `stop()`; a tick
    that fails is logged and the next one tries again (the database may be away a moment)."""

    def __init__(self, interval: float, tick: Callable[[], None]) -> None:
        self._interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="replica-tick", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tick()
            except Exception:
                log.exception("replica tick failed; trying again in %.0f s", self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
