"""API keys -> callers (tenant, role, key id), and the gate every request passes: the tenant's
rate limit, the limit on failed key attempts per client address, loopback-only serving when no
keys are configured.

Keys come from the `RMN_API_KEYS` env var (`key:tenant[:role],...`) or a keys file that stores
only SHA-256 digests. A fast digest is enough here: keys are long random tokens, not passwords,
so there is nothing to brute-force, and a digest lets a request's key be looked up directly.
A key's id (`key-` and 12 hex digits of its digest) names it in run records and decisions;
the key itself is never stored or shown again.

from graph.serving.auth import KeyRing, add_key
key = add_key(Path("keys.json"), "acme", role="approver")  # the plain key, shown once
ring = KeyRing.load(env="...", path=Path("keys.json"))
ring.caller(key)             # Caller(tenant="acme", role="approver", key_id="key-…")
authenticate(ring, key, open_tenant="acme")  # the same, or UnauthorizedError (401)

`authenticate` is the one rule from a key to a caller: `rmn serve`'s gate uses it, and so does
the auth hook of a LangGraph server (Aegra, `langgraph dev`) in graph/platform_auth.py.
"""

from __future__ import annotations

import hashlib
import ipaddress
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
from typing import get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from graph.serving.errors import RateLimitedError, UnauthorizedError
from graph.serving.policy import Caller, Role
from graph.serving.schemas import problems
from graph.serving.settings import ServerSettings
from tools.errors import AccessDeniedError, RMNError

ENV_VAR = "RMN_API_KEYS"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MIN_KEY_LENGTH = 16
KEY_PREFIX = "rmn_"
FILE_VERSION = 1

__all__ = [
    "ENV_VAR",
    "AuthLockedError",
    "Gatekeeper",
    "KeyConfigError",
    "KeyEntry",
    "KeyRing",
    "KeysFile",
    "RateLimiter",
    "add_key",
    "authenticate",
    "check_tenant",
    "hash_key",
    "is_loopback",
    "key_id",
    "new_key",
    "read_keys_file",
]


class KeyConfigError(RMNError):
    """API keys that cannot be used as configured (syntax, short key, bad tenant, bad file)."""

    kind = "key_config"


class AuthLockedError(RateLimitedError):
    """Too many wrong keys from one client address: its key attempts wait a while."""

    kind = "auth_locked"


class KeyEntry(BaseModel):
    """One key in a keys file: its digest, never the key itself."""

    model_config = ConfigDict(extra="forbid")

    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    tenant: str = Field(pattern=TENANT_PATTERN.pattern)
    # Keys written before roles existed could do everything; they keep doing it.
    role: Role = "admin"
    hint: str = Field(description="the key's first characters, to tell keys apart")
    label: str | None = None
    created_at: datetime


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = FILE_VERSION
    keys: list[KeyEntry] = Field(default_factory=list)


def is_loopback(host: str | None) -> bool:
    """Whether `host` (a name or an address) is this machine: where a server with no keys
    may listen, and the only clients it answers."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id(digest: str) -> str:
    """The name a key goes by in run records and decisions: 48 bits of its digest, enough to
    tell a tenant's keys apart and no help in guessing the key."""
    return "key-" + digest.removeprefix("sha256:")[:12]


