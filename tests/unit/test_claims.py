"""Claims: no copy, template or model-written, carries a claim the brand's claims document does
not approve for that product, and governance blocks copy that does.

The products are every SKU of every brand in the seeded market (seed 7, the demo's), each at
every retailer that carries it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from tools.creative.fallback import fallback_candidates
from tools.governance import review
from tools.policy import BrandGuide, load_brand_guide, load_retailer_policy
from tools.policy.categories import policy_category
from tools.policy.claims import ClaimedProduct, find_claims, unapproved_claims
from tools.policy.compliance import check_copy
from tools.world.catalog import BRANDS, build_skus

PLACEMENT = "sponsored_product"  # every retailer sells it


@cache
def products() -> list[dict[str, Any]]:
    return build_skus(7)[0].to_pylist()


@cache
def guide(brand: str) -> BrandGuide:
    return load_brand_guide(brand)


def all_claim_texts() -> list[tuple[str, str]]:
    """(brand, claim text) of every approved claim in every brand's claims document."""
    return [(b, c.text) for b in BRANDS for c in guide(b).allowed_claims]


def approved_texts(sku: dict[str, Any]) -> set[str]:
    g = guide(sku["brand_id"])
    approved = g.claims_for_product(sku["name"], policy_category(sku["category"]), sku["gtin"])
    return {c.text.lower() for c in approved}


# --- the bugs measured on main ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("retailer", "brand", "product", "category", "foreign"),
    [
        (
            "delta",
            "initech",
            "Initech Modern Scented Candle",
            "home_goods",
            ["dishwasher safe", "bpa-free"],
        ),
        (
            "alpha",
            "brand_x",
            "Brand X Fresh Body Wash",
            "personal_care",
            ["aluminum-free", "48-hour"],
        ),
        ("delta", "initech", "Initech Compact Air Fryer", "small_electronics", ["energy star"]),
        ("alpha", "globex", "Globex Matte Lipstick", "health_beauty", ["spf 50", "sensitive skin"]),
    ],
)
def test_fallback_copy_never_borrows_another_products_claims(
    retailer: str, brand: str, product: str, category: str, foreign: list[str]
) -> None:
    found = fallback_candidates(
        load_retailer_policy(retailer), PLACEMENT, category, guide(brand), product
    )
    assert found
    for copy in found:
        text = f"{copy.headline} {copy.body}".lower()
        assert not [f for f in foreign if f in text], text


def test_governance_blocks_a_claim_the_product_is_not_approved_for() -> None:
    candle = ClaimedProduct(name="Initech Modern Scented Candle", category="home_goods")
    texts = {
        "copy[0].headline": "Initech Modern Scented Candle",
        "copy[0].body": "Dishwasher safe. Designed for everyday living. Shop now.",
    }
    result = review(
        texts, [], ["delta"], "initech", brand="initech", copy_products={"copy[0]": candle}
    )
    claims = [f for f in result.findings if f.type == "UNAPPROVED_CLAIM"]
    assert [(f.where, f.text, f.severity) for f in claims] == [
        ("copy[0].body", "Dishwasher safe", "block")
    ]
    assert result.route == "creative"
    assert (
        "'Dishwasher safe' is not approved for Initech Modern Scented Candle" in result.reasons[0]
    )
    assert "brands/initech/claims.md" in result.reasons[0]

    skillet = ClaimedProduct(name="Initech Pro Nonstick Skillet", category="kitchen")
    texts["copy[0].headline"] = "Initech Pro Nonstick Skillet"
    ok = review(
        texts, [], ["delta"], "initech", brand="initech", copy_products={"copy[0]": skillet}
    )
    assert ok.route == "ok" and not [f for f in ok.findings if f.type == "UNAPPROVED_CLAIM"]


# --- every product of every brand -----------------------------------------------------------


def test_every_products_fallback_copy_carries_only_its_approved_claims() -> None:
    checked = 0
    for sku in products():
        g = guide(sku["brand_id"])
        category = policy_category(sku["category"])
        approved = approved_texts(sku)
        for retailer in sku["retailers"]:
            policy = load_retailer_policy(retailer)
            if not policy.bidding.allows(category, PLACEMENT):
                continue
            for copy in fallback_candidates(policy, PLACEMENT, category, g, sku["name"]):
                text = f"{copy.headline} {copy.body}"
                # Independent of the detector: no claim text of any brand that is not
                # approved for this product, outside the product's own catalog name...
                said = text.lower().replace(sku["name"].lower(), " ")
                carried = {c.lower() for _, c in all_claim_texts() if c.lower() in said}
                assert carried <= approved, (sku["name"], retailer, text)
                # ...and the detector agrees that every claim-like phrase is approved.
                found = unapproved_claims(text, g, sku["name"], category, sku["gtin"])
                assert found == [], (sku["name"], retailer, text, found)
                checked += 1
    assert checked > 500


