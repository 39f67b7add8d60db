"""What the review tests share: a check that a question is exactly a LangChain
human-in-the-loop request (langchain v1's own TypedDicts, no extra keys at any level)."""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware.human_in_the_loop import ActionRequest, HITLRequest, ReviewConfig
from pydantic import TypeAdapter

HITL = TypeAdapter(HITLRequest)


def _keys(value: dict[str, Any], typed: Any) -> None:
    # Pydantic reads NotRequired in the module's string annotations; `__required_keys__`
    # does not on Python 3.11.
    schema = TypeAdapter(typed).json_schema()
    declared, required = set(schema["properties"]), set(schema.get("required", []))
    assert set(value) <= declared, set(value) - declared
    assert required <= set(value), required - set(value)


def assert_hitl_request(value: Any) -> dict[str, Any]:
    """`value` validated as a `HITLRequest` in strict mode, with no key the TypedDicts do not
    declare (pydantic ignores extra keys of a TypedDict); answers the one action's args."""
    HITL.validate_python(value, strict=True)
    _keys(value, HITLRequest)
    for action in value["action_requests"]:
        _keys(action, ActionRequest)
    for config in value["review_configs"]:
        _keys(config, ReviewConfig)
    assert len(value["action_requests"]) == len(value["review_configs"]) == 1
    return value["action_requests"][0]["args"]
