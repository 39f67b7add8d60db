"""Every prompt the brief model sees, in one place: training builds its rows from here and
serving asks the model with the same turns, so the adapter is served the prompt it learned from.

The conversation: the planning system message (`adapters.prompts`), a user turn with the brand,
the day the brief was written and the brief (`brief_user_message`), the schema line the runtime
appends when it decodes under `brief_json_schema` (`served_user_message` is that turn as the
model sees it), and the answer: the brief's fields as compact JSON (`brief_answer`).
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from adapters.prompts import chat_messages, schema_instruction, system_message
from tools.brief.schema import BRIEF_FIELDS, MAX_RESERVE, OBJECTIVES, brand_retailers, check_brand
from tools.catalog import current

PLANNING_TASK = "planning"


def planning_system_message() -> str:
    """The system message the planning adapter is trained and served under."""
    return system_message(PLANNING_TASK)


def brief_json_schema(brand: str) -> dict[str, Any]:
    """The JSON the model must write: the brief's fields, retailers limited to the brand's."""
    nullable_date = {"type": ["string", "null"], "format": "date"}
    return {
        "type": "object",
        "properties": {
            "total_budget": {"type": "number", "exclusiveMinimum": 0},
            "retailers": {"type": "array", "items": {"enum": brand_retailers(brand)}},
            "objective": {"enum": list(OBJECTIVES)},
            "roas_floor": {"type": ["number", "null"]},
            "experiment_reserve": {"type": "number", "minimum": 0, "maximum": MAX_RESERVE},
            "flight_start": nullable_date,
            "flight_end": nullable_date,
            "exclude_oos": {"type": "boolean"},
        },
        "required": list(BRIEF_FIELDS),
        "additionalProperties": False,
    }


def brief_user_message(text: str, brand: str, today: date) -> str:
    """The user turn a caller sends: brand, today (for "next 4 weeks") and the brief. The
    runtime appends the schema line when it decodes under `brief_json_schema`."""
    check_brand(brand)
    name = current().brand(brand).name
    return f"Brand: {name} ({brand})\nToday: {today.isoformat()}\nBrief: {text}"


def served_user_message(text: str, brand: str, today: date) -> str:
    """The user turn as the model sees it when served with the schema (the runtime's layout:
    the caller's turn, a blank line, `schema_instruction`). Training rows use this, so the
    adapter learns from the prompt it is served."""
    schema_line = schema_instruction(brief_json_schema(brand))
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


def _compact_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def brief_answer(fields: dict[str, Any]) -> str:
    """The model's answer for a brief's fields: compact JSON in `BRIEF_FIELDS` order, numbers
    without a trailing ".0" (fewer tokens to decode)."""
    out: dict[str, Any] = {}
    for name in BRIEF_FIELDS:
        value = fields[name]
        if isinstance(value, float):
            value = _compact_number(value)
        elif isinstance(value, date):
            value = value.isoformat()
        out[name] = value
    return json.dumps(out, separators=(",", ":"))
