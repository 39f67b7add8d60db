"""Errors of the HTTP graph API: each `ApiError` carries its HTTP status; any other `RMNError`
maps to one here. Clients get JSON `{"type", "message", ...}`, never a stack trace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse
from pydantic_core import to_jsonable_python

from tools.errors import AccessDeniedError, RMNError

__all__ = [
    "ApiError",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitedError",
    "ServerBusyError",
    "StaleDecisionError",
    "UnauthorizedError",
    "error_response",
    "public_message",
    "status_of",
]


class ApiError(RMNError):
    """An error with its HTTP status."""

    kind = "bad_request"
    status = 400

    def __init__(self, message: str, *, headers: Mapping[str, str] | None = None, **detail: Any):
        super().__init__(message, **detail)
        self.headers = dict(headers or {})


class UnauthorizedError(ApiError):
    kind = "unauthorized"
    status = 401


class NotFoundError(ApiError):
    kind = "not_found"
    status = 404


class ConflictError(ApiError):
    kind = "conflict"
    status = 409


class StaleDecisionError(ConflictError):
    """An answer to a question that is no longer the one pending (another interrupt id or
    plan version): never applied. `current` names the pending question, if any."""

    kind = "stale_decision"


class PayloadTooLargeError(ApiError):
    kind = "payload_too_large"
    status = 413


class InvalidRequestError(ApiError):
    kind = "invalid_request"
    status = 422


class RateLimitedError(ApiError):
    kind = "rate_limited"
    status = 429


class ServerBusyError(ApiError):
    kind = "server_busy"
    status = 503


def status_of(err: RMNError) -> int:
    if isinstance(err, ApiError):
        return err.status
    if isinstance(err, AccessDeniedError):
        return 403
    return 422  # any other RMNError is input the product cannot use as sent


def error_response(err: RMNError) -> JSONResponse:
    headers = err.headers if isinstance(err, ApiError) else {}
    return JSONResponse(to_jsonable_python(err.to_dict(), fallback=str), status_of(err), headers)


def public_message(err: BaseException) -> tuple[str, str]:
    """(error type, message) safe to show a client: an RMNError's own words; for anything
    else only its type, as its text may carry internals (paths, values)."""
    if isinstance(err, RMNError):
        return err.kind, err.message
    return type(err).__name__, "the run failed inside the graph; the server log has the details"
