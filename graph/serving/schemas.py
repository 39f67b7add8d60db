"""What travels over the HTTP graph API: the request bodies (pydantic models, as the
`langgraph-sdk` client sends them) and the JSON helpers that shape the answers."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import to_jsonable_python

from graph.serving.errors import InvalidRequestError

if TYPE_CHECKING:
    from langgraph.types import Interrupt

INTERRUPT_KEY = "__interrupt__"
# Keys a metadata filter may use: what the checkpointers accept (SqliteSaver refuses anything
# else with a ValueError, which was a 500) and what a metadata key looks like.
FILTER_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

__all__ = [
    "INTERRUPT_KEY",
    "AssistantSearch",
    "CheckpointRef",
    "CommandBody",
    "HistoryRequest",
    "RunCreate",
    "StateAtCheckpoint",
    "ThreadCount",
    "ThreadCreate",
    "ThreadPatch",
    "ThreadSearch",
    "check_uuid",
    "contains",
    "dumps",
    "interrupt_json",
    "jsonable",
    "now",
    "problems",
    "strict_loads",
]


# --- JSON -------------------------------------------------------------------------------------


def _fallback(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    return str(obj)


def jsonable(obj: Any) -> Any:
    """`obj` as JSON-ready Python; a non-finite number (a tool's NaN, an infinity) becomes
    null, as strict JSON has no way to write it and the SDK's parser refuses bare NaN."""
    return to_jsonable_python(obj, fallback=_fallback, inf_nan_mode="null")


def interrupt_json(item: Interrupt) -> dict[str, Any]:
    """What `RemoteGraph` rebuilds with `Interrupt(**item)`: value, id, and response_schema
    when the graph gave one."""
    out: dict[str, Any] = {"value": jsonable(item.value), "id": item.id}
    schema = getattr(item, "response_schema", None)
    if schema is not None:
        out["response_schema"] = jsonable(schema)
    return out


def dumps(obj: Any) -> str:
    """Single-line strict JSON, as SSE data lines must be: non-finite numbers become null."""
    return json.dumps(jsonable(obj), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class NonFiniteNumberError(ValueError):
    """A JSON text with NaN, Infinity or a number too large for a float (1e400)."""


def _refuse_constant(name: str) -> Any:
    raise NonFiniteNumberError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NonFiniteNumberError(f"{text} does not fit a finite number")
    return value


def strict_loads(text: str | bytes) -> Any:
    """JSON as RFC 8259 defines it: Python's parser also reads NaN, Infinity and -Infinity,
    and turns 1e400 into infinity; these raise `NonFiniteNumberError` here."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def now() -> str:
    return datetime.now(UTC).isoformat()


def check_uuid(value: str, what: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidRequestError(f"{what} must be a UUID, got {value!r}", field=what) from None


def contains(have: Any, want: Mapping[str, Any]) -> bool:
    """Whether the dict `have` holds every key of `want` with the same value (search filters)."""
    return isinstance(have, dict) and all(have.get(k) == v for k, v in want.items())


def problems(errors: Iterable[Mapping[str, Any]]) -> str:
    """Pydantic's validation errors in one line: `where: what; ...`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or '(top)'}: {e.get('msg')}" for e in errors
    )


# --- request bodies ---------------------------------------------------------------------------


class _Body(BaseModel):
    # Unknown fields are ignored: newer clients add options this server does not need.
    model_config = ConfigDict(extra="ignore")


def check_filter(value: Mapping[str, Any] | None, where: str) -> Mapping[str, Any] | None:
    """A metadata or values filter: keys of letters, digits, `_`, `.` and `-` only."""
    for key in value or {}:
        if not FILTER_KEY.match(key):
            raise ValueError(
                f"{where} key {key!r} is not allowed: use letters, digits, '_', '.' or '-' "
                "(at most 128, not starting with '.' or '-')"
            )
    return value


def check_checkpoint_id(value: str | None) -> str | None:
    """Checkpoint ids are UUIDs (version 6, time-ordered); anything else names none."""
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError(f"checkpoint id must be a UUID, got {value[:64]!r}") from None


class CheckpointRef(_Body):
    thread_id: str | None = None
    checkpoint_ns: str = Field("", max_length=512)
    checkpoint_id: str | None = None
    checkpoint_map: dict[str, Any] | None = None

    @field_validator("checkpoint_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        return check_checkpoint_id(value)


class ThreadCreate(_Body):
    thread_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    supersteps: list[Any] | None = None


class ThreadPatch(_Body):
    metadata: dict[str, Any] = Field(default_factory=dict)


class _Filtered(_Body):
    metadata: dict[str, Any] | None = None
    values: dict[str, Any] | None = None
    status: Literal["idle", "busy", "interrupted", "error"] | None = None

    @field_validator("metadata", "values")
    @classmethod
    def _keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        check_filter(value, "filter")
        return value


class ThreadSearch(_Filtered):
    ids: list[str] | None = Field(None, max_length=1000)
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)
    sort_by: Literal["thread_id", "created_at", "updated_at", "status"] = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"


class ThreadCount(_Filtered):
    pass


class StateAtCheckpoint(_Body):
    checkpoint: CheckpointRef
    subgraphs: bool = False


class HistoryRequest(_Body):
    limit: int = Field(10, ge=1, le=1000)
    before: CheckpointRef | None = None  # or a checkpoint id
    metadata: dict[str, Any] | None = None
    checkpoint: CheckpointRef | None = None

    @field_validator("before", mode="before")
    @classmethod
    def _before_id(cls, value: Any) -> Any:
        return {"checkpoint_id": value} if isinstance(value, str) else value

    @field_validator("metadata")
    @classmethod
    def _keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # The checkpointer matches each value inside its SQL: only plain values can be matched.
        check_filter(value, "metadata filter")
        for key, item in (value or {}).items():
            if isinstance(item, dict | list):
                raise ValueError(f"metadata filter {key!r}: match a plain value, not {item!r}")
        return value


class AssistantSearch(_Body):
    graph_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    limit: int = Field(10, ge=1, le=1000)
    offset: int = Field(0, ge=0)


class CommandBody(_Body):
    resume: Any = None
    update: Any = None
    goto: Any = None


class RunCreate(_Body):
    assistant_id: str
    input: dict[str, Any] | None = None
    command: CommandBody | None = None
    config: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    stream_mode: str | list[str] = "values"
    stream_subgraphs: bool = False
    interrupt_before: Any = None
    interrupt_after: Any = None
    checkpoint: Any = None
    checkpoint_id: str | None = None
    webhook: str | None = None
    after_seconds: float | None = None
    multitask_strategy: str = "reject"
    if_not_exists: Literal["reject", "create"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] | None = None
    durability: Literal["sync", "async", "exit"] | None = None
