"""Sign-in for the review pages: an API key, checked by the app's `Gatekeeper` (the same
wrong-key lockout and tenant rate limit as the API), becomes a server-side session; the
browser holds only its id, signed (itsdangerous), in an HttpOnly, SameSite=Strict cookie.
Each session has its own CSRF token, which every form posts back.

Sessions live in memory: a restart signs everyone out, and signing out or a key's removal
(checked on every request: the session keeps the key's digest, not the key) ends a session at
once. The signing secret is `RMN_SESSION_SECRET` when set, else random per process."""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from graph.serving.auth import Gatekeeper, hash_key
from graph.serving.errors import RateLimitedError
from graph.serving.policy import Caller

COOKIE = "rmn_review"
SECRET_ENV = "RMN_SESSION_SECRET"
# A reviewer's working day; idle sessions end sooner.
MAX_AGE_S = 8 * 3600
IDLE_S = 2 * 3600
MAX_SESSIONS = 10_000

__all__ = ["COOKIE", "Session", "Sessions"]


@dataclass
class Session:
    caller: Caller
    csrf: str
    digest: str | None  # the key's digest (None: loopback serving without keys)
    created: float
    seen: float

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, token or "")


class Sessions:
    """The review pages' sessions: sign in, look up by cookie, sign out."""

    def __init__(self, gate: Gatekeeper, secret: str | None = None) -> None:
        self.gate = gate
        key = secret or os.environ.get(SECRET_ENV) or secrets.token_hex(32)
        self._signer = URLSafeTimedSerializer(key, salt="rmn-review-session")
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def sign_in(self, host: str | None, api_key: str | None) -> tuple[str, Session]:
        """A new session for the key (401, 403 or 429 from the gate otherwise); answers the
        cookie value and the session."""
        caller = self.gate.admit(host, api_key or None)
        now = time.monotonic()
        digest = hash_key(api_key) if api_key and self.gate.keys else None
        session = Session(caller, secrets.token_urlsafe(32), digest, now, now)
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._evict(now)
            self._sessions[sid] = session
        return self._signer.dumps(sid), session

    def lookup(self, cookie: str | None, host: str | None) -> Session | None:
        """The live session a cookie names (None: none, forged, expired or its key gone),
        within its tenant's rate limit (429 otherwise)."""
        if not cookie:
            return None
        try:
            sid = self._signer.loads(cookie, max_age=MAX_AGE_S)
        except BadSignature:
            return None
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None or now - session.seen > IDLE_S:
                self._sessions.pop(sid, None)
                return None
            if not self._key_still_valid(session, host):
                self._sessions.pop(sid, None)
                return None
            session.seen = now
        self._within_rate(session.caller)
        return session

    def sign_out(self, cookie: str | None) -> None:
        if not cookie:
            return
        try:
            sid = self._signer.loads(cookie)
        except BadSignature:
            return
        with self._lock:
            self._sessions.pop(sid, None)

    def _key_still_valid(self, session: Session, host: str | None) -> bool:
        if session.digest is None:
            # Loopback serving: the session stays valid only while no keys are configured.
            return not self.gate.keys
        known = self.gate.keys.by_digest(session.digest)
        return known is not None and known == session.caller

    def _within_rate(self, caller: Caller) -> None:
        bucket = "tenant:" + (caller.tenant if self.gate.keys else "open")
        wait = self.gate.requests.acquire(bucket)
        if wait > 0:
            retry = self.gate.requests.retry_after_header(wait)
            raise RateLimitedError(
                f"too many requests for tenant {caller.tenant}; retry in {retry} s",
                headers={"Retry-After": retry},
                retry_after_s=round(wait, 3),
            )

    def _evict(self, now: float) -> None:
        stale = [s for s, v in self._sessions.items() if now - v.seen > IDLE_S]
        for sid in stale:
            del self._sessions[sid]
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
