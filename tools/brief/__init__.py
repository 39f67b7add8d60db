"""Plain-words briefs -> structured briefs the planner can use.

from tools.brief import parse_brief
brief = parse_brief("Allocate $2.5M across Alpha and Beta to maximize incremental margin "
                    "with ROAS >= 3, 10% for experiments", brand="acme")
brief.total_budget, brief.retailers, brief.roas_floor   # 2500000.0 ['alpha', 'beta'] 3.0

Paths: "rules" (deterministic), "llm" (the model alone: it points at the spans of the brief that
state each field, and tested code converts them) and "production" (the model, checked
field by field against the rules and the text; the rules alone when no model answers).
"""

from tools.brief.llm import (
    PARSED_BY_FALLBACK,
    PARSED_BY_LLM,
    PARSED_BY_PRODUCTION,
    PARSED_BY_RULES,
    GenerateJSON,
    model_available,
    parse_brief,
    parse_brief_llm,
    parse_brief_production,
    runtime_generate_json,
)
from tools.brief.prompts import (
    brief_json_schema,
    brief_messages,
    brief_user_message,
    planning_system_message,
    served_user_message,
)
from tools.brief.rules import EMPTY_BRIEF, RuleParse, check_brief, parse_brief_rules, rule_parse
from tools.brief.schema import (
    BRIEF_FIELDS,
    BriefError,
    StructuredBrief,
    brand_retailers,
    brief_constraints,
)

__all__ = [
    "BRIEF_FIELDS",
    "EMPTY_BRIEF",
    "PARSED_BY_FALLBACK",
    "PARSED_BY_LLM",
    "PARSED_BY_PRODUCTION",
    "PARSED_BY_RULES",
    "BriefError",
    "GenerateJSON",
    "RuleParse",
    "StructuredBrief",
    "brand_retailers",
    "brief_constraints",
    "brief_json_schema",
    "brief_messages",
    "brief_user_message",
    "check_brief",
    "model_available",
    "parse_brief",
    "parse_brief_llm",
    "parse_brief_production",
    "parse_brief_rules",
    "planning_system_message",
    "rule_parse",
    "runtime_generate_json",
    "served_user_message",
]
