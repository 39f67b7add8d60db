"""The model's path to a structured brief, and the production path that checks it.

The model sees the brief in the turns `tools.brief.prompts` lays out and answers, as JSON
constrained to `brief_output_schema`, with the span of the brief that states each field; tested
code turns the spans into values (`tools.brief.spans`), so the model never writes a number. It
reaches the model only through a `GenerateJSON` callable, so any runtime (or a test double)
can drive it.

Production never trusts the model alone: each field it reports is checked against the rule
parse and the text. Numbers must occur in the brief, retailers must be ones the text names and
the brand sells through; where the model and the rules disagree the rule value wins, with a
warning. Without a valid answer from the model the rules decide, and `parsed_by` says so.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adapters.base import BaseModelMissingError, gguf_path
from adapters.registry import AdapterSet
from adapters.shared import shared_runtime
from adapters.structured import OutputSchema
from tools.brief.prompts import (
    PLANNING_TASK,
    brief_output_schema,
    brief_user_message,
    planning_system_message,
    split_user_message,
)
from tools.brief.rules import RuleParse, rule_parse
from tools.brief.rules.roas import floor_word_beside
from tools.brief.rules.text import as_float
from tools.brief.schema import (
    BRIEF_FIELDS,
    MAX_RESERVE,
    BriefError,
    Objective,
    StructuredBrief,
    brand_retailers,
    check_brand,
)
from tools.brief.spans import Candidates, SpanError, candidates, convert
from tools.errors import RMNError

# What produced a brief: `parsed_by`.
PARSED_BY_RULES = "rules"
PARSED_BY_LLM = "llm"
PARSED_BY_PRODUCTION = "llm+rules"
PARSED_BY_FALLBACK = "rules-fallback"

PATHS: tuple[str, ...] = ("rules", "llm", "production")

# (system message, user message, output schema) -> the model's JSON object, or None when it
# gave none. The schema is `brief_output_schema`'s: its `json_schema` is what the prompt shows,
# its grammar may be narrower. Runtimes adapt to this; see `runtime_generate_json`.
GenerateJSON = Callable[[str, str, OutputSchema], dict[str, Any] | None]


class ModelFields(BaseModel):
    """The model's answer, validated: every field present, nothing else."""

    model_config = ConfigDict(extra="forbid")

    total_budget: float = Field(gt=0)
    retailers: list[str]
    objective: Objective
    roas_floor: float | None = Field(gt=0)
    experiment_reserve: float = Field(ge=0, le=MAX_RESERVE)
    flight_start: date | None
    flight_end: date | None
    exclude_oos: bool


@dataclass(frozen=True)
class AnswerProblem:
    """What is wrong with the model's answer, and the brief field at fault (None: the answer
    as a whole), so that the model alone refuses a brief as the rules do, naming the field."""

    message: str
    field: str | None = None

    def __str__(self) -> str:
        return self.message


def read_model_answer(
    raw: Any, cands: Candidates
) -> tuple[ModelFields | None, AnswerProblem | None]:
    """(fields, None) for a valid span answer, converted by `tools.brief.spans.convert`; else
    (None, what is wrong with it)."""
    if raw is None:
        return None, AnswerProblem("no JSON")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as err:
            return None, AnswerProblem(f"not JSON ({err.msg})")
    if not isinstance(raw, dict):
        return None, AnswerProblem(f"a JSON {type(raw).__name__}, not an object")
    try:
        fields = ModelFields.model_validate(convert(raw, cands))
    except SpanError as err:
        return None, AnswerProblem(str(err), err.field)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "answer"
        return None, AnswerProblem(f"{where}: {problem['msg']}", str(problem["loc"][0]))
    sold = brand_retailers(cands.brand)
    stray = [r for r in fields.retailers if r not in sold]
    if stray:
        message = f"retailers {stray} are not among {cands.brand}'s ({', '.join(sold)})"
        return None, AnswerProblem(message, "retailers")
    if fields.flight_start and fields.flight_end and fields.flight_end < fields.flight_start:
        return None, AnswerProblem("flight_end is before flight_start", "flight_end")
    return fields, None


def _ask_model(
    text: str, brand: str, today: date, generate_json: GenerateJSON
) -> tuple[ModelFields | None, AnswerProblem | None]:
    cands = candidates(text, brand, today)
    user = brief_user_message(text, brand, today)
    raw = generate_json(planning_system_message(), user, brief_output_schema(cands))
    return read_model_answer(raw, cands)


# --- paths ----------------------------------------------------------------------------------


