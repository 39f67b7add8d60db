"""What the planner asks of the data: the clean-room query for a brief (its retailers and
flight), where an edited brief goes back to, and the retailers' rules and the brand's guide
retrieved for the steps that write and check text.

    query = query_plan(brief, tenant="acme")          # retailers, flight_days, views, ...
    replan_target(edited_parsed, curves)             # "optimizer" or "clean_room"
    passages = retrieve_rules("acme", "acme", ["alpha", "beta"], k=6, cache=cache_dir())
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.brief import StructuredBrief
from tools.brief.schema import MAX_FLIGHT_DAYS
from tools.catalog import current
from tools.rag.retriever import PolicyRetriever

DEFAULT_FLIGHT_DAYS = 28
# (name, question, document types, whether retailer documents are searched)
QUESTIONS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    (
        "copy_rules",
        "ad copy rules for {brand}: required disclaimers, prohibited claims and content, "
        "headline and body limits",
        ("creative_specs", "disclaimers", "prohibited_content"),
        True,
    ),
    ("brand_guide", "{brand} brand voice and approved claims", ("voice", "claims"), False),
    (
        "measurement_rules",
        "allowed experiment types, test length and holdout share",
        ("measurement",),
        True,
    ),
    # The allocation rationale cites these (`tools.plan.rationale`).
    (
        "spend_rules",
        "monthly spend caps per placement, minimum daily budget and bid floors",
        ("placements_bidding",),
        True,
    ),
)


def flight_days(brief: StructuredBrief) -> int:
    """Flight length from the brief's dates, else the standard four weeks."""
    if brief.flight_start and brief.flight_end:
        return max(1, min((brief.flight_end - brief.flight_start).days + 1, MAX_FLIGHT_DAYS))
    return DEFAULT_FLIGHT_DAYS


def query_plan(brief: StructuredBrief, tenant: str) -> dict[str, Any]:
    """What the clean room will be asked: the brand's line items at the brief's retailers
    (spend and attributed sales by SKU x placement over days, weeks and the whole history),
    joined on the brand's side with its first-party data."""
    return {
        "tenant": tenant,
        "brand": brief.brand_id,
        "retailers": brief.resolved_retailers(),
        "flight_days": flight_days(brief),
        "views": ["cleanroom", "full"],
        "group_by": ["sku", "placement", "week|date"],
        "metrics": ["spend", "attributed_sales"],
    }


def replanned_query(parsed: dict[str, Any], tenant: str) -> dict[str, Any]:
    """The clean-room query plan for an edited brief (its retailers and flight)."""
    return query_plan(StructuredBrief.model_validate(parsed), tenant)


def replan_target(parsed: dict[str, Any], curves: dict[str, Any] | None) -> str:
    """Where an edited brief goes: straight to the optimizer, or back to the clean room when
    it names a retailer no curves were fitted for or a flight of another length."""
    brief = StructuredBrief.model_validate(parsed)
    fitted = set((curves or {}).get("retailers") or [])
    same_flight = (curves or {}).get("flight_days") == flight_days(brief)
    return (
        "optimizer" if set(brief.resolved_retailers()) <= fitted and same_flight else "clean_room"
    )


def retrieve_rules(
    tenant: str, brand: str, retailers: list[str], *, k: int, cache: Path | None
) -> list[dict[str, Any]]:
    """Passages of the retailers' rules and the tenant's own brand guide, scoped so that no
    other retailer's or tenant's documents can come back: `k` per question, each passage
    once ({purpose, source, retailer, brand, doc_type, score, text})."""
    brands = current().brands
    name = brands[brand].name if brand in brands else brand
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    for purpose, question, doc_types, of_retailers in QUESTIONS:
        retriever = PolicyRetriever(
            retailers=retailers if of_retailers else [],
            tenant=tenant,
            doc_types=list(doc_types),
            k=k,
            cache=cache,
        )
        for doc in retriever.invoke(question.format(brand=name)):
            source = doc.metadata["source"]
            if source in seen:
                continue
            seen.add(source)
            out.append(
                {
                    "purpose": purpose,
                    "source": source,
                    "retailer": doc.metadata.get("retailer"),
                    "brand": doc.metadata.get("brand"),
                    "doc_type": doc.metadata.get("doc_type"),
                    "score": round(float(doc.metadata.get("score", 0.0)), 4),
                    "text": doc.page_content,
                }
            )
    return out
