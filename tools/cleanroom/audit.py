"""The clean room's append-only audit log: one JSON line per query, answered or refused."""

from __future__ import annotations

import fcntl
import json
import os
from collections import deque
from pathlib import Path
from typing import Any


class AuditLog:
    """JSON Lines at `path`. Writers take an exclusive lock and write each entry in one call,
    so entries from concurrent processes never interleave; nothing is ever rewritten."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps(entry, default=str, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # closing releases the lock

    def tail(self, n: int = 20, tenant: str | None = None) -> list[dict[str, Any]]:
        """The last `n` entries, oldest first, optionally only one tenant's."""
        if not self.path.exists() or n <= 0:
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
