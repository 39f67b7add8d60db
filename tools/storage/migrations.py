"""Versioned, explicit schema migrations for the product's own stores, on either engine.

Each store lists its `Migration`s in order (version 1, 2, ...). `migrate` applies the ones a
database has not seen, each in one transaction with its version recorded in `rmn_schema`, and
under an exclusive lock so that two processes starting at once (two server replicas) apply each
step once. A database newer than the code (a version this code does not know) is refused
rather than written to. `rmn db status` prints what `applied` returns.

A migration is DDL in SQLite's spelling (tools/storage/database.py rewrites the few words
Postgres spells otherwise) or a Python step for what SQL alone cannot say.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tools.storage.database import Connection, Database, DatabaseConfigError

__all__ = ["Migration", "applied", "migrate"]

_TABLE = """CREATE TABLE IF NOT EXISTS rmn_schema (
    store TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL,
    PRIMARY KEY (store, version))"""


@dataclass(frozen=True)
class Migration:
    """One step of a store's schema: `sql` (statements separated by `;`) and/or `step`."""

    version: int
    name: str
    sql: str = ""
    step: Callable[[Connection], None] | None = None


def _check(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migrations must be numbered 1..n in order, got {versions}")


def _create_table(db: Database) -> None:
    # Under a lock: Postgres's CREATE TABLE IF NOT EXISTS races with itself across sessions
    # (measured: a unique violation on pg_type when four threads started at once).
    with db.exclusive("rmn_schema") as con:
        con.execute(_TABLE)


def applied(db: Database, store: str) -> list[tuple[int, str, str]]:
    """(version, name, applied_at) of every step applied to `store`, oldest first."""
    _create_table(db)
    with db.connect() as con:
        rows = con.all(
            "SELECT version, name, applied_at FROM rmn_schema WHERE store = ? ORDER BY version",
            (store,),
        )
    return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]


def migrate(db: Database, store: str, migrations: Sequence[Migration]) -> int:
    """Apply `store`'s steps that `db` lacks; the schema version it is at afterwards."""
    _check(migrations)
    latest = len(migrations)
    _create_table(db)
    with db.connect() as con:
        row = con.one("SELECT MAX(version) FROM rmn_schema WHERE store = ?", (store,))
    current = int(row[0]) if row and row[0] is not None else 0
    if current > latest:
        raise DatabaseConfigError(
            f"the {store} tables in {db.describe()} are at schema version {current}, newer than "
            f"this version of RMN Copilot knows ({latest}); upgrade RMN Copilot",
            store=store,
        )
    for migration in migrations[current:]:
        with db.exclusive(f"rmn_schema.{store}") as con:
            done = con.one(
                "SELECT 1 FROM rmn_schema WHERE store = ? AND version = ?",
                (store, migration.version),
            )
            if done:  # another process applied it while this one waited for the lock
                continue
            if migration.sql:
                con.executescript(migration.sql)
            if migration.step is not None:
                migration.step(con)
            con.execute(
                "INSERT INTO rmn_schema (store, version, name, applied_at) VALUES (?, ?, ?, ?)",
                (store, migration.version, migration.name, datetime.now(UTC).isoformat()),
            )
    return latest