def parse_brief_llm(
    text: str, brand: str, today: date | None, generate_json: GenerateJSON
) -> StructuredBrief:
    """The model's reading alone, schema-checked but not cross-checked. Raises `BriefError`
    when the model gives no valid answer."""
    check_brand(brand)
    today = today or date.today()
    try:
        fields, problem = _ask_model(text, brand, today, generate_json)
    except RMNError as err:  # the runtime's "no valid answer after the repair turn"
        fields, problem = None, AnswerProblem(err.message)
    if fields is None:
        why = problem or AnswerProblem("no answer")
        raise BriefError(f"the model gave no valid brief: {why}", field=why.field, path="llm")
    try:
        return StructuredBrief(brand_id=brand, parsed_by=PARSED_BY_LLM, **fields.model_dump())
    except ValidationError as err:  # a value the plan cannot take: the model's answer is wrong
        bad = err.errors()[0]
        raise BriefError(
            f"the model gave no valid brief: {bad['loc'][0]}: {bad['msg']}",
            field=str(bad["loc"][0]),
            path="llm",
        ) from None


def parse_brief_production(
    text: str,
    brand: str,
    today: date | None,
    generate_json: GenerateJSON | None,
    no_model_reason: str = "no model available",
) -> StructuredBrief:
    """The model's reading, checked field by field against the rules and the text.

    Errors the rules find (no budget, unknown retailer, ...) stand: the model cannot talk the
    planner into a brief the text does not support, so the model is not asked at all then."""
    parse = rule_parse(text, brand, today)
    parse.raise_errors()
    if generate_json is None:
        brief = parse.brief(PARSED_BY_FALLBACK)
        brief.warnings.append(f"{no_model_reason}; parsed by the rules alone")
        return brief
    try:
        fields, problem = _ask_model(text, brand, parse.today, generate_json)
    except Exception as err:  # any runtime failure (memory, decoding) falls back to the rules
        fields, problem = None, AnswerProblem(f"the model failed ({type(err).__name__}: {err})")
    if fields is None:
        brief = parse.brief(PARSED_BY_FALLBACK)
        brief.warnings.append(f"the model gave no valid brief ({problem}); parsed by the rules")
        return brief
    values, notes = reconcile(fields.model_dump(), parse)
    # The rules' split, while the budget and the retailers are the rules' reading too.
    same = all(values[f] == parse.values[f] for f in ("total_budget", "retailers"))
    brief = StructuredBrief(
        brand_id=brand,
        parsed_by=PARSED_BY_PRODUCTION,
        warnings=[*parse.warnings, *notes],
        defaults=parse.defaults(values),
        retailer_split=parse.split if same else {},
        retailer_caps=parse.caps if same else {},
        retailer_mins=parse.mins if same else {},
        **values,
    )
    return brief


def parse_brief(
    text: str,
    brand: str,
    today: date | None = None,
    path: str = "production",
    generate_json: GenerateJSON | None = None,
) -> StructuredBrief:
    """Parse a brief along one path: "rules", "llm" (needs `generate_json`) or "production"
    (the model checked by the rules; the rules alone when `generate_json` is None)."""
    if path == "rules":
        return rule_parse(text, brand, today).brief(PARSED_BY_RULES)
    if path == "llm":
        if generate_json is None:
            raise BriefError("the llm path needs a model; none is available", path="llm")
        return parse_brief_llm(text, brand, today, generate_json)
    if path == "production":
        return parse_brief_production(text, brand, today, generate_json)
    raise BriefError(f"unknown parse path {path!r}; use one of {', '.join(PATHS)}", path=path)


# --- cross-check ----------------------------------------------------------------------------


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def _occurs(value: float, numbers: list[float]) -> bool:
    return any(_close(value, n) for n in numbers)


def _same(name: str, a: Any, b: Any, brand: str) -> bool:
    if name == "retailers":
        everything = set(brand_retailers(brand))
        return (set(a) or everything) == (set(b) or everything)
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return _close(float(a), float(b))
    return a == b


_MONTH_WORDS = {
    1: "jan", 2: "feb", 3: "mar", 4: "apr", 5: "may", 6: "jun",
    7: "jul", 8: "aug", 9: "sep", 10: "oct", 11: "nov", 12: "dec",
}  # fmt: skip


def _date_in_text(value: date, parse: RuleParse) -> bool:
    low = parse.text.lower()
    if value.isoformat() in low:
        return True
    month_named = _MONTH_WORDS[value.month] in low or _occurs(float(value.month), parse.numbers)
    year_ok = _occurs(float(value.year), parse.numbers) or (
        not re.search(r"\b20\d\d\b", low) and 0 <= (value - parse.today).days <= 366
    )
    return month_named and _occurs(float(value.day), parse.numbers) and year_ok


def _beside_floor_word(value: float, low: str) -> bool:
    """Whether the number `value` is written somewhere in `low` with a floor word beside it
    ("nothing below 2"; 5 of the floors the model alone read on the read sets had no word of
    ROAS in their brief)."""
    return any(
        _close(as_float(m.group()), value) and floor_word_beside(low, *m.span())
        for m in re.finditer(r"(?<![\w.])\d+(?:\.\d+)?", low)
    )


def _fmt(value: Any) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}" if abs(value) < 1e5 else f"{value:,.0f}"
    return json.dumps(value) if isinstance(value, list | bool) or value is None else str(value)


