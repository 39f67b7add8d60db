"""Checks the copy tests share: a variant as the rule checker reads it, and its review."""

from __future__ import annotations

from tools.creative import CopyRequest, review_copy
from tools.plan import CopyVariant
from tools.policy.compliance import AdCopy, brand_guide, retailer_policy


def review(copy: AdCopy, request: CopyRequest, placement: str, category: str) -> list[str]:
    return review_copy(
        copy,
        retailer_policy(request.retailer_id),
        placement,
        category,
        brand_guide(request.brand_id),
        request.product_name,
    )


def as_copy(v: CopyVariant) -> AdCopy:
    return AdCopy(
        headline=v.headline,
        body=v.body,
        disclaimers=v.disclaimer.split("\n") if v.disclaimer else [],
    )
