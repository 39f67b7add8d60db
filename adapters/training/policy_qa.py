"""Policy questions with short answers, read from a retailer's typed rules (the front matter),
each tied to the corpus section that states it.

A retailer adapter answers from a retrieved policy excerpt, the way the copilot serves it: the
prompt carries the section, the answer is the short fact. Questions are grouped by section so
that a held-out split asks about sections the adapter never saw in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from adapters.training.copywriter import PLACEMENT_LABELS
from tools.policy import RetailerPolicy, corpus_dir, load_retailer_policy
from tools.policy.loader import read_corpus_document

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


def _label(value: str) -> str:
    return PLACEMENT_LABELS.get(value, value.replace("_", " "))


def _yes(flag: bool) -> str:
    return "Yes" if flag else "No"


def _money(value: float) -> str:
    return f"${value:,.2f}" if value < 100 else f"${value:,.0f}"


def _pct(value: float) -> str:
    return f"{value * 100:g}%"


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def policy_facts(policy: RetailerPolicy) -> list[PolicyFact]:
    """Every question the retailer's rules answer, in a stable order."""
    n = policy.name
    facts: list[PolicyFact] = []

    def add(policy_type: str, keys: tuple[str, ...], answer: str, *questions: str) -> None:
        source = policy.source_for(policy_type, *keys)
        if "#" in source:  # only rules a section of the body explains
            facts.append(PolicyFact(source, questions, answer, f"{policy_type}.{keys[0]}"))

    creative = policy.creative
    for placement, spec in creative.placements.items():
        p, keys = _label(placement), (f"placements.{placement}", "placements")
        add(
            "creative",
            keys,
            f"{spec.max_headline_chars} characters",
            f"What is the maximum headline length for {p} ads at {n}?",
            f"How many characters can a {p} headline have at {n}?",
        )
        add(
            "creative",
            keys,
            f"{spec.max_body_chars} characters",
            f"What is the maximum body copy length for {p} ads at {n}?",
            f"How long can {p} body copy be at {n}?",
        )
    add(
        "creative",
        ("capitalization",),
        CAPITALIZATION_ANSWERS[creative.capitalization.value],
        f"What capitalization must {n} headlines use?",
        f"Which case should I write {n} ad headlines in?",
    )
    add(
        "creative",
        ("all_caps_words_allowed",),
        _yes(creative.all_caps_words_allowed),
        f"Can {n} copy use all-caps words for emphasis?",
        f"May I write a word in all caps to stress it in a {n} ad?",
    )
    if creative.allowed_acronyms:
        add(
            "creative",
            ("allowed_acronyms",),
            ", ".join(creative.allowed_acronyms),
            f"Which acronyms may appear in all caps at {n}?",
            f"What all-caps acronyms does {n} accept?",
        )
    add(
        "creative",
        ("emoji_allowed",),
        _yes(creative.emoji_allowed),
        f"Are emoji allowed in {n} ads?",
        f"Can I put an emoji in {n} ad copy?",
    )
    add(
        "creative",
        ("max_exclamation_marks",),
        str(creative.max_exclamation_marks),
        f"How many exclamation marks may {n} ad copy contain?",
        f"What is the most exclamation marks allowed in a {n} ad?",
    )
    price = creative.price_claims
    if price.max_discount_pct is not None:
        add(
            "creative",
            ("price_claims",),
            f"{price.max_discount_pct:g}% off",
            f"What is the largest discount {n} copy may claim?",
            f"How deep a percentage saving can a {n} ad advertise?",
        )
    for phrase in price.banned_phrases:
        add(
            "creative",
            ("price_claims",),
            "No",
            f"Can a {n} ad say '{phrase}'?",
            f"Is '{phrase}' allowed in {n} price claims?",
        )

    for term in policy.prohibited.prohibited_terms:
        add(
            "prohibited_content",
            ("prohibited_terms",),
            "No",
            f"Is '{term}' allowed in {n} ads?",
            f"Can I write '{term}' in a {n} ad?",
        )
    for claim in policy.prohibited.prohibited_claims:
        keys = (f"prohibited_claims.{claim.id}", "prohibited_claims")
        scope = f"a {_label(claim.categories[0])}" if claim.categories else "any"
        for phrase in claim.phrases:
            add(
                "prohibited_content",
                keys,
                "No",
                f"Can {scope} ad at {n} say '{phrase}'?",
                f"Is the claim '{phrase}' allowed in {scope} ad at {n}?",
            )

    for rule in policy.disclaimers.required_disclaimers:
        keys = (f"required_disclaimers.{rule.id}", "required_disclaimers")
        for term in rule.trigger_terms:
            add(
                "disclaimers",
                keys,
                rule.text,
                f"What disclaimer must a {n} ad carry when it mentions '{term}'?",
                f"Which disclaimer goes with '{term}' in a {n} ad?",
            )
        for category in rule.trigger_categories:
            add(
                "disclaimers",
                keys,
                rule.text,
                f"What disclaimer must {_label(category)} ads at {n} carry?",
                f"Which disclaimer do {_label(category)} ads need at {n}?",
            )

    data = policy.data_access
    add(
        "data_access",
        ("min_cell_size",),
        str(data.min_cell_size),
        f"What is the minimum cell size in {n}'s clean room?",
        f"How many events must each {n} clean-room output row aggregate?",
    )
    for name in data.blocked_fields:
        add(
            "data_access",
            ("blocked_fields",),
            "No",
            f"Can I query {name} in {n}'s clean room?",
            f"Is {name} available in the {n} clean room?",
        )
    for dim in data.allowed_dimensions:
        add(
            "data_access",
            ("allowed_dimensions",),
            "Yes",
            f"Can {n} clean-room results be grouped by {dim}?",
            f"Is {dim} an allowed dimension in the {n} clean room?",
        )
    for metric in data.allowed_metrics:
        add(
            "data_access",
            ("allowed_metrics",),
            "Yes",
            f"Can I request {metric.replace('_', ' ')} from {n}'s clean room?",
            f"Does the {n} clean room release {metric.replace('_', ' ')}?",
        )
    add(
        "data_access",
        ("dp_required",),
        _yes(data.dp_required),
        f"Is differential privacy required in {n}'s clean room?",
        f"Must {n} clean-room queries use differential privacy?",
    )
    add(
        "data_access",
        ("default_epsilon",),
        str(data.default_epsilon),
        f"What is the default epsilon per query at {n}?",
        f"Which epsilon does a {n} clean-room query use by default?",
    )
    add(
        "data_access",
        ("tenant_epsilon_budget",),
        str(data.tenant_epsilon_budget),
        f"What is each tenant's privacy budget at {n}?",
        f"How much epsilon may one tenant spend at {n}?",
    )
    for metric, bound in data.sum_clamp.items():
        add(
            "data_access",
            ("sum_clamp",),
            f"{bound:g}",
            f"What is the per-event contribution bound for {metric.replace('_', ' ')} at {n}?",
            f"How much can one event contribute to {metric.replace('_', ' ')} at {n}?",
        )

    m = policy.measurement
    allowed = {t.value for t in m.allowed_experiment_types}
    for exp, label in EXPERIMENT_LABELS.items():
        add(
            "measurement",
            ("allowed_experiment_types",),
            _yes(exp in allowed),
            f"Does {n} accept {label} tests?",
            f"Can a brand run a {label} experiment at {n}?",
        )
    add(
        "measurement",
        ("min_test_days",),
        _days(m.min_test_days),
        f"What is the minimum test length at {n}?",
        f"How many days must a {n} experiment run at least?",
    )
    add(
        "measurement",
        ("max_test_days",),
        _days(m.max_test_days),
        f"What is the maximum test length at {n}?",
        f"How long can a {n} experiment run at most?",
    )
    add(
        "measurement",
        ("min_holdout_pct",),
        _pct(m.min_holdout_pct),
        f"What is the smallest holdout {n} allows?",
        f"What is the minimum holdout share for a {n} test?",
    )
    add(
        "measurement",
        ("max_holdout_pct",),
        _pct(m.max_holdout_pct),
        f"What is the largest holdout {n} allows?",
        f"What is the maximum holdout share for a {n} test?",
    )
    add(
        "measurement",
        ("max_concurrent_tests",),
        str(m.max_concurrent_tests),
        f"How many experiments may a brand run at once at {n}?",
        f"What is the limit on concurrent tests per brand at {n}?",
    )
    add(
        "measurement",
        ("click_attribution_days",),
        _days(m.click_attribution_days),
        f"What is the click attribution window at {n}?",
        f"How long after a click are sales attributed at {n}?",
    )
    add(
        "measurement",
        ("view_attribution_days",),
        _days(m.view_attribution_days),
        f"What is the view attribution window at {n}?",
        f"How long after a view are sales attributed at {n}?",
    )
    if m.switchback_min_period_hours is not None:
        add(
            "measurement",
            ("switchback_min_period_hours",),
            f"{m.switchback_min_period_hours} hours",
            f"What is the shortest switchback period at {n}?",
            f"How long must each switchback period last at {n}?",
        )

    bidding = policy.bidding
    unit = {"cpc": "per click", "cpm": "CPM", "vcpm": "vCPM"}
    for placement, bid in bidding.placements.items():
        p = _label(placement)
        add(
            "bidding",
            (f"placements.{placement}", "placements.min_bid_usd", "placements"),
            f"{_money(bid.min_bid_usd)} {unit[bid.pricing_model.value]}",
            f"What is the minimum bid for {p} at {n}?",
            f"What is the bid floor for {p} ads at {n}?",
        )
        add(
            "bidding",
            (f"placements.{placement}", "placements.max_monthly_spend_usd", "placements"),
            _money(bid.max_monthly_spend_usd),
            f"What is the monthly spend cap for {p} at {n}?",
            f"How much can one brand spend per month on {p} at {n}?",
        )
    add(
        "bidding",
        ("min_daily_budget_usd",),
        _money(bidding.min_daily_budget_usd),
        f"What is the minimum daily budget at {n}?",
        f"How small can a {n} campaign's daily budget be?",
    )
    for category in bidding.prohibited_categories:
        add(
            "bidding",
            ("prohibited_categories",),
            "No",
            f"Can {_label(category)} products be advertised at {n}?",
            f"Does {n} accept ads for {_label(category)}?",
        )
    for r in bidding.category_restrictions:
        keys = (f"category_restrictions.{r.category}", "category_restrictions")
        for placement in policy.placements:
            add(
                "bidding",
                keys,
                _yes(placement not in r.forbidden_placements),
                f"Can {_label(r.category)} ads run on {_label(placement)} at {n}?",
                f"Is {_label(placement)} open to {_label(r.category)} at {n}?",
            )
        if r.min_audience_age is not None:
            add(
                "bidding",
                keys,
                str(r.min_audience_age),
                f"What is the minimum audience age for {_label(r.category)} ads at {n}?",
                f"How old must the audience of {_label(r.category)} ads be at {n}?",
            )

    for placement in PLACEMENT_LABELS:
        add(
            "overview",
            ("placements",),
            _yes(placement in policy.placements),
            f"Does {n} sell {_label(placement)} ads?",
            f"Can I buy {_label(placement)} placements at {n}?",
        )
    add(
        "overview",
        ("creative_review_business_days",),
        f"{policy.creative_review_business_days} business days",
        f"How many business days does {n} take to review creative?",
        f"How long is creative review at {n}?",
    )
    return facts


@lru_cache(maxsize=512)
def _section_text(doc_path: str, anchor: str, corpus: Path) -> str:
    rel = Path(*Path(doc_path).parts[1:])  # drop the corpus folder name
    doc = read_corpus_document(corpus / rel, corpus)
    section = doc.doc.anchors()[anchor]
    return f"{section.heading}\n{section.text}"


def section_text(source: str, corpus: Path | None = None) -> str:
    """The heading and text of the corpus section a `source` (`path#anchor`) points at."""
    doc_path, _, anchor = source.partition("#")
    return _section_text(doc_path, anchor, corpus or corpus_dir())


def retailer_facts(retailer_id: str) -> list[PolicyFact]:
    return policy_facts(load_retailer_policy(retailer_id))


def qa_request(retailer_name: str, source: str, question: str) -> str:
    """The user turn of a policy question: the retrieved section, then the question."""
    return (
        f"Policy excerpt from {retailer_name} ({source.split('/', 1)[-1]}):\n"
        f"{section_text(source)}\n\n"
        f"Question: {question}\nAnswer with the fact only."
    )
