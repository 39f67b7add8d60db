"""Review integrity in the planning graph, driven from Python (issues #12 and #14): every
question (confirm a brief, relax an infeasible one, approve a plan) is a LangChain HITL request
offering only the decisions possible; LangChain's `decisions` and Agent Inbox's list drive the
graph like our own answers; an answer for an older question (another plan version, another
interrupt id) is never applied; and an edit with a non-finite number, a negative cap, a flight
beyond 366 days or an unknown field asks the same question again with an `error`, the thread
still waiting and the reviewed plan kept."""

from __future__ import annotations

import json
import math
import re
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from langgraph.types import Command
from review_support import assert_hitl_request

from graph import Context, build_graph, run_config, thread_status

BRIEF = (
    "Allocate $1.5M across Alpha and Beta to maximize incremental margin with ROAS >= 2, "
    "10% for experiments"
)
DOUBTFUL = "Spend $1.2M at Alpha for 4 weeks to maximize incremental margin, 10% for tests"
# A field name (snake_case) a manager should not have to read.
SNAKE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")
LINK_TARGET = re.compile(r"\]\([^)]*\)")


@pytest.fixture(scope="module")
def app(market: Path) -> Any:
    return build_graph(data_dir=market)


@pytest.fixture(scope="module")
def context(market: Path) -> Context:
    return Context(
        tenant="acme",
        model="none",
        data_dir=str(market),
        reports_dir=str(market / "reports"),
        copy_variants=1,
        max_creative_attempts=1,
    )


def start(app: Any, context: Context, brief: str = BRIEF) -> tuple[dict[str, Any], dict]:
    config = run_config(f"r-{uuid.uuid4().hex[:12]}", context.tenant)
    return app.invoke({"brief": brief}, config, context=context), config


def answer(app: Any, config: dict, context: Context, value: Any) -> dict[str, Any]:
    return app.invoke(Command(resume=value), config, context=context)


def asked(out: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(the pending interrupt, its question's args), the value checked as a HITL request."""
    [pending] = out["__interrupt__"]
    return pending, assert_hitl_request(pending.value)


def test_each_question_is_a_hitl_request_with_only_its_decisions(
    app: Any, context: Context
) -> None:
    cases = (
        (BRIEF, "approval", "approve_plan", ["approve", "edit", "reject"], "Plan for review"),
        (BRIEF.replace("ROAS >= 2", "ROAS >= 40"), "infeasible", "relax_constraints",
         ["edit", "reject"], "not possible"),
        (DOUBTFUL, "confirm_brief", "confirm_brief", ["approve", "edit", "reject"], "confirm"),
    )  # fmt: skip
    for brief, kind, name, allowed, says in cases:
        out, _ = start(app, context, brief)
        pending, args = asked(out)
        [request], [config] = pending.value["action_requests"], pending.value["review_configs"]
        assert args["kind"] == kind and request["name"] == config["action_name"] == name
        assert config["allowed_decisions"] == allowed
        text = request["description"]
        shown = LINK_TARGET.sub("]", text)  # what a reader sees of a Markdown link: its text
        assert says in text and "$" in text and not SNAKE.findall(shown), SNAKE.findall(shown)
        assert args["plan_version"] and args["error"] is None
        # The interrupt's response schema (checked by the HTTP server) offers the same.
        schema = pending.response_schema
        for form in ({"action": "approve"}, {"decisions": [{"type": "approve"}]},
                     [{"type": "accept"}]):  # fmt: skip
            valid = jsonschema.Draft202012Validator(schema).is_valid(form)
            assert valid == ("approve" in allowed), (kind, form)


def test_langchain_and_agent_inbox_answers_drive_the_graph(app: Any, context: Context) -> None:
    out, config = start(app, context)
    _, first = asked(out)
    edit = {
        "decisions": [
            {"type": "edit", "edited_action": {"name": "approve_plan", "args": {"roas_floor": 2.2}}}
        ],
        "plan_version": first["plan_version"],
    }
    out = answer(app, config, context, edit)
    _, second = asked(out)
    assert second["brief"]["roas_floor"] == 2.2 and second["plan_version"] != first["plan_version"]
    out = answer(app, config, context, [{"type": "accept", "args": None}])
    assert out["status"] == "approved"
    recorded = [(d["decision"]["action"], d["decision"]["changes"]) for d in out["decisions"]]
    assert recorded == [("edit", {"roas_floor": 2.2}), ("approve", {})]

    out, config = start(app, context)
    out = answer(app, config, context, [{"type": "ignore", "args": None}])
    assert out["status"] == "rejected"
    assert out["plan"]["decision"]["reason"] == "ignored by reviewer"


def test_a_stale_decision_is_asked_again_and_never_applied(app: Any, context: Context) -> None:
    out, config = start(app, context)
    old, first = asked(out)
    edit = {"action": "edit", "changes": {"roas_floor": 2.2}, "plan_version": first["plan_version"]}
    out = answer(app, config, context, edit)
    current, second = asked(out)
    replanned = out["plan"]
    assert current.id != old.id and second["plan_version"] != first["plan_version"]

    # An approval meant for the first plan: the re-planned one is asked about again.
    out = answer(app, config, context, {"action": "approve", "plan_version": first["plan_version"]})
    _, again = asked(out)
    assert again["error"] and "stale decision" in again["error"]
    assert second["plan_version"] in again["error"] and "approval" in again["error"]
    assert again["plan_version"] == second["plan_version"]
    assert out["status"] == "awaiting_approval" and out["plan"] == replanned
    assert [d["decision"]["action"] for d in out["decisions"]] == ["edit"]

    # Answered by the first question's interrupt id (LangGraph's resume map): not applied.
    out = answer(app, config, context, {old.id: {"action": "approve"}})
    _, still = asked(out)
    assert still["plan_version"] == second["plan_version"] and out["status"] == "awaiting_approval"
    assert out["plan"] == replanned and len(out["decisions"]) == 1

    out = answer(app, config, context, {"action": "approve", "plan_version": again["plan_version"]})
    assert out["status"] == "approved" and out["plan"]["brief"]["roas_floor"] == 2.2


BAD_EDITS: list[tuple[dict[str, Any], str]] = [
    ({"roas_floor": math.inf}, "roas_floor"),
    ({"roas_floor": json.loads("1e400")}, "roas_floor"),
    ({"total_budget": math.nan}, "total_budget"),
    ({"experiment_reserve": "NaN"}, "experiment_reserve"),
    ({"retailer_caps": {"alpha": -1}}, "retailer_caps"),
    ({"retailer_caps": {"alpha": math.inf}}, "retailer_caps"),
    ({"flight_start": "2026-10-05", "flight_end": "2028-10-05"}, "366 days"),
    ({"colour": "blue"}, "cannot change 'colour'"),
]


def test_bad_edits_ask_again_and_keep_the_reviewed_plan(app: Any, context: Context) -> None:
    out, config = start(app, context)
    _, shown = asked(out)
    reviewed = out["plan"]
    for changes, says in BAD_EDITS:
        out = answer(app, config, context, {"action": "edit", "changes": changes})
        _, again = asked(out)
        assert again["error"] and says in again["error"], (changes, again["error"])
        assert again["plan_version"] == shown["plan_version"]  # the same question
        assert out["status"] == "awaiting_approval" and out["plan"] == reviewed
        state = app.get_state(config)
        assert thread_status(state) == "awaiting_approval" and state.next == ("human_approval",)
    out = answer(app, config, context, {"action": "approve", "plan_version": shown["plan_version"]})
    assert out["status"] == "approved"
    assert out["plan"]["allocation"] == reviewed["allocation"]
