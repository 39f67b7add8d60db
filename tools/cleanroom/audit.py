"""The clean room's append-only audit log: one JSON entry per query, answered or refused.

Embedded default: JSON Lines in `<data>/cleanroom/audit.jsonl`. With `RMN_DATABASE_URL` set the
entries go to the `cleanroom_audit` table of that database instead (tools/storage), so that
clean rooms on several machines keep one log; the entry is stored as the same JSON text."""

from __future__ import annotations

import fcntl
import json
import os
from collections import deque
from pathlib import Path
from typing import Any

from tools.storage import Database, Migration
from tools.storage.stores import configured_url, open_store

AUDIT_FILE = "audit.jsonl"
STORE = "audit"
MIGRATIONS = (
    Migration(
        1,
        "audit entries",
        "CREATE TABLE IF NOT EXISTS cleanroom_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "tenant TEXT, entry TEXT NOT NULL);"
        "CREATE INDEX IF NOT EXISTS cleanroom_audit_by_tenant ON cleanroom_audit (tenant, id)",
    ),
)


def audit_path(data_dir: Path) -> Path:
    """The log's file (the embedded default): `<data>/cleanroom/audit.jsonl`."""
    return Path(data_dir) / "cleanroom" / AUDIT_FILE


class AuditLog:
    """JSON Lines at `path`, or a table when a database URL is configured (`url`, else
    `RMN_DATABASE_URL`). File writers take an exclusive lock and write each entry in one call,
    so entries from concurrent processes never interleave; nothing is ever rewritten."""

    def __init__(self, path: Path, url: str | None = None) -> None:
        self.path = path
        self.url = configured_url(url)
        self._db: Database | None = None

    def _database(self) -> Database:
        if self._db is None:
            self._db = open_store(self.path, STORE, MIGRATIONS, self.url or "")
        return self._db

    def append(self, entry: dict[str, Any]) -> None:
        text = json.dumps(entry, default=str, sort_keys=True)
        if self.url is None:
            self._append_line(text)
            return
        tenant = entry.get("tenant")
        with self._database().transaction() as con:
            con.execute(
                "INSERT INTO cleanroom_audit (tenant, entry) VALUES (?, ?)",
                (None if tenant is None else str(tenant), text),
            )

    def _append_line(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (text + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def tail(self, n: int = 20, tenant: str | None = None) -> list[dict[str, Any]]:
        """The last `n` entries, oldest first, optionally only one tenant's."""
        if n <= 0:
            return []
        if self.url is not None:
            return self._tail_table(n, tenant)
        return self._tail_file(n, tenant)

    def _tail_table(self, n: int, tenant: str | None) -> list[dict[str, Any]]:
        where, args = ("WHERE tenant = ? ", (tenant,)) if tenant is not None else ("", ())
        with self._database().connect() as con:
            rows = con.all(
                f"SELECT entry FROM cleanroom_audit {where}ORDER BY id DESC LIMIT ?", (*args, n)
            )
        return [json.loads(r[0]) for r in reversed(rows)]

    def _tail_file(self, n: int, tenant: str | None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        last: deque[dict[str, Any]] = deque(maxlen=n)
        with self.path.open(encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            for line in fh:
                if not line.strip():
                    continue
                entry = json.loads(line)
                if tenant is None or entry.get("tenant") == tenant:
                    last.append(entry)
        return list(last)
