"""The governance review of a plan: PII and injection in every text, and the plan's numbers
against the retailers' written rules.

Routing: a violation in ad copy (PII, an injection attempt or a claim the brand has not
approved for the product in `copy[...]`) goes back to the creative step, which rewrites the
copy; an injection attempt in the brief, a retrieved document or the rationale, a spend-cap or
category breach, spend at a retailer or on a placement the plan may not use, or a cell below
the retailer's k goes to the human with the reason. The human route wins when both apply. PII
anywhere else is redacted and reported, not routed.

Spend caps are per brand per calendar month and allocation rows are flight spend, paced evenly
over the flight's days: with flight dates the worst calendar month is checked, without them a
flight of up to 31 days is assumed to fall in one month (the cautious reading).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from tools.brief.schema import MAX_FLIGHT_DAYS
from tools.governance.claims import claim_findings
from tools.governance.errors import GovernanceInputError
from tools.governance.injection import detect_injection
from tools.governance.pii import PiiFinding, scan_pii
from tools.plan import AllocationRow, Finding
from tools.policy import RetailerPolicy, list_retailers, load_retailer_policy
from tools.policy.categories import POLICY_CATEGORY
from tools.policy.claims import ClaimedProduct
from tools.rmis import Placement

Route = Literal["ok", "creative", "human"]
DEFAULT_FLIGHT_DAYS = 28

# Plan-check finding types that send the plan to the human.
PLAN_BREACHES = frozenset({"SPEND_CAP", "CATEGORY", "PLACEMENT", "RETAILER_SCOPE", "K_ANONYMITY"})


class GovernanceReview(BaseModel):
    tenant: str
    findings: list[Finding] = Field(default_factory=list)
    redacted: dict[str, str] = Field(
        default_factory=dict, description="the same texts, PII replaced by <TYPE>"
    )
    route: Route = "ok"
    reasons: list[str] = Field(default_factory=list, description="why the plan goes where it goes")

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "block"]


def _is_copy(where: str) -> bool:
    return where.strip().lower().startswith("copy")


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def flight_window(
    flight_start: date | None, flight_end: date | None, flight_days: int | None
) -> tuple[date | None, int]:
    """(first day or None, number of days) of the flight."""
    if flight_start and flight_end:
        if flight_end < flight_start:
            raise GovernanceInputError(
                f"flight ends ({flight_end}) before it starts ({flight_start})"
            )
        days = (flight_end - flight_start).days + 1
    else:
        days = flight_days or DEFAULT_FLIGHT_DAYS
    if not 1 <= days <= MAX_FLIGHT_DAYS:
        raise GovernanceInputError(
            f"a flight lasts 1 to {MAX_FLIGHT_DAYS} days, got {days}", flight_days=days
        )
    if flight_start is None and flight_end is not None:
        flight_start = flight_end - timedelta(days=days - 1)
    return flight_start, days


def worst_month_share(start: date | None, days: int) -> float:
    """Largest share of an evenly paced flight that falls in one calendar month."""
    if start is None:
        # Unknown dates: a flight that fits in a month may fall entirely in one.
        return 1.0 if days <= 31 else 31 / days
    per_month: dict[tuple[int, int], int] = defaultdict(int)
    day = start
    for _ in range(days):
        per_month[(day.year, day.month)] += 1
        day += timedelta(days=1)
    return max(per_month.values()) / days


def _cell_retailer(key: str, known: set[str]) -> str | None:
    head = re.split(r"[/:|.,\s]", key.strip(), maxsplit=1)[0].lower()
    return head if head in known else None


def _text_findings(
    texts: dict[str, str], tenant: str
) -> tuple[list[Finding], dict[str, str], list[str], list[str]]:
    """Findings for every text, the redacted texts, and the reasons for each route."""
    findings: list[Finding] = []
    redacted: dict[str, str] = {}
    to_creative: list[str] = []
    to_human: list[str] = []
    for where, text in texts.items():
        if not isinstance(where, str) or not isinstance(text, str):
            raise GovernanceInputError(
                f"texts must map where-labels to strings; got {type(where).__name__} -> "
                f"{type(text).__name__}"
            )
        scan = scan_pii(text)
        redacted[where] = scan.redacted
        in_copy = _is_copy(where)
        for p in scan.findings:
            findings.append(_pii_finding(p, where, in_copy))
        if in_copy and scan.findings:
            kinds = ", ".join(sorted({p.type for p in scan.findings}))
            to_creative.append(f"{where}: copy contains personal data ({kinds}); rewrite it")
        attempts = detect_injection(text, where, tenant)
        findings += attempts
        if attempts:
            what = "; ".join(sorted({a.action.removeprefix("not obeyed ") for a in attempts}))
            if in_copy:
                to_creative.append(
                    f"{where}: copy carries injected instructions {what}; rewrite it"
                )
            else:
                to_human.append(
                    f"{where}: prompt-injection attempt {what}, not obeyed: "
                    f"{attempts[0].text[:80]!r}"
                )
    return findings, redacted, to_creative, to_human


def _pii_finding(p: PiiFinding, where: str, in_copy: bool) -> Finding:
    return Finding(
        type=p.type,
        where=where,
        start=p.start,
        end=p.end,
        text=p.text,
        severity="block" if in_copy else "warn",
        action="redacted; copy sent back to creative" if in_copy else "redacted",
    )


class _Policies:
    """Retailer policies read once per review."""

    def __init__(self, corpus: Path | None) -> None:
        self.corpus = corpus
        self._cache: dict[str, RetailerPolicy] = {}

    def get(self, retailer_id: str) -> RetailerPolicy:
        if retailer_id not in self._cache:
            self._cache[retailer_id] = load_retailer_policy(retailer_id, self.corpus)
        return self._cache[retailer_id]


def _to_human(type_: str, where: str, text: str) -> Finding:
    """A blocking plan-check finding that sends the plan to the human."""
    return Finding(type=type_, where=where, text=text, severity="block", action="sent to the human")


def _plan_findings(
    allocation: list[AllocationRow],
    retailers: list[str],
    policies: _Policies,
    categories: dict[str, str] | None,
    month_share: float,
    days: int,
) -> list[Finding]:
    findings, by_line = _row_findings(allocation, retailers, policies, categories)
    for (retailer_id, placement), spend in sorted(by_line.items()):
        findings += _line_findings(
            retailer_id, placement, spend, policies.get(retailer_id), month_share, days
        )
    if allocation and categories is None:
        findings.append(
            Finding(
                type="CATEGORY_UNCHECKED",
                where="allocation",
                text="no product categories given; category rules were not checked",
                severity="info",
                action="reported",
            )
        )
    return findings


def _row_findings(
    allocation: list[AllocationRow],
    retailers: list[str],
    policies: _Policies,
    categories: dict[str, str] | None,
) -> tuple[list[Finding], dict[tuple[str, str], float]]:
    """Per funded row: spend outside the brief's retailers, on a placement the retailer does
    not sell, or on a category it does not allow there; and the spend per retailer x
    placement the retailer sells."""
    findings: list[Finding] = []
    allowed = set(retailers)
    by_line: dict[tuple[str, str], float] = defaultdict(float)
    for i, row in enumerate(allocation):
        if row.spend <= 0:
            continue
        where = f"allocation[{i}]"
        if allowed and row.retailer_id not in allowed:
            findings.append(
                _to_human(
                    "RETAILER_SCOPE",
                    where,
                    f"{_usd(row.spend)} at {row.retailer_id}, which the brief does not "
                    f"include ({', '.join(retailers)})",
                )
            )
        policy = policies.get(row.retailer_id)
        try:
            placement = Placement(row.placement)
        except ValueError:
            placement = None
        if placement is None or placement not in policy.bidding.placements:
            findings.append(
                _to_human("PLACEMENT", where, f"{row.retailer_id} does not sell {row.placement!r}")
            )
            continue
        by_line[(row.retailer_id, placement.value)] += row.spend
        category = (categories or {}).get(row.gtin)
        if category is not None:
            findings += _category_findings(
                row, where, POLICY_CATEGORY.get(category, category), policy
            )
    return findings, by_line


def _line_findings(
    retailer_id: str,
    placement: str,
    spend: float,
    policy: RetailerPolicy,
    month_share: float,
    days: int,
) -> list[Finding]:
    """One retailer x placement's flight spend against its monthly cap (in the flight's
    worst month) and the minimum daily budget."""
    findings: list[Finding] = []
    bid = policy.bidding.placements[Placement(placement)]
    monthly = spend * month_share
    where = f"allocation:{retailer_id}/{placement}"
    if monthly > bid.max_monthly_spend_usd * (1 + 1e-9):
        source = policy.source_for("bidding", "placements.max_monthly_spend_usd", "placements")
        findings.append(
            _to_human(
                "SPEND_CAP",
                where,
                f"{_usd(monthly)} in one month on {retailer_id} {placement} against "
                f"its {_usd(bid.max_monthly_spend_usd)} monthly cap "
                f"({source})",
            )
        )
    daily = spend / days
    if daily < policy.bidding.min_daily_budget_usd:
        findings.append(
            Finding(
                type="MIN_DAILY_BUDGET",
                where=where,
                text=f"{_usd(daily)}/day on {retailer_id} {placement} is under the "
                f"{_usd(policy.bidding.min_daily_budget_usd)} minimum daily budget; the "
                "retailer will not run it",
                severity="warn",
                action="reported",
            )
        )
    return findings


def _category_findings(
    row: AllocationRow, where: str, category: str, policy: RetailerPolicy
) -> list[Finding]:
    bidding = policy.bidding
    source = policy.source_for(
        "bidding", f"category_restrictions.{category}", "prohibited_categories"
    )
    if category in bidding.prohibited_categories:
        problem = f"{policy.name} does not advertise {category} on any placement"
    elif not bidding.allows(category, row.placement):
        problem = f"{policy.name} does not allow {category} on {row.placement}"
    else:
        return []
    return [
        _to_human(
            "CATEGORY",
            where,
            f"{_usd(row.spend)} on GTIN {row.gtin}: {problem}" + (f" ({source})" if source else ""),
        )
    ]


def _rows(allocation: list[AllocationRow | dict[str, Any]]) -> list[AllocationRow]:
    """The allocation as rows; dicts (a plan read back from JSON) are validated into rows."""
    rows = []
    for i, row in enumerate(allocation):
        if isinstance(row, AllocationRow):
            rows.append(row)
            continue
        try:
            rows.append(AllocationRow.model_validate(row))
        except ValidationError as err:
            problem = err.errors()[0]
            raise GovernanceInputError(
                f"allocation[{i}] is not an allocation row: "
                f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}"
            ) from None
    return rows


def _k_findings(
    cell_counts: dict[str, int],
    k_min: int | None,
    involved: list[str],
    policies: _Policies,
) -> list[Finding]:
    known = set(list_retailers(policies.corpus))
    pool = [r for r in involved if r in known] or sorted(known)
    strictest = max(policies.get(r).data_access.min_cell_size for r in pool) if pool else 1
    findings = []
    for key, count in cell_counts.items():
        if isinstance(count, bool) or not isinstance(count, int | float) or math.isnan(count):
            raise GovernanceInputError(f"cell_counts[{key!r}] must be a number, got {count!r}")
        if k_min is not None:
            k = k_min
        else:
            retailer = _cell_retailer(str(key), known)
            k = policies.get(retailer).data_access.min_cell_size if retailer else strictest
        if 0 < count < k:
            findings.append(
                _to_human(
                    "K_ANONYMITY",
                    f"cell_counts[{key}]",
                    f"a cell of {count:g} events is below k = {k}",
                )
            )
    return findings


def review(
    texts: dict[str, str],
    allocation: list[AllocationRow | dict[str, Any]],
    retailers: list[str],
    tenant: str,
    k_min: int | None = None,
    cell_counts: dict[str, int] | None = None,
    *,
    categories: dict[str, str] | None = None,
    flight_start: date | None = None,
    flight_end: date | None = None,
    flight_days: int | None = None,
    corpus: Path | None = None,
    brand: str | None = None,
    copy_products: dict[str, ClaimedProduct] | None = None,
) -> GovernanceReview:
    """Review a plan's texts and numbers and decide where it goes next.

    texts: where-label -> text ("brief", "retrieved[0]", "copy[1].headline", "rationale").
    allocation: the plan's rows (AllocationRow, or the same as dicts).
    retailers: the retailers the brief allows (empty: any).
    k_min: the k every count in `cell_counts` must reach; default: the retailer's own k when a
        key starts with a retailer id ("gamma/week=2025-W09"), else the strictest k among the
        plan's retailers.
    categories: GTIN -> product category (catalog or policy names) for the category rules;
        without it those rules are not checked (an info finding says so).
    flight_start / flight_end / flight_days: the flight, for monthly caps and daily minimums
        (default: 28 days, dates unknown).
    brand / copy_products: the plan's brand (owned by `tenant`) and "copy[i]" -> the product
        that copy is for; with them every claim-like phrase in the copy is checked against the
        claims the brand's claims document approves for that product (`UNAPPROVED_CLAIM`,
        back to creative; `tools.governance.claims`).
    """
    if not isinstance(texts, dict):
        raise GovernanceInputError("texts must be a dict of where-label -> text")
    if not isinstance(tenant, str) or not tenant.strip():
        raise GovernanceInputError("tenant must be a non-empty string")
    if k_min is not None and k_min < 1:
        raise GovernanceInputError(f"k_min must be at least 1, got {k_min}")
    start, days = flight_window(flight_start, flight_end, flight_days)
    policies = _Policies(corpus)
    for r in retailers:
        policies.get(r)  # unknown retailers fail here, with the list of known ones

    findings, redacted, to_creative, to_human = _text_findings(texts, tenant)
    if brand is not None:
        claims, reasons = claim_findings(texts, tenant, brand, copy_products or {}, corpus)
        findings += claims
        to_creative += reasons
    rows = _rows(allocation)
    plan = _plan_findings(
        rows,
        list(retailers),
        policies,
        categories,
        worst_month_share(start, days),
        days,
    )
    involved = list(dict.fromkeys([*retailers, *(row.retailer_id for row in rows)]))
    plan += _k_findings(cell_counts or {}, k_min, involved, policies)
    findings += plan
    to_human += [f"{f.where}: {f.text}" for f in plan if f.type in PLAN_BREACHES]

    route: Route = "human" if to_human else "creative" if to_creative else "ok"
    reasons = to_human + to_creative
    return GovernanceReview(
        tenant=tenant, findings=findings, redacted=redacted, route=route, reasons=reasons
    )
