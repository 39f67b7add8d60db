"""Threads' owners and runs of the HTTP graph API, on the storage seam (tools/storage): a SQLite
file by default (`<state_dir>/server.sqlite`), PostgreSQL when `RMN_DATABASE_URL` (or the
settings' `database_url`) names one, so a restart keeps them and several replicas share them.
The graph's state is not here: it lives in the checkpointer.

A thread is named by its tenant and its id: two tenants may each have a thread of the same id
(nothing tells a tenant that another one uses an id). Its checkpoints are kept under its `key`,
`<tenant>.<thread id>`. A run keeps what it was asked (`payload`: input or answer, context,
options) until it ends, so a server that dies can run it again on the next start.

Replicas (Postgres only): a run is held by one server process at a time, its `owner`, until
`lease_until` (seconds since the epoch, on the database's clock, so replicas on machines whose
clocks differ agree); the owner renews the lease while it lives (`renew`), another process takes
a run only when its lease has lapsed (`claim`, one atomic UPDATE), and `attempt` counts the
claims. The runs of one thread go one at a time in the order they were stored (`seq`).

Deleted rows are overwritten on disk (`secure_delete`) and the write-ahead log is emptied after
a thread is deleted: what a user typed does not linger in the file's free pages.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graph.serving.errors import ConflictError
from graph.serving.schemas import dumps, now
from tools.storage import Connection, Migration, Row, migrate, open_database

STORE = "server"
FINISHED = ("success", "error", "interrupted", "timeout")
UNFINISHED = "status IN ('pending', 'running')"

__all__ = ["FINISHED", "MetaStore", "thread_key"]

_THREADS = """CREATE TABLE IF NOT EXISTS threads (
    tenant TEXT NOT NULL, thread_id TEXT NOT NULL, key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, metadata TEXT NOT NULL,
    status TEXT NOT NULL, started_by TEXT, PRIMARY KEY (tenant, thread_id))"""

_SCHEMA = f"""
{_THREADS};
CREATE INDEX IF NOT EXISTS threads_tenant ON threads (tenant, created_at);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, tenant TEXT NOT NULL,
    assistant_id TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, status TEXT NOT NULL, metadata TEXT NOT NULL,
    multitask_strategy TEXT NOT NULL, error TEXT, actor TEXT, payload TEXT,
    start_checkpoint TEXT);
CREATE INDEX IF NOT EXISTS runs_thread ON runs (tenant, thread_id, created_at)
"""

# Version 1 of the SQLite file (before tenants had their own thread ids) named threads by id
# alone and kept checkpoints under that id: those threads keep their id as their key; runs gain
# who sent them and what they asked.
_FROM_V1 = f"""
ALTER TABLE threads RENAME TO threads_v1;
DROP INDEX IF EXISTS threads_tenant;
{_THREADS};
INSERT INTO threads SELECT tenant, thread_id, thread_id, created_at, updated_at,
    metadata, status, NULL FROM threads_v1;
DROP TABLE threads_v1;
ALTER TABLE runs ADD COLUMN actor TEXT;
ALTER TABLE runs ADD COLUMN payload TEXT;
ALTER TABLE runs ADD COLUMN start_checkpoint TEXT;
DROP INDEX IF EXISTS runs_thread
"""


def _tables(con: Connection) -> None:
    """Migration 1: today's tables. A SQLite file of the first layout (`PRAGMA user_version`
    below 2, threads without `key`) is brought to it first; one already at it is left as is."""
    if con.dialect == "sqlite":
        columns = {r[1] for r in con.all("PRAGMA table_info(threads)")}
        if columns and "key" not in columns:
            con.executescript(_FROM_V1)
    con.executescript(_SCHEMA)


def _leases(con: Connection) -> None:
    """Migration 2: who holds a run and until when, how many times it was claimed, and the
    order runs were stored in (SQLite has it already: `rowid`)."""
    con.executescript(
        "ALTER TABLE runs ADD COLUMN owner TEXT; ALTER TABLE runs ADD COLUMN lease_until REAL;"
        "ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX IF NOT EXISTS runs_status ON runs (status, lease_until)"
    )
    if con.dialect == "postgres":
        con.execute("ALTER TABLE runs ADD COLUMN seq BIGSERIAL")


MIGRATIONS = (
    Migration(1, "threads and runs", step=_tables),
    Migration(2, "run leases", step=_leases),
)

# Seconds since the epoch on the database's clock.
_CLOCK = {
    "postgres": "extract(epoch from clock_timestamp())",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


def thread_key(tenant: str, thread_id: str) -> str:
    """Where a thread's checkpoints are kept: its tenant and id (tenant ids have no dot)."""
    return f"{tenant}.{thread_id}"