def test_a_planted_unapproved_claim_is_caught_on_every_product() -> None:
    texts: dict[str, str] = {}
    where: dict[str, ClaimedProduct] = {}
    planted: dict[str, str] = {}
    by_brand: dict[str, list[dict[str, Any]]] = {}
    for sku in products():
        by_brand.setdefault(sku["brand_id"], []).append(sku)
    for brand, skus in by_brand.items():
        for i, sku in enumerate(skus):
            approved = approved_texts(sku)
            # A claim some brand makes for some product, but not approved for this one.
            # (Nor part of its own catalog name, which is its label: "Zero Sugar Iced Tea".)
            foreign = [
                c
                for _, c in all_claim_texts()
                if c.lower() not in approved and c.lower() not in sku["name"].lower()
            ]
            claim = foreign[i % len(foreign)]
            key = f"copy[{len(texts) // 2}]"
            texts[f"{key}.headline"] = sku["name"][:40]
            texts[f"{key}.body"] = f"{claim}. Shop now."
            where[key] = ClaimedProduct(
                name=sku["name"], category=sku["category"], gtin=sku["gtin"]
            )
            planted[key] = claim
        result = review(texts, [], [], brand, brand=brand, copy_products=where)
        flagged = {
            f.where.split(".")[0]: f.text for f in result.findings if f.type == "UNAPPROVED_CLAIM"
        }
        assert set(flagged) == set(planted), sorted(set(planted) - set(flagged))
        for key, claim in planted.items():
            assert flagged[key].lower() in claim.lower() or claim.lower() in flagged[key].lower()
        assert result.route == "creative"
        texts, where, planted = {}, {}, {}


def test_every_approved_claim_passes_on_a_product_it_is_approved_for() -> None:
    seen: set[tuple[str, str]] = set()
    for sku in products():
        g = guide(sku["brand_id"])
        category = policy_category(sku["category"])
        for claim in g.claims_for_product(sku["name"], category, sku["gtin"]):
            seen.add((sku["brand_id"], claim.id))
            text = f"{sku['name']} {claim.text}. Shop now."
            assert unapproved_claims(text, g, sku["name"], category, sku["gtin"]) == [], text
    # The seeded catalog has no air purifiers or phone chargers: Initech's ENERGY STAR and
    # fast-charging claims are approved for no product in it.
    assert {c.id for c in guide("initech").allowed_claims} - {
        c for b, c in seen if b == "initech"
    } == {
        "energy_star",
        "fast_charge",
    }


# --- the detector ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Sugar-free and tasty.", "Sugar-free"),
        ("The #1 choice of parents.", "#1"),
        ("Clinically proven to work.", "Clinically proven"),
        ("Now with 50% more chips.", "50% more"),
        ("All natural ingredients.", "All natural"),
        ("Dishwasher safe and microwave safe.", "Dishwasher safe"),
        ("Aluminum free, all day.", "Aluminum free"),
        ("Gluten free crackers.", "Gluten free"),
        ("Cures headaches fast.", "Cures"),
        ("Lasts 24 hours.", "24 hours"),
    ],
)
def test_detector_finds_claim_like_phrases(text: str, phrase: str) -> None:
    assert phrase.lower() in [c.text.lower() for c in find_claims(text)], find_claims(text)


@pytest.mark.parametrize(
    "text",
    [
        "Crunchy and full of flavor. Shop now.",
        "Designed for everyday living. Add it to your cart.",
        "Fresh all day. Find it in store and online.",
        "Save 20% off this week.",  # a price claim: the retailer's price rules judge it
        "Feel free to try it. Free shipping on orders.",
    ],
)
def test_detector_leaves_plain_copy_alone(text: str) -> None:
    assert find_claims(text) == []


def test_the_products_own_name_is_not_a_claim_but_a_shortened_claim_is() -> None:
    g = guide("brand_x")
    tea = "Brand X Zero Sugar Iced Tea"
    assert unapproved_claims(f"{tea}. Crisp and refreshing.", g, tea, "beverages") == []
    water = "Brand X Lime Sparkling Water"
    assert unapproved_claims("Zero sugar. Crisp and refreshing.", g, water, "beverages") == []
    assert unapproved_claims(
        "Zero sugar. Crisp and refreshing.", g, tea.replace("Zero Sugar ", ""), "beverages"
    ) == ["Zero sugar"]
    deodorant = "Brand X Sport Deodorant"
    assert (
        unapproved_claims("Aluminum-free and 48-hour fresh.", g, deodorant, "personal_care") == []
    )


def test_check_copy_reports_unapproved_claims_for_the_product() -> None:
    alpha, brand_x = load_retailer_policy("alpha"), guide("brand_x")
    copy = {"headline": "Brand X Fresh Body Wash", "body": "Aluminum-free deodorant. Shop now."}
    found = check_copy(
        copy, alpha, PLACEMENT, "personal_care", brand_x, product="Brand X Fresh Body Wash"
    )
    assert found == ["unapproved_claim:Aluminum-free deodorant"]
    deodorant = {**copy, "headline": "Brand X Fresh Deodorant"}
    assert (
        check_copy(
            deodorant, alpha, PLACEMENT, "personal_care", brand_x, product="Brand X Fresh Deodorant"
        )
        == []
    )
