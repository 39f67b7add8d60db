"""A reviewer's answer to a question the graph asks (confirm a brief, relax an infeasible one,
approve a plan): the forms an answer comes in, its schema, reading it into one `ReviewAction`,
checking that it answers the question now pending, and applying an edit's changes.

An answer comes in any of three forms, each read into the same review:

    {"action": "approve"} | {"action": "edit", "changes": {...}} | {"action": "reject",
        "reason": "..."}                                             # ours, since the start
    {"decisions": [{"type": "approve"} | {"type": "edit", "edited_action": {"name": ...,
        "args": {...changes}}} | {"type": "reject", "message": "..."}]}   # LangChain HITL
    [{"type": "accept" | "edit" | "response" | "ignore", "args": ...}]    # Agent Inbox

Agent Inbox's `accept` approves, `edit` edits (its args are the changes, or `{"action",
"args": changes}`), `response` rejects with the text as the reason and `ignore` rejects with
the reason "ignored by reviewer". Each form may name the question it answers with
`plan_version` (at the top, or inside the decision); an answer naming another version than
the pending question's is stale (`StaleDecisionError`) and never applied. An answer naming no
version answers whatever question is pending (clients from before versions).

    review = read_review({"decisions": [{"type": "edit", "edited_action": {"name":
        "approve_plan", "args": {"roas_floor": 2.5}}}]})
    check_version(review.plan_version, question)   # its args: kind, plan_version
    parsed, constraints = apply_changes(parsed, constraints, review.changes, gtins=gtins)

Every problem is a `ReviewError` that says what is wrong; the graph asks the question again
with it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tools.brief.schema import (
    BRIEF_FIELDS,
    MAX_BUDGET,
    MAX_FLIGHT_DAYS,
    MAX_RESERVE,
    Objective,
    StructuredBrief,
    brand_retailers,
)
from tools.errors import RMNError

ACTIONS: tuple[str, ...] = ("approve", "edit", "reject")
# The brief's fields an edit may change: those read from the text, and its split by retailer.
BRIEF_EDITS: tuple[str, ...] = (*BRIEF_FIELDS, "retailer_split")
# What an edit may change beyond the brief's own fields.
CONSTRAINT_FIELDS: tuple[str, ...] = (
    "retailer_caps", "retailer_mins", "excluded_skus", "min_spend_fraction"
)
# Agent Inbox's response types -> our actions.
INBOX_ACTIONS: dict[str, str] = {
    "accept": "approve",
    "edit": "edit",
    "response": "reject",
    "ignore": "reject",
}
IGNORED = "ignored by reviewer"
# Bounds of an edit beyond which a number is a typo, not a plan: a budget or a cap above the
# largest budget a brief may plan (`tools.brief.schema.MAX_BUDGET`), a return-on-ad-spend
# floor above 1,000.
MAX_ROAS = 1000.0
MAX_REASON = 2000
MAX_VERSION = 64


class ReviewError(RMNError):
    """A resume payload that is not a valid review action (the interrupt is asked again)."""

    kind = "invalid_review"


class StaleDecisionError(ReviewError):
    """An answer naming another question (plan version) than the one pending."""

    kind = "stale_decision"


class ReviewAction(BaseModel):
    """What a human answers an interrupt with, whatever form it came in."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "edit", "reject"]
    changes: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = Field(None, max_length=MAX_REASON)
    plan_version: str | None = Field(None, max_length=MAX_VERSION)


Usd = Annotated[float, Field(ge=0, le=MAX_BUDGET)]


