"""Errors a user can act on.

Every error raised for bad input derives from `RMNError`; the CLI prints its message
(and `detail` with `--json`) instead of a traceback, and exits with status 2.
"""

from __future__ import annotations

from typing import Any


class RMNError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""

    kind: str = "error"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.kind, "message": self.message, **self.detail}


class UnknownRetailerError(RMNError):
    kind = "unknown_retailer"


class UnknownBrandError(RMNError):
    kind = "unknown_brand"


class MappingError(RMNError):
    """A retailer mapping YAML that cannot be used (syntax, schema, unknown transform)."""

    kind = "mapping_error"


class InputDataError(RMNError):
    """A native export that does not match its mapping (missing file or column)."""

    kind = "input_data_error"


class QueryRefusedError(RMNError):
    """A clean-room query that breaks a data-access rule (blocked field, unknown dimension)."""

    kind = "query_refused"


class PrivacyBudgetExceededError(QueryRefusedError):
    kind = "privacy_budget_exceeded"


class AccessDeniedError(RMNError):
    """A tenant asking for data or artifacts it does not own."""

    kind = "access_denied"
