"""Every prompt the brief model sees, in one place: training builds its rows from here and
serving asks the model with the same turns, so the adapter is served the prompt it learned from.

The conversation: the planning system message (`adapters.prompts`), a user turn with the brand,
the day the brief was written and the brief with its number words as digits
(`brief_user_message`), the schema line the runtime appends when it decodes under
`brief_json_schema` (`served_user_message` is that turn as the model sees it), and the answer:
the span of the brief that states each field, as compact JSON (`tools.brief.labels.brief_answer`;
see `tools.brief.spans`: the schema's enums are the brief's candidate spans, so the schema line
shows the model what it may choose from).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from adapters.prompts import chat_messages, schema_instruction, system_message
from adapters.structured import OutputSchema
from tools.brief.rules.text import normalize
from tools.brief.schema import check_brand
from tools.brief.spans import (
    Candidates,
    candidates,
    span_decode_schema,
    span_json_schema,
)
from tools.catalog import current

PLANNING_TASK = "planning"


def planning_system_message() -> str:
    """The system message the planning adapter is trained and served under."""
    return system_message(PLANNING_TASK)


def brief_json_schema(cands: Candidates) -> dict[str, Any]:
    """The JSON the model must write: for each field one of the brief's spans for it, or null."""
    return span_json_schema(cands)


def brief_output_schema(cands: Candidates) -> OutputSchema:
    """What the runtime decodes under: `brief_json_schema` as shown and validated, with the
    grammar narrowed by `span_decode_schema` (a reserve is never the budget's own amount)."""
    return OutputSchema.narrowed(brief_json_schema(cands), span_decode_schema(cands))


def brief_user_message(text: str, brand: str, today: date) -> str:
    """The user turn a caller sends: brand, today (for "next 4 weeks") and the brief. The
    runtime appends the schema line when it decodes under `brief_json_schema`."""
    check_brand(brand)
    name = current().brand(brand).name
    return f"Brand: {name} ({brand})\nToday: {today.isoformat()}\nBrief: {normalize(text)}"


def served_user_message(text: str, brand: str, today: date) -> str:
    """The user turn as the model sees it when served with the schema (the runtime's layout:
    the caller's turn, a blank line, `schema_instruction`). Training rows use this, so the
    adapter learns from the prompt it is served."""
    schema_line = schema_instruction(brief_json_schema(candidates(text, brand, today)))
    return f"{brief_user_message(text, brand, today)}\n\n{schema_line}"


_USER_LAYOUT = re.compile(r"^Brand: .*\((?P<brand>[\w-]+)\)\nToday: (?P<today>[\d-]+)\nBrief: ")
_SCHEMA_LINE = "\n\nReply with only a JSON object"


def split_user_message(user: str) -> tuple[str, str, date]:
    """(brief text, brand, today) back from a user turn, with or without the schema line."""
    m = _USER_LAYOUT.match(user)
    if not m:
        raise ValueError("not a brief user message")
    text = user[m.end() :].split(_SCHEMA_LINE, 1)[0]
    return text, m.group("brand"), date.fromisoformat(m.group("today"))


def brief_messages(text: str, brand: str, today: date) -> list[dict[str, str]]:
    """System and user turns for a runtime call (the runtime adds the schema line)."""
    return chat_messages(PLANNING_TASK, brief_user_message(text, brand, today))


def training_prompt(text: str, brand: str, today: date) -> list[dict[str, str]]:
    """System and user turns of a training row: the user turn as served, schema line included."""
    return chat_messages(PLANNING_TASK, served_user_message(text, brand, today))