# Notes that leave no doubt about the brief: the model disagreed and the text (or the default
# when the text is silent) decided, or the model was not used at all.
_SETTLED = re.compile(
    r"^\w+: the model read .*; kept .*$|; parsed by the rules alone$|; parsed by the rules$"
    r"|of the market held out$"  # a holdout share read as the reserve is said, not asked
    r"|^flight_start: the brief's '.*' is read as \d"  # a flight read from words (FLIGHT_NOTE)
)


def settled(warning: str) -> bool:
    """Whether a parse warning is a note the text already settled (no human needed)."""
    return bool(_SETTLED.search(warning))


def reconcile(model: dict[str, Any], parse: RuleParse) -> tuple[dict[str, Any], list[str]]:
    """The brief's fields from the model's answer and the rule parse, and a note for every
    field where they differ. The rule value wins wherever the text states the field; where it
    does not, a model value is kept only if the text backs it (its number occurs in the brief,
    its retailer is named), and said to come from the model."""
    values = dict(parse.values)
    notes: list[str] = []
    brand = parse.brand_id
    for name in BRIEF_FIELDS:
        said, ruled = model[name], parse.values[name]
        if _same(name, said, ruled, brand):
            continue
        if name in parse.found:
            notes.append(
                f"{name}: the model read {_fmt(said)}, the text gives {_fmt(ruled)}; "
                f"kept {_fmt(ruled)}"
            )
            continue
        backed = False
        low = parse.text.lower()
        if name == "total_budget":
            backed = _occurs(float(said), parse.numbers)
        elif name == "roas_floor":
            # Small numbers are everywhere (dates, counts): the floor needs a number no other
            # field explains, in a brief that talks about ROAS or with a floor word beside it.
            backed = (
                said is not None
                and _occurs(float(said), parse.free_numbers)
                and (bool(re.search(r"\b(?:i?roas|return)", low)) or _beside_floor_word(said, low))
            )
        elif name == "experiment_reserve":
            backed = _occurs(float(said), parse.numbers) and bool(
                re.search(r"experiment|test|holdout|hold back|reserve|set aside", low)
            )
        elif name == "retailers":
            backed = bool(said) and set(said) <= parse.retailer_mentions
        elif name in ("flight_start", "flight_end") and said is not None:
            backed = _date_in_text(said, parse)
        elif name == "exclude_oos":
            backed = bool(re.search(r"stock|\boos\b", parse.text.lower()))
        elif name == "objective":
            backed = True  # a reading of intent, not a number: kept, and flagged below
        if backed:
            values[name] = said
            notes.append(f"{name}: {_fmt(said)} read by the model only; check it")
        else:
            notes.append(
                f"{name}: the model read {_fmt(said)}, which the brief does not state; "
                f"kept {_fmt(ruled)}"
            )
    start, end = values["flight_start"], values["flight_end"]
    if start and end and end < start:
        values["flight_start"], values["flight_end"] = (
            parse.values["flight_start"],
            parse.values["flight_end"],
        )
        notes.append("flight: the model's dates conflict with the text's; kept the text's")
    return values, notes


# --- the runtime ----------------------------------------------------------------------------


def runtime_generate_json(
    brand: str | None = None,
    tenant: str | None = None,
    runtime: Any = None,
    adapters: Literal["auto", "none"] = "auto",
    max_new_tokens: int = 96,
) -> GenerateJSON:
    """A `GenerateJSON` backed by `adapters.runtime.Runtime` (loaded once per process when not
    given). `adapters="auto"` composes the planning task adapter where it is installed (brand
    adapters are left out: see `nodes.planner.parse`); "none" asks the base model alone.
    `brand=None` reads the brand from each user message (for evaluations that mix brands);
    the tenant defaults to the brand's.

    An answer that fails the schema after the runtime's repair turn raises the runtime's
    `StructuredOutputError`, whose message says why; the production path reports it and lets
    the rules finish."""
    rt = runtime if runtime is not None else shared_runtime()
    installed = (
        {(e.metadata.kind, e.metadata.id) for e in rt.registry.entries()}
        if adapters == "auto"
        else set()
    )

    def generate(system: str, user: str, schema: OutputSchema) -> dict[str, Any] | None:
        who = brand or split_user_message(user)[1]
        # No brand adapter: trained on copy, it broke the span answers (nodes/planner.py).
        chosen = AdapterSet(task=PLANNING_TASK if ("task", PLANNING_TASK) in installed else None)
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        out = rt.generate(
            messages,
            chosen,
            tenant or who,
            json_schema=schema,
            max_new_tokens=max_new_tokens,
            on_invalid="raise",
        )
        return out.parsed if isinstance(out.parsed, dict) else None

    return generate


def model_available() -> tuple[bool, str]:
    """(whether the production path can reach a model, why not). Cheap: loads nothing."""
    if importlib.util.find_spec("adapters.runtime") is None:
        return False, "the LLM runtime (adapters.runtime) is not installed"
    try:
        gguf_path()
    except BaseModelMissingError as err:
        return False, err.message
    return True, ""
