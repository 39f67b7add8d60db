"""Retailer policies and brand guides, read from the front matter of the policy corpus.

from tools.policy import load_retailer_policy
gamma = load_retailer_policy("gamma")
gamma.data_access.min_cell_size           # 100
gamma.creative.limits("sponsored_search")  # PlacementCreativeSpec(...)
"""

from tools.policy.categories import POLICY_CATEGORY, policy_category
from tools.policy.data_access import DataAccessRules
from tools.policy.frontmatter import PolicyParseError
from tools.policy.loader import (
    brand_owners,
    corpus_dir,
    iter_corpus,
    list_brands,
    list_retailers,
    load_brand_guide,
    load_retailer_policy,
)
from tools.policy.models import (
    BASE_BLOCKED_FIELDS,
    BiddingPolicy,
    BrandClaim,
    BrandGuide,
    Capitalization,
    CategoryRestriction,
    CreativePolicy,
    DataAccessPolicy,
    DisclaimerRule,
    DisclaimersPolicy,
    ExperimentType,
    MeasurementPolicy,
    PlacementBidding,
    PlacementCreativeSpec,
    PriceClaimRule,
    PricingModel,
    ProhibitedClaim,
    ProhibitedContentPolicy,
    RetailerPolicy,
    UnsupportedPlacementError,
    find_phrases,
)

__all__ = [
    "BASE_BLOCKED_FIELDS",
    "POLICY_CATEGORY",
    "BiddingPolicy",
    "BrandClaim",
    "BrandGuide",
    "Capitalization",
    "CategoryRestriction",
    "CreativePolicy",
    "DataAccessPolicy",
    "DataAccessRules",
    "DisclaimerRule",
    "DisclaimersPolicy",
    "ExperimentType",
    "MeasurementPolicy",
    "PlacementBidding",
    "PlacementCreativeSpec",
    "PolicyParseError",
    "PriceClaimRule",
    "PricingModel",
    "ProhibitedClaim",
    "ProhibitedContentPolicy",
    "RetailerPolicy",
    "UnsupportedPlacementError",
    "brand_owners",
    "corpus_dir",
    "find_phrases",
    "iter_corpus",
    "list_brands",
    "list_retailers",
    "load_brand_guide",
    "load_retailer_policy",
    "policy_category",
]
