"""A policy document of the corpus in force, as the review pages show it: its sections with
their anchors, so a citation (`.../placements_bidding.md#monthly-spend-caps`) links to the
very section. Retailer policies are every tenant's to read; a brand guide only its owner's
(another tenant's answers as an unknown document)."""

from __future__ import annotations

import re

from pydantic import BaseModel

from graph.serving.errors import NotFoundError
from tools.errors import RMNError
from tools.policy.loader import corpus_dir, read_corpus_document

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

__all__ = ["PolicyPage", "policy_page"]


class PolicySection(BaseModel):
    level: int
    title: str
    anchor: str
    paragraphs: list[str]


class PolicyPage(BaseModel):
    title: str
    source: str
    effective: str | None
    intro: list[str]
    sections: list[PolicySection]


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def policy_page(kind: str, owner: str, doc: str, tenant: str) -> PolicyPage:
    """`<corpus>/<kind>/<owner>/<doc>.md` for `tenant` (404 when it is not there or not the
    tenant's to read)."""
    unknown = NotFoundError(f"policy document {kind}/{owner}/{doc} not found")
    if kind not in ("retailers", "brands") or not (_ID.match(owner) and _ID.match(doc)):
        raise unknown
    corpus = corpus_dir()
    path = corpus / kind / owner / f"{doc}.md"
    if not path.is_file():
        raise unknown
    try:
        cdoc = read_corpus_document(path, corpus)
    except RMNError:
        raise unknown from None
    if cdoc.scope == "brand" and cdoc.meta.owner_tenant != tenant:
        raise unknown
    return PolicyPage(
        title=cdoc.meta.title,
        source=cdoc.display_path,
        effective=str(cdoc.meta.effective_date) if cdoc.meta.effective_date else None,
        intro=_paragraphs(cdoc.doc.intro),
        sections=[
            PolicySection(level=s.level, title=s.heading, anchor=s.anchor,
                          paragraphs=_paragraphs(s.text))  # fmt: skip
            for s in cdoc.doc.sections
        ],
    )
