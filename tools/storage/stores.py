"""What the product's stores (privacy ledger, audit log, decisions, feedback) share on top of the
seam: opening their database with their migrations applied, and knowing, without creating an
empty SQLite file, whether there can be anything to read.

A store keeps its own SQLite file (a `path` argument, as before) by default; with
`RMN_DATABASE_URL` set the path is ignored and the store's tables live in that database.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tools.storage.database import Database, database_url, open_database, redact_url
from tools.storage.migrations import Migration, migrate

__all__ = ["configured_url", "location", "open_store", "store_exists"]


def configured_url(url: str | None = None) -> str | None:
    """`url` when given ("" means the embedded default), else `RMN_DATABASE_URL`."""
    url = database_url() if url is None else url
    return url or None


def store_exists(sqlite_path: Path, url: str | None = None) -> bool:
    """Whether a store may hold rows: always with a database URL (the data directory says
    nothing about what that database holds), else whether its SQLite file is there. Readers
    ask first so that "nothing yet" never creates an empty file."""
    return configured_url(url) is not None or Path(sqlite_path).is_file()


def location(sqlite_path: Path, url: str | None = None) -> str:
    """Where a store lives, for messages: its file, or the configured URL without password."""
    given = configured_url(url)
    return redact_url(given) if given else str(sqlite_path)


def open_store(
    sqlite_path: Path, store: str, migrations: Sequence[Migration], url: str | None = None
) -> Database:
    """The store's database with its migrations applied (each once, across processes)."""
    db = open_database(Path(sqlite_path), url)
    migrate(db, store, migrations)
    return db