class MetaStore:
    """Threads (owner, key, metadata, status, who started its plan) and runs."""

    def __init__(self, path: Path, url: str | None = None) -> None:
        # Kept open on SQLite: the server calls its store on every request.
        self.db = open_database(Path(path), url, keep_open=True)
        migrate(self.db, STORE, MIGRATIONS)
        # Several processes may share a Postgres database; a SQLite file is one process's.
        self.shared = self.db.dialect == "postgres"
        self._seq = "seq" if self.shared else "rowid"
        self._clock = _CLOCK[self.db.dialect]

    def close(self) -> None:
        """Let go of the SQLite connection kept open; Postgres pools per process."""
        self.db.close()

    def describe(self) -> str:
        return self.db.describe()

    def _one(self, sql: str, args: Sequence[Any] = ()) -> dict[str, Any] | None:
        with self.db.connect() as con:
            row = con.one(sql, args)
        return _row(row) if row else None

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.db.connect() as con:
            return [_row(r) for r in con.all(sql, args)]

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self.db.connect() as con:
            return int(con.execute(sql, args).rowcount)

    # threads

    def insert_thread(self, tenant: str, thread_id: str, metadata: dict[str, Any]) -> bool:
        """False when the tenant already has a thread of that id."""
        stamp = now()
        return bool(
            self._exec(
                "INSERT INTO threads (tenant, thread_id, key, created_at, updated_at, metadata, "
                "status, started_by) VALUES (?, ?, ?, ?, ?, ?, 'idle', NULL) "
                "ON CONFLICT DO NOTHING",
                (tenant, thread_id, thread_key(tenant, thread_id), stamp, stamp, dumps(metadata)),
            )
        )

    def thread(self, tenant: str, thread_id: str) -> dict[str, Any] | None:
        return self._one(
            "SELECT * FROM threads WHERE tenant = ? AND thread_id = ?", (tenant, thread_id)
        )

    def threads(self, tenant: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM threads WHERE tenant = ?", (tenant,))

    def count_threads(self, tenant: str) -> int:
        with self.db.connect() as con:
            row = con.one("SELECT count(*) FROM threads WHERE tenant = ?", (tenant,))
        return int(row[0]) if row else 0

    def set_thread(
        self,
        key: str,
        *,
        status: str | None = None,
        metadata: dict[str, Any] | None = None,
        started_by: str | None = None,
    ) -> None:
        for column, value in (
            ("status", status),
            ("metadata", dumps(metadata) if metadata is not None else None),
            ("started_by", started_by),
        ):
            if value is not None:
                self._exec(
                    f"UPDATE threads SET {column} = ?, updated_at = ? WHERE key = ?",
                    (value, now(), key),
                )

    def delete_thread(self, tenant: str, thread_id: str) -> int:
        """The thread and its runs; answers the runs deleted. Their bytes are overwritten and
        the write-ahead log emptied."""
        with self.db.transaction() as con:
            runs = con.execute(
                "DELETE FROM runs WHERE tenant = ? AND thread_id = ?", (tenant, thread_id)
            ).rowcount
            con.execute(
                "DELETE FROM threads WHERE tenant = ? AND thread_id = ?", (tenant, thread_id)
            )
        with self.db.connect() as con:
            self.db.erased(con)
        return int(runs)

    def delete_key(self, key: str) -> int:
        """The thread kept under `key` and its runs (a thread deleted outside the server, by
        `rmn threads delete`); answers the runs deleted."""
        row = self._one("SELECT tenant, thread_id FROM threads WHERE key = ?", (key,))
        return self.delete_thread(row["tenant"], row["thread_id"]) if row else 0

    # runs

    def insert_run(
        self,
        *,
        run_id: str,
        tenant: str,
        thread_id: str,
        assistant_id: str,
        created_at: str,
        metadata: dict[str, Any],
        multitask_strategy: str,
        actor: str | None,
        payload: dict[str, Any],
        owner: str | None = None,
        lease_s: float = 0.0,
    ) -> bool:
        """Store a new run, `pending`. With an `owner` (replicas), under the thread's lock: a
        run with `multitask_strategy` `reject` is refused (409) while another run of the thread
        is unfinished on any replica, and the run is held by `owner` for `lease_s`. Answers
        whether it may start now: no earlier run of its thread is unfinished."""
        args = (run_id, thread_id, tenant, assistant_id, created_at, created_at, dumps(metadata),
                multitask_strategy, actor, dumps(payload))  # fmt: skip
        columns = ("run_id, thread_id, tenant, assistant_id, created_at, updated_at, status, "
                   "metadata, multitask_strategy, actor, payload")  # fmt: skip
        if owner is None:
            self._exec(
                f"INSERT INTO runs ({columns}) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
                args,
            )
            return True
        with self.db.exclusive(f"{STORE}.thread.{tenant}.{thread_id}") as con:
            busy = self._unfinished_on(con, tenant, thread_id)
            if busy and multitask_strategy == "reject":
                raise ConflictError(
                    f"thread {thread_id} already has a run in progress; wait for it, or send "
                    "multitask_strategy='enqueue'",
                    thread_id=thread_id,
                )
            con.execute(
                f"INSERT INTO runs ({columns}, owner, lease_until, attempt) VALUES "
                f"(?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, {self._clock} + ?, 1)",
                (*args, owner, lease_s),
            )
        return not busy

    def _unfinished_on(self, con: Connection, tenant: str, thread_id: str) -> bool:
        row = con.one(
            f"SELECT 1 FROM runs WHERE tenant = ? AND thread_id = ? AND {UNFINISHED} LIMIT 1",
            (tenant, thread_id),
        )
        return row is not None

    def set_run(
        self,
        run_id: str,
        status: str,
        error: str | None = None,
        *,
        start_checkpoint: str | None = None,
        owner: str | None = None,
    ) -> bool:
        """A run's new status; a run that ended forgets what it was asked (it is in the
        thread's checkpoints, and need not be kept twice) and who held it. With an `owner`,
        only while it still holds the run: False when another replica has taken it."""
        held = " AND owner = ?" if owner is not None else ""
        extra = (owner,) if owner is not None else ()
        if status in FINISHED:
            return bool(
                self._exec(
                    "UPDATE runs SET status = ?, error = ?, updated_at = ?, payload = NULL, "
                    f"owner = NULL, lease_until = NULL WHERE run_id = ?{held}",
                    (status, error, now(), run_id, *extra),
                )
            )
        return bool(
            self._exec(
                "UPDATE runs SET status = ?, error = ?, updated_at = ?, "
                f"start_checkpoint = coalesce(?, start_checkpoint) WHERE run_id = ?{held}",
                (status, error, now(), start_checkpoint, run_id, *extra),
            )
        )

    def run(self, run_id: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM runs WHERE run_id = ?", (run_id,))

    def runs(
        self, tenant: str, thread_id: str, limit: int, offset: int, status: str | None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs WHERE tenant = ? AND thread_id = ?"
        args: tuple[Any, ...] = (tenant, thread_id)
        if status:
            sql += " AND status = ?"
            args += (status,)
        sql += f" ORDER BY created_at DESC, {self._seq} DESC LIMIT ? OFFSET ?"
        return self._all(sql, (*args, limit, offset))

    def delete_run(self, run_id: str) -> None:
        self._exec("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def unfinished(self) -> list[dict[str, Any]]:
        """Runs the last process did not finish (queued, running when it stopped or died),
        oldest first: the order they were taken in."""
        return self._all(f"SELECT * FROM runs WHERE {UNFINISHED} ORDER BY created_at, {self._seq}")

    # runs held by replicas (a shared database)

    def busy_key(self, key: str) -> bool:
        """Whether the thread kept under `key` has a run unfinished, on any replica."""
        row = self._one(
            "SELECT 1 AS busy FROM runs r JOIN threads t ON t.tenant = r.tenant AND "
            f"t.thread_id = r.thread_id WHERE t.key = ? AND r.{UNFINISHED} LIMIT 1",
            (key,),
        )
        return row is not None

    def first_unfinished(self, tenant: str, thread_id: str) -> str | None:
        """The run of the thread that goes next (the earliest stored of its unfinished runs)."""
        row = self._one(
            f"SELECT run_id FROM runs WHERE tenant = ? AND thread_id = ? AND {UNFINISHED} "
            f"ORDER BY {self._seq} LIMIT 1",
            (tenant, thread_id),
        )
        return row["run_id"] if row else None

    def renew(self, owner: str, lease_s: float) -> set[str]:
        """Extend `owner`'s leases on its unfinished runs; answers the runs it still holds."""
        with self.db.connect() as con:
            con.execute(
                f"UPDATE runs SET lease_until = {self._clock} + ? WHERE owner = ? AND {UNFINISHED}",
                (lease_s, owner),
            )
            rows = con.all(f"SELECT run_id FROM runs WHERE owner = ? AND {UNFINISHED}", (owner,))
        return {r[0] for r in rows}

    def claimable(self, limit: int = 16) -> list[str]:
        """Unfinished runs nobody holds (their holder died, or stopped), oldest first. A cheap
        query on the `runs_status` index, made every couple of seconds by every replica."""
        rows = self._all(
            f"SELECT run_id FROM runs WHERE {UNFINISHED} AND "
            f"(owner IS NULL OR lease_until < {self._clock}) ORDER BY {self._seq} LIMIT ?",
            (limit,),
        )
        return [r["run_id"] for r in rows]

    def claim(self, run_id: str, owner: str, lease_s: float) -> dict[str, Any] | None:
        """Take the run for `owner` if nobody holds it: one atomic UPDATE, so of two replicas
        claiming at once exactly one gets it. Answers the run as claimed, or None."""
        taken = self._exec(
            f"UPDATE runs SET owner = ?, lease_until = {self._clock} + ?, attempt = attempt + 1 "
            f"WHERE run_id = ? AND {UNFINISHED} AND "
            f"(owner IS NULL OR lease_until < {self._clock})",
            (owner, lease_s, run_id),
        )
        return self.run(run_id) if taken else None

    def release(self, owner: str) -> None:
        """Let go of every run `owner` holds (a replica stopping): another takes them at once."""
        self._exec(
            f"UPDATE runs SET owner = NULL, lease_until = NULL WHERE owner = ? AND {UNFINISHED}",
            (owner,),
        )


def _row(row: Row) -> dict[str, Any]:
    out = dict(zip(row.keys(), row, strict=True))
    for name in ("metadata", "payload"):
        if out.get(name) is not None:
            out[name] = json.loads(out[name])
    return out