def new_key() -> str:
    """A fresh random key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_tenant(tenant: str, where: str) -> None:
    if not TENANT_PATTERN.match(tenant):
        raise KeyConfigError(
            f"{where}: tenant {tenant!r} is not a valid id (lowercase letters, digits, '_' "
            "or '-', starting with a letter or digit, at most 64 characters)",
            tenant=tenant,
        )


def _check_role(role: str, where: str) -> Role:
    allowed = get_args(Role)
    if role not in allowed:
        raise KeyConfigError(
            f"{where}: role {role!r} is not one of {', '.join(allowed)}", role=role
        )
    return role  # type: ignore[return-value]


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
        raise KeyConfigError(
            f"keys file {path} is invalid: {problems(err.errors())}", path=str(path)
        ) from None


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


def add_key(
    path: Path,
    tenant: str,
    key: str | None = None,
    *,
    label: str | None = None,
    role: str = "admin",
) -> str:
    """Add a key for `tenant` with `role` to the keys file at `path` (created if missing) and
    return the plain key: the file keeps only its digest, so this is the one time it can be
    read."""
    check_tenant(tenant, "add_key")
    checked_role = _check_role(role, "add_key")
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
            role=checked_role,
            hint=key[: len(KEY_PREFIX) + 4],
            label=label,
            created_at=datetime.now(UTC),
        )
    )
    _write_keys_file(path, content)
    return key


def parse_env_keys(value: str) -> dict[str, Caller]:
    """`key:tenant[:role],...` -> {digest: caller}; a key without a role is an admin."""
    out: dict[str, Caller] = {}
    for n, item in enumerate(value.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        where = f"{ENV_VAR} entry {n}"
        parts = [p.strip() for p in item.split(":")]
        if len(parts) not in (2, 3) or not parts[0]:
            raise KeyConfigError(f"{where} is not 'key:tenant' or 'key:tenant:role'")
        key, tenant = parts[0], parts[1]
        _check_key(key, where)
        check_tenant(tenant, where)
        role = _check_role(parts[2] if len(parts) == 3 else "admin", where)
        digest = hash_key(key)
        out[digest] = Caller(tenant=tenant, role=role, key_id=key_id(digest))
    return out


class KeyRing:
    """Digest -> caller (tenant, role, key id). Empty means no keys are configured (the server
    then stays on loopback)."""

    def __init__(self, callers: Mapping[str, Caller] | None = None) -> None:
        self._callers = dict(callers or {})

    @classmethod
    def from_keys(cls, keys: Mapping[str, str]) -> KeyRing:
        """Plain key -> `tenant` or `tenant:role` (tests, programmatic use)."""
        return cls(parse_env_keys(",".join(f"{k}:{v}" for k, v in keys.items())))

    @classmethod
    def load(cls, env: str | None = None, path: Path | None = None) -> KeyRing:
        """Keys from an env value (`RMN_API_KEYS` syntax) and/or a keys file; both may be given."""
        callers: dict[str, Caller] = {}
        if env:
            callers.update(parse_env_keys(env))
        if path is not None:
            for entry in read_keys_file(path).keys:
                known = callers.get(entry.digest)
                if known is not None and known.tenant != entry.tenant:
                    raise KeyConfigError(
                        f"one key maps to two tenants ({known.tenant!r} in {ENV_VAR}, "
                        f"{entry.tenant!r} in {path})"
                    )
                callers[entry.digest] = Caller(
                    tenant=entry.tenant,
                    role=entry.role,
                    key_id=key_id(entry.digest),
                    label=entry.label,
                )
        return cls(callers)

    def __bool__(self) -> bool:
        return bool(self._callers)

    def __len__(self) -> int:
        return len(self._callers)

    def tenants(self) -> list[str]:
        return sorted({c.tenant for c in self._callers.values()})

    def caller(self, key: str | None) -> Caller | None:
        if not key:
            return None
        return self._callers.get(hash_key(key))

    def by_digest(self, digest: str) -> Caller | None:
        """The caller of a key known by its digest (a review session keeps only that)."""
        return self._callers.get(digest)

    def tenant_for(self, key: str | None) -> str | None:
        found = self.caller(key)
        return found.tenant if found else None


def authenticate(keys: KeyRing, api_key: str | None, *, open_tenant: str) -> Caller:
    """The caller a request's API key stands for, by the rules every server of this product
    shares (`rmn serve`'s gate, the LangGraph-server hook in graph/platform_auth.py): with no
    keys configured, everyone is `open_tenant` as admin (such a server answers loopback only);
    with keys, a missing or unknown key is refused (UnauthorizedError, 401)."""
    if not keys:
        return Caller(tenant=open_tenant, role="admin", key_id=None)
    if not api_key:
        raise UnauthorizedError("missing x-api-key header")
    caller = keys.caller(api_key)
    if caller is None:
        raise UnauthorizedError("unknown API key")
    return caller


class RateLimiter:
    """A token bucket per key (a tenant, a client address): `rate` requests per second on
    average, bursts up to `burst`. `acquire` answers 0 when the request may go on, else the
    seconds until it may retry."""

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

    def wait(self, key: str) -> float:
        """Seconds until `key` has a request to spend (0: now), without spending it."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

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


class Gatekeeper:
    """What every request with a key passes, in this order: the client address is not locked
    out for wrong keys; the key is known (else 401, and the address spends one of its failed
    attempts); the key's tenant is within its rate limit (a tenant's keys share one
    allowance, so a second key is not a second allowance). Without keys: loopback clients
    only, all as `settings.open_tenant`."""

    def __init__(self, keys: KeyRing, settings: ServerSettings) -> None:
        self.keys = keys
        self.open_tenant = settings.open_tenant
        self.requests = RateLimiter(settings.rate_per_s, settings.rate_burst)
        self.failures = RateLimiter(
            settings.auth_failures_per_min / 60.0, settings.auth_failures_burst
        )

    def admit(self, host: str | None, api_key: str | None) -> Caller:
        if not self.keys:
            # Starlette's TestClient names its client "testclient"; it never leaves the process.
            if host != "testclient" and not is_loopback(host):
                raise AccessDeniedError("no API keys are configured: only loopback clients")
        elif api_key:
            # Checked before the key is: a locked-out address learns nothing about its guesses.
            self._not_locked_out(host or "unknown")
        try:
            caller = authenticate(self.keys, api_key, open_tenant=self.open_tenant)
        except UnauthorizedError:
            if api_key:
                self.failures.acquire(host or "unknown")
            raise
        self._within_rate(caller, caller.tenant if self.keys else "open")
        return caller

    def _not_locked_out(self, address: str) -> None:
        locked = self.failures.wait(address)
        if locked > 0:
            retry = self.failures.retry_after_header(locked)
            raise AuthLockedError(
                f"too many wrong API keys from this address; retry in {retry} s",
                headers={"Retry-After": retry},
                retry_after_s=round(locked, 3),
            )

    def _within_rate(self, caller: Caller, bucket: str) -> None:
        wait = self.requests.acquire("tenant:" + bucket)
        if wait > 0:
            retry = self.requests.retry_after_header(wait)
            raise RateLimitedError(
                f"too many requests for tenant {caller.tenant}; retry in {retry} s",
                headers={"Retry-After": retry},
                retry_after_s=round(wait, 3),
            )
