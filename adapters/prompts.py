"""System messages and prompt layout shared by adapter training and serving.

SmolLM2's chat template injects its own default system prompt ("You are a helpful AI assistant
named SmolLM ...") when a conversation has none. An adapter trained under one system message and
served under another sees a prompt it never learned from, so both sides take the system message
from here: training builds its examples with `chat_messages`, serving with `with_system`.

Only what every task shares is here: the system messages (the runtime picks one by the active
task adapter, and `adapters` sits below `tools`, so they cannot live with their tasks), the
schema line, the repair turn and the message helpers. Each task's user turns live with the task:
copy in `tools.creative.prompts`, policy questions in `tools.policy.prompts`, briefs in
`tools.brief.prompts`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tools.errors import RMNError

Message = dict[str, str]

TASKS: tuple[str, ...] = ("planning", "creative")

DEFAULT_SYSTEM = (
    "You are RMN Copilot, an assistant for retail media planning. Answer briefly and exactly."
)

SYSTEM_MESSAGES: dict[str, str] = {
    "planning": (
        "You are RMN Copilot, a retail media planner. Read the brief and answer, for each "
        "field, with the words of the brief that state it, or null, and for each retailer "
        "it names, include or exclude. Never invent numbers."
    ),
    "creative": (
        "You are RMN Copilot, a retail media copywriter. Write short ad copy that follows the "
        "retailer's rules and the brand's voice. No claims the brief does not support."
    ),
}


class UnknownTaskError(RMNError):
    kind = "unknown_task"


def system_message(task: str | None) -> str:
    """The system message for a task adapter (`None`: no task adapter active)."""
    if task is None:
        return DEFAULT_SYSTEM
    try:
        return SYSTEM_MESSAGES[task]
    except KeyError:
        raise UnknownTaskError(
            f"unknown task {task!r}: known tasks are {', '.join(TASKS)}", task=task
        ) from None


def with_system(messages: Sequence[Message], task: str | None) -> list[Message]:
    """The conversation with the task's system message first, unless it already has one."""
    out = [dict(m) for m in messages]
    if not out or out[0].get("role") != "system":
        out.insert(0, {"role": "system", "content": system_message(task)})
    return out


def call_messages(
    messages: Sequence[Message], task: str | None, json_schema: dict[str, Any] | None
) -> list[Message]:
    """What a serving call decodes from, on any backend: the task's system message first and,
    for a JSON answer, the schema line on the last user turn (or as a user turn of its own).
    Callers that lay out the turn themselves (as training does) already include it."""
    out = with_system(messages, task)
    if json_schema is None:
        return out
    instruction = schema_instruction(json_schema)
    if out[-1]["role"] != "user":
        out.append({"role": "user", "content": instruction})
    elif instruction not in out[-1]["content"]:
        out[-1]["content"] = f"{out[-1]['content']}\n\n{instruction}"
    return out


def chat_messages(task: str | None, user: str, assistant: str | None = None) -> list[Message]:
    """One training or serving example: system, user and (for training) the assistant's answer."""
    messages = [
        {"role": "system", "content": system_message(task)},
        {"role": "user", "content": user},
    ]
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return messages


def schema_instruction(schema: dict[str, Any]) -> str:
    """The line appended to the user's turn when an answer must follow a JSON schema. Training
    data for JSON answers appends the same line, so the adapter sees the layout it is served."""
    return "Reply with only a JSON object matching this schema: " + json.dumps(
        _compact_schema(schema), separators=(",", ":"), sort_keys=True
    )


def repair_instruction(error: str) -> str:
    """The follow-up turn after an answer that failed validation."""
    return f"That JSON was not valid: {error}. Reply again with only the corrected JSON object."


def _compact_schema(schema: Any, names: bool = False) -> Any:
    """The schema without its titles: shorter prompts decode faster, and titles tell a small
    model nothing the field names do not. `names`: a mapping of property names, kept whole."""
    if isinstance(schema, dict):
        if names:
            return {k: _compact_schema(v) for k, v in schema.items()}
        return {
            k: _compact_schema(v, names=k in _NAMED_SCHEMAS)
            for k, v in schema.items()
            if k != "title"
        }
    if isinstance(schema, list):
        return [_compact_schema(v) for v in schema]
    return schema


_NAMED_SCHEMAS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