class Changes(BaseModel):
    """What an edit may change, each value checked: finite numbers only (no NaN, no
    infinities, nothing beyond a float), no negative amounts. Null lifts an optional limit
    (the ROAS floor, a retailer's cap, the minimum share placed). Its JSON schema is the
    `args_schema` a review UI builds its edit form from."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    total_budget: float | None = Field(None, gt=0, le=MAX_BUDGET, description="USD over the flight")
    retailers: list[str] | None = Field(None, description="retailer ids; [] = all the brand's")
    objective: Objective | None = None
    roas_floor: float | None = Field(None, gt=0, le=MAX_ROAS, description="minimum iROAS")
    experiment_reserve: float | None = Field(
        None, ge=0, le=MAX_RESERVE, description="share of the budget held for experiments"
    )
    flight_start: date | None = None
    flight_end: date | None = None
    exclude_oos: bool | None = Field(None, description="leave out products likely out of stock")
    retailer_split: dict[str, Usd] | None = Field(
        None, description="the budget's division, USD per retailer id, kept as shares after "
        "the reserve; null or {} lets the optimizer split"
    )
    retailer_caps: dict[str, Usd | None] | None = Field(
        None, description="USD cap per retailer id; null lifts a cap"
    )
    retailer_mins: dict[str, Usd | None] | None = Field(
        None, description="USD the plan spends at least at a retailer id (a JBP's commitment); "
        "null lifts a minimum"
    )
    excluded_skus: list[str] | None = Field(None, description="GTINs held at zero spend")
    min_spend_fraction: float | None = Field(
        None, gt=0, le=1, description="share of the spendable budget the plan must place"
    )


def edit_schema() -> dict[str, Any]:
    """The JSON schema of an edit's changes (`Changes`): bounded numbers, known fields."""
    return Changes.model_json_schema() | {
        "title": "Changes",
        "description": "What an edit may change; null lifts an optional limit.",
    }


def review_schema(actions: tuple[str, ...] = ACTIONS) -> dict[str, Any]:
    """JSON schema of a resume payload in any of its forms, with only `actions` possible:
    the interrupt's `response_schema`, checked by the HTTP server before a run starts. It
    checks the shape; the values of an edit are checked by the graph, which asks again."""
    version = {"type": "string", "maxLength": MAX_VERSION}
    text = {"type": "string", "maxLength": MAX_REASON}
    ours = {
        "type": "object",
        "properties": {
            "action": {"enum": list(actions)},
            "changes": {"type": "object"},
            "reason": {"type": ["string", "null"], "maxLength": MAX_REASON},
            "plan_version": version,
        },
        "required": ["action"],
    }
    decision = {
        "type": "object",
        "properties": {
            "type": {"enum": list(actions)},
            "edited_action": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "args": {"type": "object"}},
                "required": ["args"],
            },
            "message": text,
            "plan_version": version,
        },
        "required": ["type"],
    }
    decisions = {
        "type": "object",
        "properties": {
            "decisions": {"type": "array", "items": decision, "minItems": 1, "maxItems": 1},
            "plan_version": version,
        },
        "required": ["decisions"],
    }
    inbox_types = [t for t, action in INBOX_ACTIONS.items() if action in actions]
    inbox = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"type": {"enum": inbox_types}, "plan_version": version},
            "required": ["type"],
        },
        "minItems": 1,
        "maxItems": 1,
    }
    return {"anyOf": [ours, decisions, inbox]}


# --------------------------------------------------------------------------- reading


def _one(items: Any, form: str) -> dict[str, Any]:
    if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], dict):
        raise ReviewError(f"{form}: answer with one decision (an object) for the one question")
    return items[0]


def _from_decisions(payload: dict[str, Any]) -> dict[str, Any]:
    """LangChain's `{"decisions": [...]}` as our fields."""
    extra = sorted(set(payload) - {"decisions", "plan_version"})
    if extra:
        raise ReviewError(f"unexpected field(s) {', '.join(extra)} next to decisions")
    one = _one(payload["decisions"], "decisions")
    kind = one.get("type")
    out: dict[str, Any] = {"plan_version": payload.get("plan_version", one.get("plan_version"))}
    if kind == "approve":
        return out | {"action": "approve"}
    if kind == "reject":
        return out | {"action": "reject", "reason": one.get("message")}
    if kind == "edit":
        edited = one.get("edited_action")
        if not isinstance(edited, dict) or not isinstance(edited.get("args"), dict):
            raise ReviewError("an edit decision needs edited_action: {'name': ..., 'args': "
                              "{the changes}}")  # fmt: skip
        return out | {"action": "edit", "changes": edited["args"], "name": edited.get("name")}
    raise ReviewError(f"decision type {kind!r} is not one of approve, edit, reject")


