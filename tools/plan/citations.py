"""The retrieved policy passages a text cites: the ones of the right kind at the plan's
retailers, those naming the text's subject first, numbered [1]..[n] as the text cites them.

    citations, passages = cite(retrieved, ("placements_bidding",), ["beta", "alpha"], ("cap",))
    marker(citations, "cap")  # " [1]": the first passage naming "cap"
"""

from __future__ import annotations

from typing import Any

from tools.plan.plan import Citation

MAX_PASSAGES = 3


def section_of(passage: dict[str, Any]) -> str:
    """A retrieved passage's section heading (its text starts with the heading path)."""
    first = str(passage.get("text") or "").split("\n", 1)[0]
    heading = first.rsplit(" > ", 1)[-1].strip()
    if heading:
        return heading
    anchor = str(passage.get("source") or "").partition("#")[2]
    return anchor.replace("-", " ")


def title_of(passage: dict[str, Any]) -> str:
    """A retrieved passage's document title: the first part of its heading path."""
    first = str(passage.get("text") or "").split("\n", 1)[0]
    return first.split(" > ", 1)[0].strip() if " > " in first else ""


def passage_body(passage: dict[str, Any], limit: int = 260) -> str:
    """The passage without its heading line, cut at a word near `limit` characters."""
    text = str(passage.get("text") or "")
    body = text.split("\n", 1)[1] if "\n" in text else text
    body = " ".join(body.split())
    if len(body) <= limit:
        return body
    return body[:limit].rsplit(" ", 1)[0] + " ..."


def cite(
    retrieved: list[dict[str, Any]],
    doc_types: tuple[str, ...],
    retailers: list[str],
    prefer: tuple[str, ...] = (),
    limit: int = MAX_PASSAGES,
) -> tuple[list[Citation], list[str]]:
    """Up to `limit` retrieved passages of `doc_types` at `retailers` (in that order of
    retailers), those whose source or heading names a `prefer` word first; as citations
    [1]..[n] and their texts."""
    found = [
        p
        for p in retrieved
        if p.get("doc_type") in doc_types and (not retailers or p.get("retailer") in retailers)
    ]

    def rank(p: dict[str, Any]) -> tuple[int, int, int]:
        where = f"{p.get('source', '')} {section_of(p)}".lower()
        preferred = 0 if any(w in where for w in prefer) else 1
        order = retailers.index(p["retailer"]) if p.get("retailer") in retailers else 0
        return preferred, order, found.index(p)

    chosen = sorted(found, key=rank)[:limit]
    citations = [
        Citation(
            id=i + 1,
            source=str(p.get("source") or ""),
            section=section_of(p),
            title=title_of(p),
            doc_type=p.get("doc_type"),
            retailer=p.get("retailer"),
        )
        for i, p in enumerate(chosen)
    ]
    return citations, [passage_body(p) for p in chosen]


def marker(citations: list[Citation], *words: str) -> str:
    """' [n]' for the first citation whose source or section names one of `words` (else the
    first), or '' when nothing can be cited."""
    if not citations:
        return ""
    for c in citations:
        where = f"{c.source} {c.section}".lower()
        if any(w in where for w in words):
            return f" [{c.id}]"
    return f" [{citations[0].id}]"
