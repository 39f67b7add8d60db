"""Policy questions with short answers, read from a retailer's typed rules (the front matter),
each tied to the corpus section that states it.

A retailer adapter answers from a retrieved policy excerpt, the way the copilot serves it: the
prompt carries the section, the answer is the short fact. Questions are grouped by section so
that a held-out split asks about sections the adapter never saw in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tools.policy import RetailerPolicy, load_retailer_policy
from tools.policy.prompts import PLACEMENT_LABELS, placement_label

EXPERIMENT_LABELS = {
    "audience_holdout": "audience holdout",
    "geo_holdout": "geo holdout",
    "switchback": "switchback",
    "pre_post": "pre/post",
}
CAPITALIZATION_ANSWERS = {
    "sentence_case": "Sentence case",
    "title_case": "Title case",
    "any": "Any capitalization",
}


@dataclass(frozen=True)
class PolicyFact:
    """One question (in a few wordings) and its short answer."""

    source: str  # rag_corpus/retailers/<id>/<doc>.md#<anchor>
    questions: tuple[str, ...]
    answer: str
    rule: str  # e.g. creative.placements.sponsored_search


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def _money(value: float) -> str:
    return f"${value:,.2f}" if value < 100 else f"${value:,.0f}"


def _pct(value: float) -> str:
    return f"{value * 100:g}%"


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def policy_facts(policy: RetailerPolicy) -> list[PolicyFact]:
    """Every question the retailer's rules answer, in a stable order: one section of facts per
    policy document."""
    facts = _Facts(policy)
    for section in _SECTIONS:
        section(facts)
    return facts.facts


@dataclass
class _Facts:
    """The facts collected so far; `add` keeps only rules a section of the body explains."""

    policy: RetailerPolicy
    facts: list[PolicyFact] = field(default_factory=list)

    def add(self, policy_type: str, keys: tuple[str, ...], answer: str, *questions: str) -> None:
        source = self.policy.source_for(policy_type, *keys)
        if "#" in source:  # only rules a section of the body explains
            self.facts.append(PolicyFact(source, questions, answer, f"{policy_type}.{keys[0]}"))


def _creative_facts(facts: _Facts) -> None:
    """Headline and body limits, style rules and price claims (creative_specs)."""
    policy = facts.policy
    n = policy.name
    creative = policy.creative
    for placement, spec in creative.placements.items():
        p, keys = placement_label(placement), (f"placements.{placement}", "placements")
        facts.add(
            "creative",
            keys,
            f"{spec.max_headline_chars} characters",
            f"What is the maximum headline length for {p} ads at {n}?",
            f"How many characters can a {p} headline have at {n}?",
        )
        facts.add(
            "creative",
            keys,
            f"{spec.max_body_chars} characters",
            f"What is the maximum body copy length for {p} ads at {n}?",
            f"How long can {p} body copy be at {n}?",
        )
    facts.add(
        "creative",
        ("capitalization",),
        CAPITALIZATION_ANSWERS[creative.capitalization.value],
        f"What capitalization must {n} headlines use?",
        f"Which case should I write {n} ad headlines in?",
    )
    facts.add(
        "creative",
        ("all_caps_words_allowed",),
        _yes(creative.all_caps_words_allowed),
        f"Can {n} copy use all-caps words for emphasis?",
        f"May I write a word in all caps to stress it in a {n} ad?",
    )
    if creative.allowed_acronyms:
        facts.add(
            "creative",
            ("allowed_acronyms",),
            ", ".join(creative.allowed_acronyms),
            f"Which acronyms may appear in all caps at {n}?",
            f"What all-caps acronyms does {n} accept?",
        )
    facts.add(
        "creative",
        ("emoji_allowed",),
        _yes(creative.emoji_allowed),
        f"Are emoji allowed in {n} ads?",
        f"Can I put an emoji in {n} ad copy?",
    )
    facts.add(
        "creative",
        ("max_exclamation_marks",),
        str(creative.max_exclamation_marks),
        f"How many exclamation marks may {n} ad copy contain?",
        f"What is the most exclamation marks allowed in a {n} ad?",
    )
    price = creative.price_claims
    if price.max_discount_pct is not None:
        facts.add(
            "creative",
            ("price_claims",),
            f"{price.max_discount_pct:g}% off",
            f"What is the largest discount {n} copy may claim?",
            f"How deep a percentage saving can a {n} ad advertise?",
        )
    for phrase in price.banned_phrases:
        facts.add(
            "creative",
            ("price_claims",),
            "No",
            f"Can a {n} ad say '{phrase}'?",
            f"Is '{phrase}' allowed in {n} price claims?",
        )


def _prohibited_facts(facts: _Facts) -> None:
    """Prohibited terms and claims."""
    policy = facts.policy
    n = policy.name
    for term in policy.prohibited.prohibited_terms:
        facts.add(
            "prohibited_content",
            ("prohibited_terms",),
            "No",
            f"Is '{term}' allowed in {n} ads?",
            f"Can I write '{term}' in a {n} ad?",
        )
    for claim in policy.prohibited.prohibited_claims:
        keys = (f"prohibited_claims.{claim.id}", "prohibited_claims")
        scope = f"a {placement_label(claim.categories[0])}" if claim.categories else "any"
        for phrase in claim.phrases:
            facts.add(
                "prohibited_content",
                keys,
                "No",
                f"Can {scope} ad at {n} say '{phrase}'?",
                f"Is the claim '{phrase}' allowed in {scope} ad at {n}?",
            )


def _disclaimer_facts(facts: _Facts) -> None:
    """Which disclaimer each trigger term and category needs."""
    policy = facts.policy
    n = policy.name
    for rule in policy.disclaimers.required_disclaimers:
        keys = (f"required_disclaimers.{rule.id}", "required_disclaimers")
        for term in rule.trigger_terms:
            facts.add(
                "disclaimers",
                keys,
                rule.text,
                f"What disclaimer must a {n} ad carry when it mentions '{term}'?",
                f"Which disclaimer goes with '{term}' in a {n} ad?",
            )
        for category in rule.trigger_categories:
            facts.add(
                "disclaimers",
                keys,
                rule.text,
                f"What disclaimer must {placement_label(category)} ads at {n} carry?",
                f"Which disclaimer do {placement_label(category)} ads need at {n}?",
            )


def _data_access_facts(facts: _Facts) -> None:
    """Clean-room rules: cell size, fields, dimensions, metrics, privacy budget."""
    policy = facts.policy
    n = policy.name
    data = policy.data_access
    facts.add(
        "data_access",
        ("min_cell_size",),
        str(data.min_cell_size),
        f"What is the minimum cell size in {n}'s clean room?",
        f"How many events must each {n} clean-room output row aggregate?",
    )
    for name in data.blocked_fields:
        facts.add(
            "data_access",
            ("blocked_fields",),
            "No",
            f"Can I query {name} in {n}'s clean room?",
            f"Is {name} available in the {n} clean room?",
        )
    for dim in data.allowed_dimensions:
        facts.add(
            "data_access",
            ("allowed_dimensions",),
            "Yes",
            f"Can {n} clean-room results be grouped by {dim}?",
            f"Is {dim} an allowed dimension in the {n} clean room?",
        )
    for metric in data.allowed_metrics:
        facts.add(
            "data_access",
            ("allowed_metrics",),
            "Yes",
            f"Can I request {metric.replace('_', ' ')} from {n}'s clean room?",
            f"Does the {n} clean room release {metric.replace('_', ' ')}?",
        )
    facts.add(
        "data_access",
        ("dp_required",),
        _yes(data.dp_required),
        f"Is differential privacy required in {n}'s clean room?",
        f"Must {n} clean-room queries use differential privacy?",
    )
    facts.add(
        "data_access",
        ("default_epsilon",),
        str(data.default_epsilon),
        f"What is the default epsilon per query at {n}?",
        f"Which epsilon does a {n} clean-room query use by default?",
    )
    facts.add(
        "data_access",
        ("tenant_epsilon_budget",),
        str(data.tenant_epsilon_budget),
        f"What is each tenant's privacy budget at {n}?",
        f"How much epsilon may one tenant spend at {n}?",
    )
    for metric, bound in data.sum_clamp.items():
        facts.add(
            "data_access",
            ("sum_clamp",),
            f"{bound:g}",
            f"What is the per-event contribution bound for {metric.replace('_', ' ')} at {n}?",
            f"How much can one event contribute to {metric.replace('_', ' ')} at {n}?",
        )


def _measurement_facts(facts: _Facts) -> None:
    """Experiment types, test lengths, holdouts and attribution windows."""
    policy = facts.policy
    n = policy.name
    m = policy.measurement
    allowed = {t.value for t in m.allowed_experiment_types}
    for exp, label in EXPERIMENT_LABELS.items():
        facts.add(
            "measurement",
            ("allowed_experiment_types",),
            _yes(exp in allowed),
            f"Does {n} accept {label} tests?",
            f"Can a brand run a {label} experiment at {n}?",
        )
    # (rule, answer, question, another wording)
    rules: list[tuple[str, str, str, str]] = [
        (
            "min_test_days",
            _days(m.min_test_days),
            f"What is the minimum test length at {n}?",
            f"How many days must a {n} experiment run at least?",
        ),
        (
            "max_test_days",
            _days(m.max_test_days),
            f"What is the maximum test length at {n}?",
            f"How long can a {n} experiment run at most?",
        ),
        (
            "min_holdout_pct",
            _pct(m.min_holdout_pct),
            f"What is the smallest holdout {n} allows?",
            f"What is the minimum holdout share for a {n} test?",
        ),
        (
            "max_holdout_pct",
            _pct(m.max_holdout_pct),
            f"What is the largest holdout {n} allows?",
            f"What is the maximum holdout share for a {n} test?",
        ),
        (
            "max_concurrent_tests",
            str(m.max_concurrent_tests),
            f"How many experiments may a brand run at once at {n}?",
            f"What is the limit on concurrent tests per brand at {n}?",
        ),
        (
            "click_attribution_days",
            _days(m.click_attribution_days),
            f"What is the click attribution window at {n}?",
            f"How long after a click are sales attributed at {n}?",
        ),
        (
            "view_attribution_days",
            _days(m.view_attribution_days),
            f"What is the view attribution window at {n}?",
            f"How long after a view are sales attributed at {n}?",
        ),
    ]
    if m.switchback_min_period_hours is not None:
        rules.append(
            (
                "switchback_min_period_hours",
                f"{m.switchback_min_period_hours} hours",
                f"What is the shortest switchback period at {n}?",
                f"How long must each switchback period last at {n}?",
            )
        )
    for rule, answer, *questions in rules:
        facts.add("measurement", (rule,), answer, *questions)


def _bidding_facts(facts: _Facts) -> None:
    """Bid floors, spend caps, budgets and category restrictions."""
    policy = facts.policy
    n = policy.name
    bidding = policy.bidding
    unit = {"cpc": "per click", "cpm": "CPM", "vcpm": "vCPM"}
    for placement, bid in bidding.placements.items():
        p = placement_label(placement)
        facts.add(
            "bidding",
            (f"placements.{placement}", "placements.min_bid_usd", "placements"),
            f"{_money(bid.min_bid_usd)} {unit[bid.pricing_model.value]}",
            f"What is the minimum bid for {p} at {n}?",
            f"What is the bid floor for {p} ads at {n}?",
        )
        facts.add(
            "bidding",
            (f"placements.{placement}", "placements.max_monthly_spend_usd", "placements"),
            _money(bid.max_monthly_spend_usd),
            f"What is the monthly spend cap for {p} at {n}?",
            f"How much can one brand spend per month on {p} at {n}?",
        )
    facts.add(
        "bidding",
        ("min_daily_budget_usd",),
        _money(bidding.min_daily_budget_usd),
        f"What is the minimum daily budget at {n}?",
        f"How small can a {n} campaign's daily budget be?",
    )
    for category in bidding.prohibited_categories:
        facts.add(
            "bidding",
            ("prohibited_categories",),
            "No",
            f"Can {placement_label(category)} products be advertised at {n}?",
            f"Does {n} accept ads for {placement_label(category)}?",
        )
    for r in bidding.category_restrictions:
        keys = (f"category_restrictions.{r.category}", "category_restrictions")
        what = placement_label(r.category)
        for placement in policy.placements:
            where = placement_label(placement)
            facts.add(
                "bidding",
                keys,
                _yes(placement not in r.forbidden_placements),
                f"Can {what} ads run on {where} at {n}?",
                f"Is {where} open to {what} at {n}?",
            )
        if r.min_audience_age is not None:
            facts.add(
                "bidding",
                keys,
                str(r.min_audience_age),
                f"What is the minimum audience age for {what} ads at {n}?",
                f"How old must the audience of {what} ads be at {n}?",
            )


def _overview_facts(facts: _Facts) -> None:
    """Which placements the retailer sells, and how long creative review takes."""
    policy = facts.policy
    n = policy.name
    for placement in PLACEMENT_LABELS:
        facts.add(
            "overview",
            ("placements",),
            _yes(placement in policy.placements),
            f"Does {n} sell {placement_label(placement)} ads?",
            f"Can I buy {placement_label(placement)} placements at {n}?",
        )
    facts.add(
        "overview",
        ("creative_review_business_days",),
        f"{policy.creative_review_business_days} business days",
        f"How many business days does {n} take to review creative?",
        f"How long is creative review at {n}?",
    )


_SECTIONS: tuple[Callable[[_Facts], None], ...] = (
    _creative_facts,
    _prohibited_facts,
    _disclaimer_facts,
    _data_access_facts,
    _measurement_facts,
    _bidding_facts,
    _overview_facts,
)


def retailer_facts(retailer_id: str) -> list[PolicyFact]:
    return policy_facts(load_retailer_policy(retailer_id))