def _from_inbox(payload: list[Any]) -> dict[str, Any]:
    """Agent Inbox's `[{"type", "args"}]` as our fields."""
    one = _one(payload, "Agent Inbox response")
    kind, args = one.get("type"), one.get("args")
    action = INBOX_ACTIONS.get(str(kind))
    if action is None:
        raise ReviewError(f"response type {kind!r} is not one of {', '.join(INBOX_ACTIONS)}")
    out: dict[str, Any] = {"action": action, "plan_version": one.get("plan_version")}
    if kind == "edit":
        if isinstance(args, dict) and set(args) == {"action", "args"}:
            out["name"], args = args["action"], args["args"]
        out["changes"] = args if isinstance(args, dict) else {}
    elif kind == "response":
        out["reason"] = args if isinstance(args, str) else None
    elif kind == "ignore":
        out["reason"] = IGNORED
    return out


def _fields(payload: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    """Any answer form as our fields (action, changes, reason, plan_version, name)."""
    if isinstance(payload, str) and payload in allowed and payload != "edit":
        return {"action": payload}
    if isinstance(payload, list):
        return _from_inbox(payload)
    if not isinstance(payload, dict):
        raise ReviewError(
            "answer with {'action': 'approve'}, {'decisions': [{'type': 'approve'}]} or an "
            f"Agent Inbox response list; got {type(payload).__name__}"
        )
    if "decisions" in payload:
        return _from_decisions(payload)
    return dict(payload)


def _echoed_changes(args: dict[str, Any], shown: dict[str, Any]) -> dict[str, Any]:
    """An edit that sends back the whole question with fields edited in place (as generic
    review UIs do): the brief's and the constraints' fields that differ from what was shown.
    Anything else must come back as it was shown."""
    changes: dict[str, Any] = {}
    for key, value in args.items():
        before = shown.get(key)
        if key in ("plan_version", "error") or value == before:
            continue
        if key in ("brief", "constraints") and isinstance(value, dict):
            prior = before if isinstance(before, dict) else {}
            changes.update({k: v for k, v in value.items() if k not in prior or prior[k] != v})
        elif key in Changes.model_fields:
            changes[key] = value
        else:
            raise ReviewError(
                f"{key!r} is what the question shows, not something an edit changes; edit "
                "the brief's fields or the constraints"
            )
    return changes


def read_review(
    payload: Any, allowed: tuple[str, ...] = ACTIONS, *, shown: dict[str, Any] | None = None
) -> ReviewAction:
    """A resume payload in any form as a `ReviewAction`, or a `ReviewError` that says what is
    wrong. `shown` is the question's args, for an edit that sends the whole question back."""
    fields = _fields(payload, allowed)
    fields.pop("name", None)  # the action an edit names: there is one per question
    changes = fields.get("changes")
    if shown is not None and isinstance(changes, dict) and ("kind" in changes or
                                                            "plan_version" in changes):  # fmt: skip
        fields["plan_version"] = fields.get("plan_version") or changes.get("plan_version")
        fields["changes"] = _echoed_changes(changes, shown)
    fields = {k: v for k, v in fields.items() if v is not None or k == "action"}
    try:
        review = ReviewAction.model_validate(fields)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "payload"
        raise ReviewError(
            f"invalid review ({where}: {problem['msg']}); actions: {', '.join(allowed)}"
        ) from None
    if review.action not in allowed:
        raise ReviewError(
            f"'{review.action}' is not possible here; choose one of {', '.join(allowed)}"
        )
    if review.action == "edit" and not review.changes:
        raise ReviewError("an edit needs changes, e.g. {'roas_floor': 2.0}")
    if review.action == "reject" and not (review.reason or "").strip():
        raise ReviewError("a rejection needs a reason")
    return review


def review_action(payload: Any) -> str | None:
    """The action an answer asks for (approve, edit, reject), read leniently: None when it
    cannot be read. For deciding who may give it; `read_review` checks it in full."""
    try:
        action = _fields(payload, ACTIONS).get("action")
    except ReviewError:
        return None
    return action if action in ACTIONS else None


def answer_version(payload: Any) -> str | None:
    """The plan version an answer names, in any form; None when it names none."""
    try:
        version = _fields(payload, ACTIONS).get("plan_version")
    except ReviewError:
        return None
    return version if isinstance(version, str) else None


def check_version(version: str | None, question: dict[str, Any]) -> None:
    """Raise `StaleDecisionError` when an answer names (`version`) another plan version than
    the question's (its args: kind, plan_version); an answer naming none answers it."""
    current = question.get("plan_version")
    if version is None or version == current:
        return
    kind = question.get("kind")
    raise StaleDecisionError(
        f"stale decision: it answers plan version {version}, but the question now pending is "
        f"the {kind} question of plan version {current}; review that one and answer with its "
        "plan_version",
        current={"kind": kind, "plan_version": current},
    )


# --------------------------------------------------------------------------- edits


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value]
    raise ReviewError(f"expected a list or a comma-separated string, got {value!r}")


