"""The rule-based brief parser: deterministic, the fallback for the model and its cross-check.

One module per field family, each reading its field from the normalized text and saying what
it chose and why:

* `text`: normalization (number words as digits), masking, clauses;
* `roas`: ROAS floors; `money`: budget amounts, rates, caps, currency;
* `retailers`: retailers named, excluded and unknown; `objective`; `reserve`: the experiment
  reserve; `flight`: dates, periods and durations (`flight_words`: what the words around a
  period say of it); `oos`: the out-of-stock switch;
* `parse`: `rule_parse`, which reads them in order into a `RuleParse`.
"""

from tools.brief.rules.parse import (
    EMPTY_BRIEF,
    RuleParse,
    check_brief,
    parse_brief_rules,
    rule_parse,
)
from tools.brief.rules.text import NUMBER_WORDS, TENS_WORDS, normalize

__all__ = [
    "EMPTY_BRIEF",
    "NUMBER_WORDS",
    "TENS_WORDS",
    "RuleParse",
    "check_brief",
    "normalize",
    "parse_brief_rules",
    "rule_parse",
]
