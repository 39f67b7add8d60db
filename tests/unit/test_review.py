"""Review questions and answers without a graph (issues #12 and #14): every question is a
LangChain human-in-the-loop request (validated against langchain's own TypedDicts) with a
Markdown description in plain words and only the decisions possible; its `plan_version` is a
digest of what was shown; every answer form (ours, LangChain's `decisions`, Agent Inbox's
list) reads into one review; a stale answer is refused naming the current question; and an
edit with a non-finite number, a negative amount, a flight beyond 366 days or an unknown field
is refused with the field named."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import jsonschema
import pytest
from langchain.agents.middleware.human_in_the_loop import Decision
from pydantic import TypeAdapter
from review_support import assert_hitl_request

from graph.serving.web.view import _brief_rows, _form
from tools.brief.schema import BRIEF_FIELDS
from tools.plan.labels import change_words
from tools.plan.questions import (
    ACTION_NAMES,
    allowed_decisions,
    hitl_request,
    plan_version,
    question_of,
    question_ref,
)
from tools.plan.review import (
    BRIEF_EDITS,
    CONSTRAINT_FIELDS,
    Changes,
    ReviewError,
    StaleDecisionError,
    answer_version,
    apply_changes,
    check_version,
    read_review,
    review_action,
    review_schema,
)

PARSED = {
    "brand_id": "acme",
    "total_budget": 1_500_000.0,
    "retailers": ["alpha", "beta"],
    "objective": "incremental_margin",
    "roas_floor": 2.0,
    "experiment_reserve": 0.1,
    "flight_start": None,
    "flight_end": None,
    "exclude_oos": True,
    "parsed_by": "rules",
    "warnings": [],
}
BRIEF = {k: PARSED[k] for k in BRIEF_FIELDS}
APPROVAL = {
    "kind": "approval",
    "thread_id": "t-1",
    "tenant": "acme",
    "brief": BRIEF,
    "constraints": {"retailer_caps": {"alpha": 900_000.0}},
    "allocation": {
        "by_retailer": {"alpha": 900_000.0, "beta": 450_000.0},
        "by_placement": {"sponsored_product": 800_000.0, "display_onsite": 550_000.0},
        "lines": 126,
        "top_lines": [],
    },
    "expected_outcome": {
        "spend": 1_350_000.0,
        "reserve": 150_000.0,
        "incremental_revenue": {"mean": 4_690_837.2, "low": 4_464_635.5, "high": 4_825_106.1},
        "incremental_margin": {"mean": 1_371_301.8, "low": 1_292_767.2, "high": 1_417_772.4},
        "iroas": {"mean": 3.4747, "low": 3.3071, "high": 3.5742},
    },
    "experiment": {
        "retailer": "alpha",
        "experiment_type": "geo_holdout",
        "start": "2026-09-29",
        "duration_days": 26,
        "holdout_pct": 0.2,
        "test_spend": 139_285.7,
        "power": 0.8035,
        "adequate": True,
    },
    "measurement_notes": [],
    "copy": [{"retailer_id": "alpha", "headline": "No artificial colors", "body": "Shop now."}],
    "risks": {"high_risk_factors": [{"factor": "thin data coverage", "severity": "high",
                                     "signal": "100% of spend on lines without enough data"}]},
    "confidence": {"value": 0.499, "rationale": "0.50 = uncertainty 1.00 x coverage 0.50"},
    "flags": ["prompt_injection in brief (human)"],
    "auto_approve": {"eligible": False, "why": "auto-approval is off"},
}  # fmt: skip
INFEASIBLE = {
    "kind": "infeasible",
    "thread_id": "t-1",
    "tenant": "acme",
    "message": "the highest reachable ROAS at the full spendable budget is 2.6",
    "diagnosis": {"binding": "roas_floor", "highest_reachable_roas": 2.6},
    "suggestions": ["lower the ROAS floor to 2.6 or less", "spend less"],
    "brief": BRIEF | {"roas_floor": 40.0},
    "constraints": {},
}
CONFIRM = {
    "kind": "confirm_brief",
    "thread_id": "t-1",
    "tenant": "acme",
    "brief": BRIEF,
    "parsed_by": "rules",
    "warnings": ["no start date: the flight starts at the next Monday"],
}
DECISION = TypeAdapter(Decision)
SNAKE = re.compile(r"\b[a-z0-9]+_[a-z0-9_]+\b")


# ------------------------------------------------------------------------------ questions


@pytest.mark.parametrize(
    ("summary", "allowed"),
    [(APPROVAL, ("approve", "edit", "reject")), (INFEASIBLE, ("edit", "reject")),
     (CONFIRM, ("approve", "edit", "reject"))],
)  # fmt: skip
def test_every_question_is_a_langchain_hitl_request(
    summary: dict[str, Any], allowed: tuple[str, ...]
) -> None:
    request = hitl_request(summary, allowed)
    assert_hitl_request(request)  # exactly langchain's shape, no extra keys
    [action] = request["action_requests"]
    [config] = request["review_configs"]
    assert action["name"] == config["action_name"] == ACTION_NAMES[summary["kind"]]
    assert config["allowed_decisions"] == list(allowed)
    # Our full summary travels in args, with the version of what was shown.
    assert action["args"] == summary | {"plan_version": plan_version(summary), "error": None}
    assert question_of(request) == action["args"]
    assert question_ref(request) == {
        "kind": summary["kind"],
        "plan_version": plan_version(summary),
    }
    assert allowed_decisions(request) == list(allowed)
    # The edit form's schema is a JSON schema of the editable fields, finite numbers only.
    schema = config["args_schema"]
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate({"roas_floor": 2.5, "retailer_caps": {"alpha": 500_000}}, schema)
    for bad in ({"roas_floor": math.inf}, {"retailer_caps": {"alpha": -1}},
                {"total_budget": -math.inf}, {"colour": "blue"}):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    # Strict JSON can carry the whole request.
    json.dumps(request, allow_nan=False)


def test_the_plan_version_is_a_digest_of_what_was_shown() -> None:
    version = plan_version(APPROVAL)
    assert re.fullmatch(r"[0-9a-f]{12,}", version)
    assert plan_version(json.loads(json.dumps(APPROVAL))) == version  # key order, copies
    assert plan_version(APPROVAL | {"error": "bad answer"}) == version  # a re-ask: same plan
    moved = APPROVAL | {"brief": BRIEF | {"roas_floor": 2.2}}
    assert plan_version(moved) != version
    # A re-asked question carries the error and the same version.
    again = question_of(hitl_request(APPROVAL, ("approve",), error="a rejection needs a reason"))
    assert again is not None
    assert again["error"] == "a rejection needs a reason" and again["plan_version"] == version


def test_questions_read_older_checkpoints_too() -> None:
    """A thread that was waiting before questions were HITL requests still reads."""
    assert question_of(APPROVAL | {"error": None}) == APPROVAL | {"error": None}
    assert question_ref(APPROVAL)["kind"] == "approval"
    assert question_of("what?") is None and question_of({"action_requests": []}) is None


def test_descriptions_are_plain_words_for_a_manager() -> None:
    approval = hitl_request(APPROVAL, ("approve", "edit", "reject"))["action_requests"][0]
    text = approval["description"]
    assert text.startswith("#")  # Markdown
    assert "Alpha Mart" in text and "Beta Grocers" in text
    assert "$1.37M" in text and "$1.29M" in text and "$1.42M" in text  # margin and interval
    assert "$1.50M" in text  # the budget
    assert "geo holdout" in text and "prompt injection" in text
    assert not SNAKE.findall(text), SNAKE.findall(text)

    infeasible = hitl_request(INFEASIBLE, ("edit", "reject"))["action_requests"][0]
    text = infeasible["description"]
    assert "2.6" in text and "lower the ROAS floor" in text
    assert "not possible" in text.lower() and not SNAKE.findall(text)

    confirm = hitl_request(CONFIRM, ("approve", "edit", "reject"))["action_requests"][0]
    text = confirm["description"]
    assert "no start date" in text and "$1.50M" in text and not SNAKE.findall(text)

    asked_again = hitl_request(CONFIRM, ("approve",), error="a rejection needs a reason")
    assert "a rejection needs a reason" in asked_again["action_requests"][0]["description"]


# ------------------------------------------------------------------------------- answers


def test_every_answer_form_reads_into_one_review() -> None:
    changes = {"roas_floor": 2.5}
    forms: list[tuple[Any, tuple[str, Any, Any]]] = [
        ({"action": "approve"}, ("approve", {}, None)),
        ({"action": "edit", "changes": changes}, ("edit", changes, None)),
        ({"action": "reject", "reason": "too much display"}, ("reject", {}, "too much display")),
        ({"decisions": [{"type": "approve"}]}, ("approve", {}, None)),
        ({"decisions": [{"type": "edit", "edited_action": {"name": "approve_plan",
                                                           "args": changes}}]},
         ("edit", changes, None)),
        ({"decisions": [{"type": "reject", "message": "no"}]}, ("reject", {}, "no")),
        ([{"type": "accept", "args": None}], ("approve", {}, None)),
        ([{"type": "edit", "args": changes}], ("edit", changes, None)),
        ([{"type": "edit", "args": {"action": "approve_plan", "args": changes}}],
         ("edit", changes, None)),
        ([{"type": "response", "args": "move money to search"}],
         ("reject", {}, "move money to search")),
        ([{"type": "ignore", "args": None}], ("reject", {}, "ignored by reviewer")),
    ]  # fmt: skip
    for payload, (action, got_changes, reason) in forms:
        review = read_review(payload)
        assert (review.action, review.changes, review.reason) == (action, got_changes, reason)
        assert review_action(payload) == action
    # The decisions are langchain's own.
    DECISION.validate_python({"type": "edit", "edited_action": {"name": "x", "args": changes}})


def test_an_answer_names_its_question_by_plan_version() -> None:
    for payload in (
        {"action": "approve", "plan_version": "abc123abc123"},
        {"decisions": [{"type": "approve"}], "plan_version": "abc123abc123"},
        {"decisions": [{"type": "approve", "plan_version": "abc123abc123"}]},
        [{"type": "accept", "args": None, "plan_version": "abc123abc123"}],
    ):
        assert answer_version(payload) == "abc123abc123"
        assert read_review(payload).plan_version == "abc123abc123"
    assert answer_version({"action": "approve"}) is None  # old clients: no version
    current = question_of(hitl_request(APPROVAL, ("approve", "edit", "reject")))
    assert current is not None
    check_version(None, current)  # no version: accepted
    check_version(current["plan_version"], current)
    with pytest.raises(StaleDecisionError) as stale:
        check_version("0ld0ld0ld0ld", current)
    assert current["plan_version"] in stale.value.message and "approval" in stale.value.message
    assert stale.value.kind == "stale_decision"
    assert stale.value.detail["current"] == {"kind": "approval",
                                             "plan_version": current["plan_version"]}  # fmt: skip


def test_an_edit_that_sends_the_whole_question_back_changes_what_differs() -> None:
    """Generic review UIs send back the args they showed, edited in place."""
    shown = question_of(hitl_request(APPROVAL, ("approve", "edit", "reject")))
    assert shown is not None
    echoed = json.loads(json.dumps(shown))
    echoed["brief"]["roas_floor"] = 2.5
    echoed["constraints"]["retailer_caps"] = {"alpha": 500_000}
    payload = {"decisions": [{"type": "edit",
                              "edited_action": {"name": "approve_plan", "args": echoed}}]}
    review = read_review(payload, shown=shown)
    assert review.changes == {"roas_floor": 2.5, "retailer_caps": {"alpha": 500_000}}
    assert review.plan_version == shown["plan_version"]
    echoed["allocation"] = {"by_retailer": {"alpha": 1}}
    with pytest.raises(ReviewError, match="allocation"):
        read_review(payload, shown=shown)


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        ({"action": "approve please"}, "invalid review"),
        ("maybe", "answer with"),
        ({"decisions": []}, "one decision"),
        ({"decisions": [{"type": "approve"}, {"type": "approve"}]}, "one decision"),
        ({"decisions": [{"type": "respond", "message": "hi"}]}, "respond"),
        ({"decisions": [{"type": "edit"}]}, "edited_action"),
        ({"decisions": [{"type": "reject"}]}, "needs a reason"),
        ([{"type": "shrug"}], "shrug"),
        ({"action": "edit", "changes": {}}, "needs changes"),
    ],
)
def test_bad_answers_say_what_is_wrong(payload: Any, says: str) -> None:
    with pytest.raises(ReviewError, match=says):
        read_review(payload)
    assert review_action(payload) in (None, "approve", "edit", "reject")


def test_only_the_possible_decisions_are_accepted() -> None:
    with pytest.raises(ReviewError, match="not possible here"):
        read_review({"decisions": [{"type": "approve"}]}, ("edit", "reject"))
    with pytest.raises(ReviewError, match="not possible here"):
        read_review([{"type": "accept"}], ("edit", "reject"))
    schema = review_schema(("edit", "reject"))
    jsonschema.Draft202012Validator.check_schema(schema)
    for ok in ({"action": "edit", "changes": {"roas_floor": 2}},
               {"decisions": [{"type": "reject", "message": "no"}], "plan_version": "abc"},
               [{"type": "response", "args": "no"}]):  # fmt: skip
        jsonschema.validate(ok, schema)
    for refused in ({"action": "approve"}, {"decisions": [{"type": "approve"}]},
                    [{"type": "accept"}], "approve"):  # fmt: skip
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(refused, schema)


# --------------------------------------------------------------------------------- edits


def test_changes_cover_every_editable_field() -> None:
    assert set(Changes.model_fields) == {*BRIEF_EDITS, *CONSTRAINT_FIELDS}


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"roas_floor": math.inf}, "roas_floor"),
        ({"roas_floor": json.loads("1e400")}, "roas_floor"),
        ({"roas_floor": "inf"}, "roas_floor"),
        ({"total_budget": math.nan}, "total_budget"),
        ({"total_budget": "NaN"}, "total_budget"),
        ({"total_budget": -5}, "total_budget"),
        ({"experiment_reserve": math.nan}, "experiment_reserve"),
        ({"retailer_caps": {"alpha": math.inf}}, "retailer_caps"),
        ({"retailer_caps.alpha": -1}, "retailer_caps"),
        ({"retailer_caps": {"alpha": "1e400"}}, "retailer_caps"),
        ({"min_spend_fraction": math.nan}, "min_spend_fraction"),
        ({"flight_start": "2026-10-01", "flight_end": "2027-11-01"}, "366 days"),
        ({"flight_start": "2026-10-01", "flight_end": "2026-09-01"}, "before it starts"),
        ({"colour": "blue"}, "cannot change 'colour'"),
    ],
)
def test_bad_edits_are_refused_naming_the_field(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ReviewError, match=re.escape(says)):
        apply_changes(PARSED, {}, changes)


def test_minimums_are_edited_like_caps_and_never_above_a_cap() -> None:
    """`retailer_mins` (a JBP's commitment): set, changed with `retailer_mins.<id>`, lifted
    with null; a minimum above the cap at the same retailer, or at a retailer the plan does not
    use, is refused naming it."""
    changes = {"retailer_mins.alpha": 300_000, "retailer_mins": {"beta": None}}
    _, constraints = apply_changes(PARSED, {"retailer_mins": {"beta": 1.0}}, changes)
    assert constraints["retailer_mins"] == {"alpha": 300_000.0}
    with pytest.raises(ReviewError, match=r"minimum at alpha \(\$300,000\) is above its cap"):
        apply_changes(PARSED, constraints, {"retailer_caps.alpha": 200_000})
    with pytest.raises(ReviewError, match="minimum for gamma, which the plan does not use"):
        apply_changes(PARSED, {}, {"retailer_mins.gamma": 1_000})
    with pytest.raises(ReviewError, match="retailer_mins"):
        apply_changes(PARSED, {}, {"retailer_mins.alpha": -5})


def test_good_edits_apply() -> None:
    parsed, constraints = apply_changes(
        PARSED,
        {"retailer_caps": {"beta": 1.0}},
        {"roas_floor": "2.5", "retailer_caps.alpha": 500_000, "retailer_caps": {"beta": None},
         "flight_start": "2026-10-05", "flight_end": "2027-10-05", "excluded_skus": "a, b"},
    )  # fmt: skip
    assert parsed["roas_floor"] == 2.5 and parsed["flight_end"] == "2027-10-05"
    assert constraints == {
        "retailer_caps": {"alpha": 500_000.0},
        "retailer_mins": {},
        "excluded_skus": ["a", "b"],
        "min_spend_fraction": None,
    }
    parsed, _ = apply_changes(PARSED, {}, {"roas_floor": None})  # null lifts the floor
    assert parsed["roas_floor"] is None


def test_an_edit_changes_or_drops_the_brief_split() -> None:
    """The brief's split by retailer is an edit like its other fields: amounts by retailer
    (ids as typed, any case), null leaves the split to the optimizer, and an edit of the
    retailers that leaves a retailer of the split out says to edit the split too."""
    split = {**PARSED, "retailer_split": {"alpha": 1_000_000.0, "beta": 500_000.0}}
    parsed, _ = apply_changes(split, {}, {"retailer_split": {"Alpha": 900_000, "beta": 600_000}})
    assert parsed["retailer_split"] == {"alpha": 900_000, "beta": 600_000}
    parsed, _ = apply_changes(split, {}, {"retailer_split": None})
    assert parsed["retailer_split"] == {}
    parsed, _ = apply_changes(split, {}, {"retailer_split.beta": 700_000})  # the CLI's form
    assert parsed["retailer_split"] == {"alpha": 1_000_000, "beta": 700_000}
    with pytest.raises(ReviewError, match="the split names beta.*edit retailer_split too"):
        apply_changes(split, {}, {"retailers": ["alpha"]})
    with pytest.raises(ReviewError, match="retailer_split"):
        apply_changes(split, {}, {"retailer_split": {"alpha": -5}})
    assert change_words("retailer_split", {"alpha": 900_000, "beta": 600_000}) == (
        "the brief's split by retailer: Alpha Mart $900,000, Beta Grocers $600,000")
    assert change_words("retailer_split", {}) == (
        "the brief's split by retailer: left to the optimizer")


def test_the_questions_and_the_review_page_show_the_brief_split() -> None:
    """The approver sees the split the plan follows, in the question's words and on the
    review page, and the page's edit form can change or clear it."""
    split = {"alpha": 1_000_000.0, "beta": 500_000.0}
    approval = {**APPROVAL, "brief": {**BRIEF, "retailer_split": split}}
    text = hitl_request(approval, ("approve", "edit", "reject"))["action_requests"][0]
    assert "- **Split:** Alpha Mart $1.00M, Beta Grocers $500k, as the brief gives it" in \
        text["description"]
    rows = dict(_brief_rows({**BRIEF, "retailer_split": split}, {}))
    assert rows["Split, as the brief gives it"] == "Alpha Mart $1.00M, Beta Grocers $500k"
    form = _form({**BRIEF, "retailer_split": split}, {})
    assert form["split_alpha"] == "1000000" and form["split_beta"] == "500000"
    # amounts as a person types them: the budget field read "1.5e+06"
    assert form["total_budget"] == "1500000" and form["experiment_reserve"] == "0.1"
