"""Product categories as the policies name them.

Retailer policies restrict categories by their own names (`otc_medicine`, `health_beauty`);
the brand's SKU table uses its catalog's (`otc_health`, `beauty`). `policy_category` maps a
catalog category to the policy name, and leaves a name that is already a policy name (or one
the policies never mention) as it is.
"""

from __future__ import annotations

# Catalog category -> the category the policies and brand guides use.
POLICY_CATEGORY: dict[str, str] = {
    "snacks": "snacks",
    "pantry": "grocery",
    "household": "household",
    "beauty": "health_beauty",
    "skin_care": "health_beauty",
    "otc_health": "otc_medicine",
    "vitamins": "vitamins",
    "home_goods": "home_goods",
    "kitchen": "home_goods",
    "small_electronics": "small_electronics",
    "personal_care": "personal_care",
    "beverages": "beverages",
    "alcohol": "alcohol",
}


def policy_category(category: str) -> str:
    """The policies' name for a catalog category (lower-cased, unknown names unchanged)."""
    key = category.strip().lower()
    return POLICY_CATEGORY.get(key, key)
