"""The server's thread and run store on the storage seam (graph/serving/store.py): SQLite files
written by earlier versions (the first layout, and `PRAGMA user_version=2`) migrate in place
with their rows kept, and a run lease is taken by one claimer only."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from graph.serving.store import _SCHEMA, MetaStore
from tools.storage import applied

V1 = """
CREATE TABLE threads (tenant TEXT NOT NULL, thread_id TEXT PRIMARY KEY, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, metadata TEXT NOT NULL, status TEXT NOT NULL);
CREATE INDEX threads_tenant ON threads (tenant, created_at);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, tenant TEXT NOT NULL,
    assistant_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    status TEXT NOT NULL, metadata TEXT NOT NULL, multitask_strategy TEXT NOT NULL, error TEXT);
CREATE INDEX runs_thread ON runs (tenant, thread_id, created_at);
INSERT INTO threads VALUES ('acme', 't1', '2024', '2024', '{"a": 1}', 'idle');
INSERT INTO runs VALUES ('r1', 't1', 'acme', 'x', '2024', '2024', 'success', '{}', 'reject', NULL);
"""


def _run(store: MetaStore, run_id: str, thread_id: str = "t1") -> None:
    store.insert_run(run_id=run_id, tenant="acme", thread_id=thread_id, assistant_id="x",
                     created_at="2025", metadata={}, multitask_strategy="enqueue", actor=None,
                     payload={"p": 1})  # fmt: skip


def test_a_first_layout_file_keeps_its_threads_under_their_old_ids(tmp_path: Path) -> None:
    path = tmp_path / "server.sqlite"
    with sqlite3.connect(path) as con:
        con.executescript(V1)
    store = MetaStore(path, url="")
    thread = store.thread("acme", "t1")
    assert thread is not None and thread["key"] == "t1" and thread["metadata"] == {"a": 1}
    assert store.runs("acme", "t1", 10, 0, None)[0]["run_id"] == "r1"
    _run(store, "r2")
    assert [r["run_id"] for r in store.runs("acme", "t1", 10, 0, None)] == ["r2", "r1"]
    assert [v for v, _, _ in applied(store.db, "server")] == [1, 2]


def test_a_version_2_file_migrates_in_place_and_twice_is_nothing(tmp_path: Path) -> None:
    path = tmp_path / "server.sqlite"
    with sqlite3.connect(path) as con:  # as the store wrote it before the storage seam
        con.executescript(_SCHEMA + ";PRAGMA user_version=2")
        con.execute(
            "INSERT INTO threads VALUES ('acme', 't1', 'acme.t1', '', '', '{}', 'idle', NULL)"
        )
    MetaStore(path, url="")
    store = MetaStore(path, url="")  # opened again: nothing left to apply
    assert store.thread("acme", "t1")["key"] == "acme.t1"  # type: ignore[index]
    assert store.insert_thread("acme", "t2", {}) and not store.insert_thread("acme", "t2", {})
    assert store.thread("acme", "t2")["key"] == "acme.t2"  # type: ignore[index]
    _run(store, "r3", "t2")
    assert [r["run_id"] for r in store.unfinished()] == ["r3"]
    assert store.delete_thread("acme", "t2") == 1 and store.unfinished() == []


def test_a_lapsed_run_is_claimed_once(tmp_path: Path) -> None:
    store = MetaStore(tmp_path / "server.sqlite", url="")
    store.insert_thread("acme", "t1", {})
    _run(store, "r1")
    first = store.claim("r1", "replica-a", 30)
    assert first is not None and first["owner"] == "replica-a" and first["attempt"] == 1
    assert store.claim("r1", "replica-b", 30) is None  # held: nobody else takes it
    assert store.renew("replica-a", -1) == {"r1"}  # a lease in the past: lapsed
    assert store.claimable() == ["r1"]
    second = store.claim("r1", "replica-b", 30)
    assert second is not None and second["attempt"] == 2
    assert not store.set_run("r1", "success", owner="replica-a")  # no longer a's to finish
    assert store.set_run("r1", "success", owner="replica-b")
    assert store.run("r1")["owner"] is None and store.claimable() == []  # type: ignore[index]


def test_a_database_opens_while_another_connection_holds_a_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug: opening a store switched the file to WAL on every open, and the switch needs the
    file to itself; while another connection held a lock it failed with "database is locked"
    (one of 12 threads opening the privacy ledger at once), and the open with it. The store
    now opens in rollback mode then, and switches on a later open."""
    import tools.storage.database as database

    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "store.sqlite"
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("CREATE TABLE t (i INTEGER)")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # a shared lock, in rollback mode
    db = database.SqliteDatabase(path)
    with db.connect() as con:
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    reader.execute("COMMIT")
    reader.close()
    database.SqliteDatabase(path)
    with db.connect() as con:
        assert str(con.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
