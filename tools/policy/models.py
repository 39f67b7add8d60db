"""Typed policy objects built from the corpus front matter.

Every model forbids unknown keys so that a misspelled rule in a policy document is an error
with file and line, not a rule that is silently ignored.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from tools.errors import RMNError
from tools.policy.categories import policy_category
from tools.policy.data_access import MIN_EPSILON, BudgetPeriod, DataAccessRules
from tools.rmis import Placement, RMISPolicyDimension

# Fields no retailer lets out of its clean room: brand unit economics, stock signals and
# person-level identifiers. A retailer may block more, never less.
BASE_BLOCKED_FIELDS: tuple[str, ...] = (
    "margin",
    "unit_margin",
    "unit_cost",
    "stock_units",
    "oos_prob",
    "promo_flag",
    "discount_pct",
    "user_id",
    "household_id",
    "email",
)


class UnsupportedPlacementError(RMNError):
    """A placement the retailer does not sell."""

    kind = "unsupported_placement"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@lru_cache(maxsize=4096)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    # Word boundaries only where the phrase starts or ends with a word character, so that
    # "$" or "% off" still match inside copy.
    left = r"(?<!\w)" if phrase[:1].isalnum() else ""
    right = r"(?!\w)" if phrase[-1:].isalnum() else ""
    return re.compile(left + re.escape(phrase) + right, re.IGNORECASE)


def find_phrases(text: str, phrases: list[str]) -> list[str]:
    """The phrases that occur in `text`, case-insensitively and as whole words."""
    return [p for p in phrases if _phrase_pattern(p).search(text)]


def _lower_unique(values: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        seen.setdefault(v.strip().lower(), None)
    return list(seen)


# Phrases match case-insensitively, so they are stored lower-cased and de-duplicated.
Phrases = Annotated[list[str], AfterValidator(_lower_unique)]


# --- creative -------------------------------------------------------------------------------


class Capitalization(StrEnum):
    SENTENCE_CASE = "sentence_case"
    TITLE_CASE = "title_case"
    ANY = "any"


class PlacementCreativeSpec(_Strict):
    max_headline_chars: int = Field(gt=0)
    max_body_chars: int = Field(gt=0)


class PriceClaimRule(_Strict):
    allowed: bool = Field(description="whether copy may state a price or a saving at all")
    disclaimer: str | None = Field(
        default=None, description="id of the disclaimer every price claim must carry"
    )
    comparison_allowed: bool = Field(
        default=False, description="'was/now' or compare-at reference prices"
    )
    max_discount_pct: float | None = Field(
        default=None, ge=0, le=100, description="largest percentage saving copy may claim"
    )
    banned_phrases: Phrases = Field(default_factory=list)


class CreativePolicy(_Strict):
    placements: dict[Placement, PlacementCreativeSpec]
    capitalization: Capitalization
    all_caps_words_allowed: bool = False
    allowed_acronyms: list[str] = Field(
        default_factory=list, description="all-caps words allowed even when all caps are not"
    )
    emoji_allowed: bool
    max_exclamation_marks: int = Field(ge=0)
    price_claims: PriceClaimRule

    def limits(self, placement: Placement | str) -> PlacementCreativeSpec:
        """Headline and body limits for one placement; raises for a placement not sold."""
        try:
            return self.placements[Placement(placement)]
        except (ValueError, KeyError):
            raise UnsupportedPlacementError(
                f"placement {placement!r} is not sold here; choose one of "
                f"{', '.join(p.value for p in self.placements)}",
                placement=str(placement),
            ) from None


# --- prohibited content ---------------------------------------------------------------------


class ProhibitedClaim(_Strict):
    id: str
    phrases: Phrases = Field(min_length=1)
    categories: list[str] = Field(
        default_factory=list, description="product categories it applies to; empty = all"
    )
    reason: str

    def applies_to(self, category: str | None) -> bool:
        return not self.categories or (category is not None and category in self.categories)


class ProhibitedContentPolicy(_Strict):
    prohibited_terms: Phrases = Field(description="never allowed, matched case-insensitively")
    prohibited_claims: list[ProhibitedClaim] = Field(default_factory=list)

    def violations(self, text: str, category: str | None = None) -> list[str]:
        """Prohibited terms and claim phrases found in `text` for a product `category`."""
        found = find_phrases(text, self.prohibited_terms)
        for claim in self.prohibited_claims:
            if claim.applies_to(category):
                found += [p for p in find_phrases(text, claim.phrases) if p not in found]
        return found


# --- disclaimers ----------------------------------------------------------------------------


class DisclaimerRule(_Strict):
    id: str
    text: str = Field(min_length=1)
    trigger_terms: Phrases = Field(default_factory=list)
    trigger_categories: list[str] = Field(default_factory=list)
    placements: list[Placement] = Field(
        default_factory=list, description="placements it applies on; empty = all"
    )

    @model_validator(mode="after")
    def _has_trigger(self) -> DisclaimerRule:
        if not self.trigger_terms and not self.trigger_categories:
            raise ValueError(f"disclaimer {self.id!r} needs trigger_terms or trigger_categories")
        return self

    def triggered_by(
        self, text: str, category: str | None = None, placement: Placement | str | None = None
    ) -> bool:
        on_other_placement = placement is not None and Placement(placement) not in self.placements
        if self.placements and on_other_placement:
            return False
        if category is not None and category in self.trigger_categories:
            return True
        return bool(find_phrases(text, self.trigger_terms))


class DisclaimersPolicy(_Strict):
    required_disclaimers: list[DisclaimerRule]

    @field_validator("required_disclaimers")
    @classmethod
    def _unique_ids(cls, v: list[DisclaimerRule]) -> list[DisclaimerRule]:
        ids = [d.id for d in v]
        if len(ids) != len(set(ids)):
            raise ValueError(f"disclaimer ids must be unique: {ids}")
        return v

    def get(self, disclaimer_id: str) -> DisclaimerRule | None:
        return next((d for d in self.required_disclaimers if d.id == disclaimer_id), None)

    def required_for(
        self, text: str, category: str | None = None, placement: Placement | str | None = None
    ) -> list[DisclaimerRule]:
        """Disclaimers that copy `text` for a product `category` on `placement` must carry."""
        return [d for d in self.required_disclaimers if d.triggered_by(text, category, placement)]


# --- data access ----------------------------------------------------------------------------


class DataAccessPolicy(DataAccessRules):
    """The clean room's rules for one retailer, as its data-access document states them: every
    rule must be written down (no defaults), and the base blocked fields are always blocked."""

    min_cell_size: int = Field(ge=1, description="k: fewest underlying events per output row")
    blocked_fields: list[str]
    allowed_dimensions: list[str]
    allowed_metrics: list[str]
    dp_required: bool
    default_epsilon: float = Field(ge=MIN_EPSILON, allow_inf_nan=False)
    tenant_epsilon_budget: float = Field(gt=0, allow_inf_nan=False)
    budget_period: BudgetPeriod
    sum_clamp: dict[str, float] = Field(
        description="per-metric upper bound of one event row's contribution"
    )
    source: str = Field(default="", description="document and section the rules come from")

    @field_validator("blocked_fields")
    @classmethod
    def _base_blocked(cls, v: list[str]) -> list[str]:
        missing = [f for f in BASE_BLOCKED_FIELDS if f not in _lower_unique(v)]
        if missing:
            raise ValueError(f"must block {', '.join(missing)} (blocked for every retailer)")
        return v


# --- measurement ----------------------------------------------------------------------------


class ExperimentType(StrEnum):
    AUDIENCE_HOLDOUT = "audience_holdout"
    GEO_HOLDOUT = "geo_holdout"
    SWITCHBACK = "switchback"
    PRE_POST = "pre_post"


class MeasurementPolicy(_Strict):
    allowed_experiment_types: list[ExperimentType] = Field(min_length=1)
    min_test_days: int = Field(ge=1)
    max_test_days: int = Field(ge=1)
    min_holdout_pct: float = Field(ge=0, le=1, description="share of audience or geos held out")
    max_holdout_pct: float = Field(ge=0, le=1)
    max_concurrent_tests: int = Field(ge=1, description="per brand at this retailer")
    click_attribution_days: int = Field(ge=0)
    view_attribution_days: int = Field(ge=0)
    switchback_min_period_hours: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> MeasurementPolicy:
        if self.min_holdout_pct > self.max_holdout_pct:
            raise ValueError("min_holdout_pct exceeds max_holdout_pct")
        if self.min_test_days > self.max_test_days:
            raise ValueError("min_test_days exceeds max_test_days")
        has_switchback = ExperimentType.SWITCHBACK in self.allowed_experiment_types
        if has_switchback != (self.switchback_min_period_hours is not None):
            raise ValueError(
                "switchback_min_period_hours is set exactly when switchback tests are allowed"
            )
        return self


# --- placements and bidding -----------------------------------------------------------------


class PricingModel(StrEnum):
    CPC = "cpc"
    CPM = "cpm"
    VCPM = "vcpm"


class PlacementBidding(_Strict):
    pricing_model: PricingModel
    min_bid_usd: float = Field(gt=0, description="floor per click (cpc) or per mille (cpm, vcpm)")
    max_monthly_spend_usd: float = Field(gt=0, description="cap per brand per calendar month")


class CategoryRestriction(_Strict):
    category: str
    forbidden_placements: list[Placement] = Field(default_factory=list)
    min_audience_age: int | None = Field(default=None, ge=0)
    required_disclaimer: str | None = None
    note: str = ""


class BiddingPolicy(_Strict):
    placements: dict[Placement, PlacementBidding]
    min_daily_budget_usd: float = Field(gt=0)
    prohibited_categories: list[str] = Field(default_factory=list)
    category_restrictions: list[CategoryRestriction] = Field(default_factory=list)

    def restriction(self, category: str) -> CategoryRestriction | None:
        return next((r for r in self.category_restrictions if r.category == category), None)

    def allows(self, category: str, placement: Placement | str) -> bool:
        """Whether a product of `category` may be advertised on `placement` at all."""
        if category in self.prohibited_categories or Placement(placement) not in self.placements:
            return False
        r = self.restriction(category)
        return r is None or Placement(placement) not in r.forbidden_placements


# --- overview -------------------------------------------------------------------------------


class RetailerOverview(_Strict):
    name: str
    segment: str
    placements: list[Placement] = Field(min_length=1)
    creative_review_business_days: int = Field(ge=0)


# --- the retailer as a whole ----------------------------------------------------------------


def _scalar(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, list):
        return [_scalar(v) for v in value]
    if isinstance(value, dict):
        return {str(_scalar(k)): _scalar(v) for k, v in value.items()}
    return value


class RetailerPolicy(_Strict):
    retailer_id: str
    name: str
    segment: str
    placements: list[Placement]
    creative_review_business_days: int
    creative: CreativePolicy
    prohibited: ProhibitedContentPolicy
    disclaimers: DisclaimersPolicy
    data_access: DataAccessPolicy
    measurement: MeasurementPolicy
    bidding: BiddingPolicy
    sources: dict[str, str] = Field(
        default_factory=dict,
        description="'<policy_type>.<rule>[.<item>]' -> document path and section anchor",
    )

    @model_validator(mode="after")
    def _placements_agree(self) -> RetailerPolicy:
        sold = set(self.placements)
        for what, keys in (
            ("creative_specs", set(self.creative.placements)),
            ("placements_bidding", set(self.bidding.placements)),
        ):
            if keys != sold:
                raise ValueError(
                    f"{what} covers placements {sorted(keys)} but the overview sells {sorted(sold)}"
                )
        known = {d.id for d in self.disclaimers.required_disclaimers}
        wanted = [self.creative.price_claims.disclaimer] + [
            r.required_disclaimer for r in self.bidding.category_restrictions
        ]
        missing = sorted({w for w in wanted if w and w not in known})
        if missing:
            raise ValueError(f"disclaimer(s) {missing} are referenced but not defined")
        return self

    def source_for(self, policy_type: str, *keys: str) -> str:
        """The document section a rule comes from: the first of `keys` (most specific first,
        e.g. "placements.sponsored_search", "placements") found in the document's `sections`,
        else the document itself."""
        for key in (*keys, None):
            full = f"{policy_type}.{key}" if key else policy_type
            if full in self.sources:
                return self.sources[full]
        return ""

    def to_policy_dimensions(self) -> list[RMISPolicyDimension]:
        """Every checkable rule as one RMIS policy row, each with the section it comes from."""
        rows: list[RMISPolicyDimension] = []

        def add(
            policy_type: str,
            rule: str,
            value: Any,
            placement: Placement | None = None,
            keys: tuple[str, ...] = (),
        ) -> None:
            rows.append(
                RMISPolicyDimension(
                    retailer_id=self.retailer_id,
                    policy_type=policy_type,
                    rule=rule,
                    value=_scalar(value),
                    placement=placement,
                    source=self.source_for(policy_type, *(keys or (rule,))),
                )
            )

        for placement, spec in self.creative.placements.items():
            for rule, value in spec.model_dump().items():
                add("creative", rule, value, placement, (f"placements.{placement}", "placements"))
        for rule in ("capitalization", "all_caps_words_allowed", "allowed_acronyms"):
            add("creative", rule, getattr(self.creative, rule))
        add("creative", "emoji_allowed", self.creative.emoji_allowed)
        add("creative", "max_exclamation_marks", self.creative.max_exclamation_marks)
        add("creative", "price_claims", self.creative.price_claims.model_dump())

        add("prohibited_content", "prohibited_terms", self.prohibited.prohibited_terms)
        for claim in self.prohibited.prohibited_claims:
            keys = (f"prohibited_claims.{claim.id}", "prohibited_claims")
            add("prohibited_content", "prohibited_claims", claim.model_dump(), keys=keys)

        for d in self.disclaimers.required_disclaimers:
            keys = (f"required_disclaimers.{d.id}", "required_disclaimers")
            add("disclaimers", "required_disclaimers", d.model_dump(), keys=keys)

        for rule, value in self.data_access.model_dump(exclude={"source"}).items():
            add("data_access", rule, value)

        for rule, value in self.measurement.model_dump().items():
            if value is not None:
                add("measurement", rule, value)

        for placement, bid in self.bidding.placements.items():
            for rule, value in bid.model_dump().items():
                keys = (f"placements.{placement}", f"placements.{rule}", "placements")
                add("bidding", rule, value, placement, keys)
        add("bidding", "min_daily_budget_usd", self.bidding.min_daily_budget_usd)
        add("bidding", "prohibited_categories", self.bidding.prohibited_categories)
        for r in self.bidding.category_restrictions:
            keys = (f"category_restrictions.{r.category}", "category_restrictions")
            add("bidding", "category_restrictions", r.model_dump(), keys=keys)
        return rows


# --- brands ---------------------------------------------------------------------------------


class BrandVoice(_Strict):
    name: str
    categories: list[str] = Field(min_length=1)
    tone: list[str] = Field(min_length=1)
    banned_words: Phrases = Field(default_factory=list)
    preferred_terms: dict[str, str] = Field(
        default_factory=dict, description="say the value instead of the key"
    )
    emoji_allowed: bool


class BrandClaim(_Strict):
    """One approved claim and the products it is approved for: those of its `categories`
    (policy names; empty = every category) that are one of its `products` (product types as
    the brand's SKU list names them, matched as whole words in the product name, e.g.
    "Deodorant") or one of its `gtins`. Without `products` and `gtins`, the whole category."""

    id: str
    text: str
    categories: list[str] = Field(default_factory=list, description="empty = every category")
    products: list[str] = Field(
        default_factory=list, description="product types it is approved for (in SKU names)"
    )
    gtins: list[str] = Field(default_factory=list, description="GTINs it is approved for")
    substantiation: str
    required_disclaimer: str | None = None

    @field_validator("products", "gtins")
    @classmethod
    def _no_blanks(cls, v: list[str]) -> list[str]:
        if any(not item.strip() for item in v):
            raise ValueError("entries must not be blank")
        return [item.strip() for item in v]

    def approved_for(
        self, product: str | None, category: str | None, gtin: str | None = None
    ) -> bool:
        """Whether the claim may run for this product. A claim tied to products needs the
        product's name or GTIN; with neither, it is not approved (it cannot be checked)."""
        in_category = category is None or policy_category(category) in self.categories
        if self.categories and not in_category:
            return False
        if not self.products and not self.gtins:
            return True
        if gtin is not None and gtin in self.gtins:
            return True
        return product is not None and bool(find_phrases(product, self.products))