def _split_edits(parsed: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`retailer_split.<id>` (the CLI's form) changes one retailer's amount of the brief's
    split and keeps the others; a whole `retailer_split` replaces it."""
    nested = {k.split(".", 1)[1]: v for k, v in changes.items() if k.startswith("retailer_split.")}
    if not nested:
        return changes
    rest = {k: v for k, v in changes.items() if not k.startswith("retailer_split.")}
    return rest | {"retailer_split": {**(parsed.get("retailer_split") or {}), **nested}}


def _checked(changes: dict[str, Any]) -> Changes:
    """The changes as `Changes`: known fields, each value valid, `retailer_caps.<id>` folded
    into `retailer_caps` (and `retailer_mins.<id>` into `retailer_mins`)."""
    folded: dict[str, Any] = {}
    for key, value in changes.items():
        if key.startswith(("retailer_caps.", "retailer_mins.")):
            key, retailer = key.split(".", 1)
            value = {retailer: value}
        if key not in Changes.model_fields:
            changeable = ", ".join(Changes.model_fields)
            raise ReviewError(f"cannot change {key!r}; changeable: {changeable}")
        if key in ("retailers", "excluded_skus") and value is not None:
            value = _as_list(value)
        if key in ("retailer_caps", "retailer_mins") and isinstance(value, dict):
            value = {**(folded.get(key) or {}), **value}
        folded[key] = value
    try:
        return Changes.model_validate(folded)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "changes"
        value = problem.get("input")
        raise ReviewError(f"invalid change ({where}: {problem['msg']}; got {value!r})") from None


def apply_changes(
    parsed: dict[str, Any],
    constraints: dict[str, Any],
    changes: dict[str, Any],
    *,
    gtins: set[str] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The brief and constraints after a reviewer's changes, validated (`Changes`): brief
    fields (see `tools.brief.BRIEF_FIELDS`), `retailer_caps` and `retailer_mins` ({retailer:
    USD}, or `retailer_caps.<id>`; null lifts one), `excluded_skus` (GTINs held at zero spend) and
    `min_spend_fraction` (the share of the spendable budget the plan must place; null: all).
    A flight runs 1 to 366 days. Raises `ReviewError`."""
    checked = _checked(_split_edits(parsed, changes))
    given = checked.model_fields_set
    caps = _per_retailer(constraints, checked, "retailer_caps")
    mins = _per_retailer(constraints, checked, "retailer_mins")
    excluded = list(constraints.get("excluded_skus") or [])
    if "excluded_skus" in given:
        excluded = sorted(set(checked.excluded_skus or []))
    fraction = constraints.get("min_spend_fraction")
    if "min_spend_fraction" in given:
        fraction = checked.min_spend_fraction
    brief_changes = checked.model_dump(mode="json", include=given & set(BRIEF_EDITS))
    if "retailers" in brief_changes:
        brief_changes["retailers"] = [r.lower() for r in brief_changes["retailers"] or []]
    if "retailer_split" in brief_changes:
        split = brief_changes["retailer_split"] or {}
        brief_changes["retailer_split"] = {r.lower(): v for r, v in split.items()}
    brief = _edited_brief(parsed, brief_changes)
    _check_scope(brief, {"cap": caps, "minimum": mins}, excluded, gtins)
    above = [r for r, v in mins.items() if r in caps and v > caps[r]]
    if above:
        raise ReviewError(f"the minimum at {above[0]} (${mins[above[0]]:,.0f}) is above its cap "
                          f"(${caps[above[0]]:,.0f}): lower one or lift the other")  # fmt: skip
    return brief.model_dump(mode="json"), {
        "retailer_caps": caps,
        "retailer_mins": mins,
        "excluded_skus": excluded,
        "min_spend_fraction": fraction,
    }


def _per_retailer(constraints: dict[str, Any], checked: Changes, key: str) -> dict[str, float]:
    """A per-retailer limit (`retailer_caps`, `retailer_mins`) after the changes: each
    retailer's new amount, null lifting it."""
    out = dict(constraints.get(key) or {})
    if key not in checked.model_fields_set:
        return out
    given = getattr(checked, key)
    if given is None:
        raise ReviewError(f"{key} takes {{retailer: USD}}, e.g. {{'alpha': 500000}}")
    for retailer, amount in given.items():
        if amount is None:
            out.pop(retailer, None)
        else:
            out[retailer] = amount
    return out


def _edited_brief(parsed: dict[str, Any], changes: dict[str, Any]) -> StructuredBrief:
    try:
        # A field the reviewer set is theirs now, no longer the brief's default.
        defaults = [f for f in parsed.get("defaults") or [] if f not in changes]
        brief = StructuredBrief.model_validate({**parsed, **changes, "defaults": defaults})
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "brief"
        raise ReviewError(f"invalid change ({where}: {problem['msg']})") from None
    if brief.flight_start and brief.flight_end:
        days = (brief.flight_end - brief.flight_start).days + 1
        if days > MAX_FLIGHT_DAYS:
            raise ReviewError(
                f"a flight runs 1 to {MAX_FLIGHT_DAYS} days; {brief.flight_start} to "
                f"{brief.flight_end} is {days}"
            )
    return brief


def _check_scope(
    brief: StructuredBrief,
    limits: dict[str, dict[str, float]],
    excluded: list[str],
    gtins: set[str] | None,
) -> None:
    """The edited brief's retailers are the brand's, its per-retailer limits (`limits`: caps
    and minimums, by what they are) name retailers it plans, and its excluded SKUs are among
    the plan's line items (when `gtins` is known)."""
    sold = brand_retailers(brief.brand_id)
    stray = [r for r in brief.retailers if r not in sold]
    if stray:
        raise ReviewError(
            f"{brief.brand_id} does not sell through {', '.join(stray)}; its retailers: "
            f"{', '.join(sold)}"
        )
    planned = brief.resolved_retailers()
    for what, amounts in limits.items():
        stray = sorted(set(amounts) - set(planned))
        if stray:
            raise ReviewError(
                f"{what} for {', '.join(stray)}, which the plan does not use; its retailers: "
                f"{', '.join(planned)}"
            )
    if gtins is not None:
        unknown = sorted(set(excluded) - gtins)
        if unknown:
            raise ReviewError(
                f"excluded SKU(s) {', '.join(unknown)} are not among the plan's line items"
            )
