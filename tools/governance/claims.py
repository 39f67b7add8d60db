"""The claims check of a plan's copy: every claim-like phrase in a headline or body must be
approved for the product that copy is for in the brand's claims document
(`tools.policy.claims`). An unapproved claim blocks the copy and sends it back to creative,
like other copy violations, with a finding that names the phrase, the product and the document.
"""

from __future__ import annotations

from pathlib import Path

from tools.governance.errors import GovernanceInputError
from tools.plan import Finding, Plan
from tools.policy import BrandGuide, load_brand_guide
from tools.policy.claims import ClaimedProduct, find_unapproved

# Copy fields whose words make claims; disclaimers are legal lines the rules require (an FDA
# statement quotes "cure").
CLAIM_FIELDS = ("headline", "body")


def copy_products(
    plan: Plan, names: dict[str, str], categories: dict[str, str]
) -> dict[str, ClaimedProduct]:
    """ "copy[i]" -> the product copy variant i is for (by its GTIN in the brand's SKU list);
    variants without a known product are left out (the check reports them)."""
    out: dict[str, ClaimedProduct] = {}
    for i, variant in enumerate(plan.copy_variants):
        if variant.gtin and variant.gtin in names:
            out[f"copy[{i}]"] = ClaimedProduct(
                name=names[variant.gtin], category=categories.get(variant.gtin), gtin=variant.gtin
            )
    return out


def _guide(brand: str, tenant: str, corpus: Path | None) -> BrandGuide:
    guide = load_brand_guide(brand, corpus)  # an unknown brand fails here, naming the known
    if guide.owner_tenant != tenant:
        raise GovernanceInputError(
            f"brand {brand!r} belongs to tenant {guide.owner_tenant!r}, not {tenant!r}",
            brand=brand,
            tenant=tenant,
        )
    return guide


def claim_findings(
    texts: dict[str, str],
    tenant: str,
    brand: str,
    products: dict[str, ClaimedProduct],
    corpus: Path | None = None,
) -> tuple[list[Finding], list[str]]:
    """Findings for unapproved claims in the copy texts ("copy[i].headline" / ".body"), and the
    reasons that send the copy back to creative."""
    guide = _guide(brand, tenant, corpus)
    findings: list[Finding] = []
    reasons: list[str] = []
    for where, text in texts.items():
        key, _, field = where.partition(".")
        if not key.startswith("copy[") or field not in CLAIM_FIELDS:
            continue
        product = products.get(key)
        if product is None:
            findings.append(
                Finding(
                    type="CLAIMS_UNCHECKED",
                    where=where,
                    text="the product this copy is for is unknown; its claims were not checked",
                    severity="warn",
                    action="reported",
                )
            )
            continue
        for claim in find_unapproved(text, guide, product.name, product.category, product.gtin):
            findings.append(
                Finding(
                    type="UNAPPROVED_CLAIM",
                    where=where,
                    start=claim.start,
                    end=claim.end,
                    text=claim.text,
                    severity="block",
                    action="copy sent back to creative",
                )
            )
            reasons.append(
                f"{where}: claim {claim.text!r} is not approved for {product.name} "
                f"({guide.claims_source()}); rewrite it"
            )
    return findings, reasons
