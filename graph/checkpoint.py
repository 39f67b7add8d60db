"""Where planning threads are checkpointed.

By default a SQLite file in the data directory (`<data>/checkpoints.sqlite`).
`RMN_DATABASE_URL` moves them with every other store (tools/storage): `postgresql://user:pass@
host/db` (needs the `langgraph-checkpoint-postgres` package) or `sqlite:///path/to/file.sqlite`.
`RMN_CHECKPOINT_URL`, when set, names a place for the checkpoints alone and wins.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver

from tools.errors import RMNError
from tools.paths import data_dir as default_data_dir
from tools.storage import ENV_URL as DATABASE_ENV_URL
from tools.storage.database import lock_id

ENV_URL = "RMN_CHECKPOINT_URL"
CHECKPOINT_FILE = "checkpoints.sqlite"
POSTGRES_PACKAGE = "langgraph-checkpoint-postgres"
SETUP_WAIT_S = 60.0


class CheckpointConfigError(RMNError):
    """A checkpoint store that cannot be opened as configured."""

    kind = "checkpoint_config"


def checkpoint_path(data_dir: Path | None = None) -> Path:
    return Path(data_dir if data_dir is not None else default_data_dir()) / CHECKPOINT_FILE


def sqlite_saver(path: Path) -> SqliteSaver:
    """A `SqliteSaver` on `path` (created with its tables), safe to share between threads."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The saver serializes its own use of the connection with a lock; other processes wait
        # on SQLite's file lock for up to `timeout` seconds.
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        saver = SqliteSaver(conn)
        saver.setup()
    except (OSError, sqlite3.Error) as err:
        raise CheckpointConfigError(
            f"cannot open the checkpoint database {path}: {err}", path=str(path)
        ) from None
    return saver


def postgres_saver(url: str) -> Any:
    """A `PostgresSaver` on `url`, its tables created. Imported only when asked for: the
    Postgres saver is an optional extra (`pip install -e ".[postgres]"`)."""
    try:
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg import Connection
        from psycopg.rows import dict_row
    except ImportError:
        raise CheckpointConfigError(
            f"{ENV_URL} points at Postgres, which needs the {POSTGRES_PACKAGE} package: "
            f"pip install {POSTGRES_PACKAGE}",
            package=POSTGRES_PACKAGE,
        ) from None
    try:
        conn = Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    except Exception as err:  # psycopg's OperationalError and friends
        raise CheckpointConfigError(f"cannot connect to the checkpoint database: {err}") from None
    saver = PostgresSaver(conn)
    _setup_alone(conn, saver)
    return saver


def _setup_alone(conn: Any, saver: Any) -> None:
    """`saver.setup()`, one process at a time: replicas starting together raced on its tables
    (UniqueViolation on `checkpoints` / `checkpoint_migrations`, seen in the replica tests).
    A session lock, tried rather than waited on: `setup()` builds an index CONCURRENTLY, which
    waits for every open transaction, so a session blocked in `pg_advisory_lock` deadlocked
    with it (measured: DeadlockDetected with six savers at once)."""
    lock = lock_id("langgraph.checkpoint.setup")
    deadline = time.monotonic() + SETUP_WAIT_S
    while not conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (lock,)).fetchone()["ok"]:
        if time.monotonic() > deadline:
            raise CheckpointConfigError(
                f"another process has held the checkpoint tables' setup for {SETUP_WAIT_S:.0f} s"
            )
        time.sleep(0.1)
    try:
        saver.setup()
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (lock,))


def default_checkpointer(data_dir: Path | None = None, url: str | None = None) -> Any:
    """The configured checkpointer: `url` (else `RMN_CHECKPOINT_URL`, else `RMN_DATABASE_URL`)
    when set, else SQLite in the data directory."""
    if url is None:
        url = os.environ.get(ENV_URL, "").strip() or os.environ.get(DATABASE_ENV_URL, "").strip()
    if not url:
        return sqlite_saver(checkpoint_path(data_dir))
    if url.startswith(("postgres://", "postgresql://")):
        return postgres_saver(url)
    if url.startswith("sqlite:///"):
        return sqlite_saver(Path(url.removeprefix("sqlite:///")))
    raise CheckpointConfigError(
        f"{ENV_URL} must start with postgresql://, postgres:// or sqlite:///; got {url[:32]!r}"
    )
