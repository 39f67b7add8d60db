"""Threads' owners and runs of the HTTP graph API, in SQLite (`<state_dir>/server.sqlite`), so a
restart keeps them. The graph's state is not here: it lives in the checkpointer.

A thread is named by its tenant and its id: two tenants may each have a thread of the same id
(nothing tells a tenant that another one uses an id). Its checkpoints are kept under its `key`,
`<tenant>.<thread id>`. A run keeps what it was asked (`payload`: input or answer, context,
options) until it ends, so a server that dies can run it again on the next start.

Deleted rows are overwritten on disk (`secure_delete`) and the write-ahead log is emptied after
a thread is deleted: what a user typed does not linger in the file's free pages.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from graph.serving.schemas import dumps, now

SCHEMA_VERSION = 2
FINISHED = ("success", "error", "interrupted", "timeout")

__all__ = ["FINISHED", "MetaStore", "thread_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS threads (
    tenant TEXT NOT NULL, thread_id TEXT NOT NULL, key TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, metadata TEXT NOT NULL,
    status TEXT NOT NULL, started_by TEXT, PRIMARY KEY (tenant, thread_id));
CREATE INDEX IF NOT EXISTS threads_tenant ON threads (tenant, created_at);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, tenant TEXT NOT NULL,
    assistant_id TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, status TEXT NOT NULL, metadata TEXT NOT NULL,
    multitask_strategy TEXT NOT NULL, error TEXT, actor TEXT, payload TEXT,
    start_checkpoint TEXT);
CREATE INDEX IF NOT EXISTS runs_thread ON runs (tenant, thread_id, created_at);
"""


def thread_key(tenant: str, thread_id: str) -> str:
    """Where a thread's checkpoints are kept: its tenant and id (tenant ids have no dot)."""
    return f"{tenant}.{thread_id}"


class MetaStore:
    """Threads (owner, key, metadata, status, who started its plan) and runs in SQLite."""

    def __init__(self, path: Path) -> None:
        self._con = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._con.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA secure_delete=ON")
            version = self._con.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION and self._has_table("threads"):
                self._migrate_v1()
            self._con.executescript(_SCHEMA)
            self._con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _has_table(self, name: str) -> bool:
        row = self._con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def _migrate_v1(self) -> None:
        """Version 1 named threads by id alone and kept checkpoints under that id: those
        threads keep their id as their key; runs gain who sent them and what they asked."""
        columns = {r[1] for r in self._con.execute("PRAGMA table_info(threads)")}
        if "key" in columns:
            return
        self._con.executescript(
            """
            BEGIN;
            ALTER TABLE threads RENAME TO threads_v1;
            DROP INDEX IF EXISTS threads_tenant;
            CREATE TABLE threads (
                tenant TEXT NOT NULL, thread_id TEXT NOT NULL, key TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL, metadata TEXT NOT NULL,
                status TEXT NOT NULL, started_by TEXT, PRIMARY KEY (tenant, thread_id));
            INSERT INTO threads SELECT tenant, thread_id, thread_id, created_at, updated_at,
                metadata, status, NULL FROM threads_v1;
            DROP TABLE threads_v1;
            ALTER TABLE runs ADD COLUMN actor TEXT;
            ALTER TABLE runs ADD COLUMN payload TEXT;
            ALTER TABLE runs ADD COLUMN start_checkpoint TEXT;
            DROP INDEX IF EXISTS runs_thread;
            COMMIT;
            """
        )

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def _one(self, sql: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
        with self._lock:
            row = self._con.execute(sql, args).fetchone()
        return _row(row) if row else None

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._lock:
            return [_row(r) for r in self._con.execute(sql, args).fetchall()]

    def _exec(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            return self._con.execute(sql, args).rowcount

    # threads

    def insert_thread(self, tenant: str, thread_id: str, metadata: dict[str, Any]) -> bool:
        """False when the tenant already has a thread of that id."""
        stamp = now()
        try:
            self._exec(
                "INSERT INTO threads VALUES (?, ?, ?, ?, ?, ?, 'idle', NULL)",
                (tenant, thread_id, thread_key(tenant, thread_id), stamp, stamp, dumps(metadata)),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    def thread(self, tenant: str, thread_id: str) -> dict[str, Any] | None:
        return self._one(
            "SELECT * FROM threads WHERE tenant = ? AND thread_id = ?", (tenant, thread_id)
        )

    def threads(self, tenant: str) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM threads WHERE tenant = ?", (tenant,))

    def count_threads(self, tenant: str) -> int:
        with self._lock:
            row = self._con.execute(
                "SELECT count(*) FROM threads WHERE tenant = ?", (tenant,)
            ).fetchone()
        return int(row[0])

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
        with self._lock:
            runs = self._con.execute(
                "DELETE FROM runs WHERE tenant = ? AND thread_id = ?", (tenant, thread_id)
            ).rowcount
            self._con.execute(
                "DELETE FROM threads WHERE tenant = ? AND thread_id = ?", (tenant, thread_id)
            )
            self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return runs

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
    ) -> None:
        self._exec(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, NULL, ?, ?, NULL)",
            (
                run_id,
                thread_id,
                tenant,
                assistant_id,
                created_at,
                created_at,
                dumps(metadata),
                multitask_strategy,
                actor,
                dumps(payload),
            ),
        )

    def set_run(
        self,
        run_id: str,
        status: str,
        error: str | None = None,
        *,
        start_checkpoint: str | None = None,
    ) -> None:
        """A run's new status; a run that ended forgets what it was asked (it is in the
        thread's checkpoints, and need not be kept twice)."""
        if status in FINISHED:
            self._exec(
                "UPDATE runs SET status = ?, error = ?, updated_at = ?, payload = NULL "
                "WHERE run_id = ?",
                (status, error, now(), run_id),
            )
            return
        self._exec(
            "UPDATE runs SET status = ?, error = ?, updated_at = ?, "
            "start_checkpoint = coalesce(?, start_checkpoint) WHERE run_id = ?",
            (status, error, now(), start_checkpoint, run_id),
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
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
        return self._all(sql, (*args, limit, offset))

    def delete_run(self, run_id: str) -> None:
        self._exec("DELETE FROM runs WHERE run_id = ?", (run_id,))

    def unfinished(self) -> list[dict[str, Any]]:
        """Runs the last process did not finish (queued, running when it stopped or died),
        oldest first: the order they were taken in."""
        return self._all(
            "SELECT * FROM runs WHERE status IN ('pending', 'running') ORDER BY created_at, rowid",
            (),
        )


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for name in ("metadata", "payload"):
        if out.get(name) is not None:
            out[name] = json.loads(out[name])
    return out
