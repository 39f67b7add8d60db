"""API keys -> tenants, and per-key rate limits, for the HTTP graph API.

Keys come from the `RMN_API_KEYS` env var (`key:tenant,key:tenant`) or a keys file that stores
only SHA-256 digests. A fast digest is enough here: keys are long random tokens, not passwords,
so there is nothing to brute-force, and a digest lets a request's key be looked up directly.

from tools.tenants import KeyRing, add_key
key = add_key(Path("keys.json"), "acme")      # the plain key, shown once
ring = KeyRing.load(env="...", path=Path("keys.json"))
ring.tenant_for(key)                           # "acme"
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tools.errors import RMNError

ENV_VAR = "RMN_API_KEYS"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MIN_KEY_LENGTH = 16
KEY_PREFIX = "rmn_"
FILE_VERSION = 1

__all__ = [
    "ENV_VAR",
    "KeyConfigError",
    "KeyEntry",
    "KeyRing",
    "KeysFile",
    "RateLimiter",
    "add_key",
    "hash_key",
    "new_key",
]


class KeyConfigError(RMNError):
    """API keys that cannot be used as configured (syntax, short key, bad tenant, bad file)."""

    kind = "key_config"


class KeyEntry(BaseModel):
    """One key in a keys file: its digest, never the key itself."""

    model_config = ConfigDict(extra="forbid")

    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    tenant: str = Field(pattern=TENANT_PATTERN.pattern)
    hint: str = Field(description="the key's first characters, to tell keys apart")
    label: str | None = None
    created_at: datetime


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = FILE_VERSION
    keys: list[KeyEntry] = Field(default_factory=list)


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _check_tenant(tenant: str, where: str) -> None:
    if not TENANT_PATTERN.match(tenant):
        raise KeyConfigError(
            f"{where}: tenant {tenant!r} is not a valid id (lowercase letters, digits, '_' "
            "or '-', starting with a letter or digit, at most 64 characters)",
            tenant=tenant,
        )


def _check_key(key: str, where: str) -> None:
    if len(key) < MIN_KEY_LENGTH:
        raise KeyConfigError(
            f"{where}: an API key is {len(key)} characters; use at least {MIN_KEY_LENGTH} "
            "(`rmn keys add` makes one)",
        )
    if any(c.isspace() or c in ",:" for c in key):
        raise KeyConfigError(f"{where}: an API key contains whitespace, ',' or ':'")


def read_keys_file(path: Path) -> KeysFile:
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyConfigError(f"keys file {path} does not exist", path=str(path)) from None
    except OSError as err:
        raise KeyConfigError(f"keys file {path} cannot be read: {err}", path=str(path)) from None
    try:
        return KeysFile.model_validate_json(raw)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()
        )
        raise KeyConfigError(f"keys file {path} is invalid: {problems}", path=str(path)) from None


def _write_keys_file(path: Path, content: KeysFile) -> None:
    """Atomic replace, owner-only permissions: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(content.model_dump_json(indent=2) + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_key(path: Path, tenant: str, key: str | None = None, *, label: str | None = None) -> str:
    """Add a key for `tenant` to the keys file at `path` (created if missing) and return the
    plain key: the file keeps only its digest, so this is the one time it can be read."""
    _check_tenant(tenant, "add_key")
    key = key if key is not None else new_key()
    _check_key(key, "add_key")
    path = Path(path)
    content = read_keys_file(path) if path.exists() else KeysFile()
    digest = hash_key(key)
    if any(e.digest == digest for e in content.keys):
        raise KeyConfigError(f"that key is already in {path}", path=str(path))
    content.keys.append(
        KeyEntry(
            digest=digest,
            tenant=tenant,
            hint=key[: len(KEY_PREFIX) + 4],
            label=label,
            created_at=datetime.now(UTC),
        )
    )
    _write_keys_file(path, content)
    return key


def parse_env_keys(value: str) -> dict[str, str]:
    """`key:tenant,key:tenant` -> {digest: tenant}."""
    out: dict[str, str] = {}
    for n, item in enumerate(value.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        key, sep, tenant = item.rpartition(":")
        where = f"{ENV_VAR} entry {n}"
        if not sep or not key:
            raise KeyConfigError(f"{where} is not 'key:tenant'")
        key, tenant = key.strip(), tenant.strip()
        _check_key(key, where)
        _check_tenant(tenant, where)
        out[hash_key(key)] = tenant
    return out


class KeyRing:
    """Digest -> tenant. Empty means no keys are configured (the server then stays on loopback)."""

    def __init__(self, digests: Mapping[str, str] | None = None) -> None:
        self._tenants = dict(digests or {})

    @classmethod
    def from_keys(cls, keys: Mapping[str, str]) -> KeyRing:
        """Plain key -> tenant (tests, programmatic use)."""
        for key, tenant in keys.items():
            _check_key(key, "KeyRing.from_keys")
            _check_tenant(tenant, "KeyRing.from_keys")
        return cls({hash_key(k): t for k, t in keys.items()})

    @classmethod
    def load(cls, env: str | None = None, path: Path | None = None) -> KeyRing:
        """Keys from an env value (`RMN_API_KEYS` syntax) and/or a keys file; both may be given."""
        digests: dict[str, str] = {}
        if env:
            digests.update(parse_env_keys(env))
        if path is not None:
            for entry in read_keys_file(path).keys:
                if digests.get(entry.digest, entry.tenant) != entry.tenant:
                    raise KeyConfigError(
                        f"one key maps to two tenants ({digests[entry.digest]!r} in {ENV_VAR}, "
                        f"{entry.tenant!r} in {path})"
                    )
                digests[entry.digest] = entry.tenant
        return cls(digests)

    def __bool__(self) -> bool:
        return bool(self._tenants)

    def __len__(self) -> int:
        return len(self._tenants)

    def tenants(self) -> list[str]:
        return sorted(set(self._tenants.values()))

    def tenant_for(self, key: str | None) -> str | None:
        if not key:
            return None
        return self._tenants.get(hash_key(key))


class RateLimiter:
    """A token bucket per key: `rate` requests per second on average, bursts up to `burst`.
    `acquire` answers 0 when the request may go on, else the seconds until it may retry."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise KeyConfigError(f"rate limit needs rate > 0 and burst >= 1, got {rate}/{burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                self._evict_full(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def retry_after_header(self, wait: float) -> str:
        """Retry-After takes whole seconds; round up so a client that obeys it gets through."""
        return str(max(1, math.ceil(wait)))

    def _evict_full(self, now: float) -> None:
        # Buckets that have refilled carry no state worth keeping; dropping them bounds memory
        # when many distinct (possibly invalid) keys are seen.
        if len(self._buckets) <= self._max_keys:
            return
        full_after = self.burst / self.rate
        for key, (_, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[key]