class BrandClaims(_Strict):
    allowed_claims: list[BrandClaim]
    forbidden_claims: Phrases = Field(default_factory=list)


class BrandGuide(_Strict):
    brand_id: str
    owner_tenant: str
    name: str
    categories: list[str]
    tone: list[str]
    banned_words: Phrases
    preferred_terms: dict[str, str]
    emoji_allowed: bool
    allowed_claims: list[BrandClaim]
    forbidden_claims: Phrases
    sources: dict[str, str] = Field(default_factory=dict)

    def claims_for(self, category: str) -> list[BrandClaim]:
        """Claims approved for some product of `category` (not necessarily every one: see
        `claims_for_product`)."""
        category = policy_category(category)
        return [c for c in self.allowed_claims if not c.categories or category in c.categories]

    def claims_for_product(
        self, product: str | None, category: str | None, gtin: str | None = None
    ) -> list[BrandClaim]:
        """Claims approved for this product (`BrandClaim.approved_for`)."""
        return [c for c in self.allowed_claims if c.approved_for(product, category, gtin)]

    def claims_source(self, claim_id: str | None = None) -> str:
        """Where a claim (or, without an id, the claims document) is written."""
        whole = self.sources.get("claims", f"brands/{self.brand_id}/claims.md")
        return self.sources.get(f"claims.allowed_claims.{claim_id}", whole) if claim_id else whole

    def banned_in(self, text: str) -> list[str]:
        """Banned words and forbidden claims found in `text`."""
        return find_phrases(text, self.banned_words + self.forbidden_claims)
