"""Load the policy corpus into typed objects.

Layout: `<corpus>/retailers/<retailer_id>/*.md` and `<corpus>/brands/<brand_id>/*.md`. Each
file's front matter names its owner and `doc_type`, maps every rule to the section of the
body that explains it (`sections`), and holds the rules themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tools.errors import UnknownBrandError, UnknownRetailerError
from tools.paths import catalog_dir
from tools.policy.frontmatter import Document, PolicyParseError, read_document
from tools.policy.models import (
    BiddingPolicy,
    BrandClaims,
    BrandGuide,
    BrandVoice,
    CreativePolicy,
    DataAccessPolicy,
    DisclaimersPolicy,
    MeasurementPolicy,
    ProhibitedContentPolicy,
    RetailerOverview,
    RetailerPolicy,
)

# doc_type -> (schema of its rules, policy_type used in sources and RMIS policy rows)
RETAILER_DOC_TYPES: dict[str, tuple[type[BaseModel], str]] = {
    "overview": (RetailerOverview, "overview"),
    "creative_specs": (CreativePolicy, "creative"),
    "prohibited_content": (ProhibitedContentPolicy, "prohibited_content"),
    "disclaimers": (DisclaimersPolicy, "disclaimers"),
    "data_access": (DataAccessPolicy, "data_access"),
    "measurement": (MeasurementPolicy, "measurement"),
    "placements_bidding": (BiddingPolicy, "bidding"),
}
BRAND_DOC_TYPES: dict[str, tuple[type[BaseModel], str]] = {
    "voice": (BrandVoice, "voice"),
    "claims": (BrandClaims, "claims"),
}
META_KEYS = ("retailer", "brand", "owner_tenant", "doc_type", "title", "effective_date", "sections")


def corpus_dir() -> Path:
    """The policy corpus: the catalog folder in force (`tools.paths.catalog_dir`: a run's
    data directory when it holds a catalog, else `RMN_CORPUS_DIR`, else `rag_corpus/`)."""
    return catalog_dir()


class DocMeta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    retailer: str | None = None
    brand: str | None = None
    owner_tenant: str | None = None
    doc_type: str
    title: str
    effective_date: date | None = None
    sections: dict[str, str]


@dataclass
class CorpusDocument:
    """A corpus file with its checked metadata; `rules` is the front matter less the metadata."""

    doc: Document
    meta: DocMeta
    scope: str  # "retailer" | "brand"
    owner: str  # retailer id or brand id
    rules: dict[str, Any]

    @property
    def display_path(self) -> str:
        return self.doc.display_path

    def source(self, anchor: str | None = None) -> str:
        return f"{self.doc.display_path}#{anchor}" if anchor else self.doc.display_path


def _ids(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("*.md")))


def list_retailers(corpus: Path | None = None) -> list[str]:
    return _ids((corpus or corpus_dir()) / "retailers")


def list_brands(corpus: Path | None = None) -> list[str]:
    return _ids((corpus or corpus_dir()) / "brands")


def read_corpus_document(path: Path, corpus: Path) -> CorpusDocument:
    """Read one file and check its metadata against where it sits in the corpus."""
    display = f"{corpus.name}/{path.relative_to(corpus).as_posix()}"
    doc = read_document(path, display)
    rel = path.relative_to(corpus).parts
    if len(rel) != 3 or rel[0] not in ("retailers", "brands"):
        raise PolicyParseError(display, None, "documents live in retailers/<id>/ or brands/<id>/")
    scope = "retailer" if rel[0] == "retailers" else "brand"
    owner = rel[1]
    doc_types = RETAILER_DOC_TYPES if scope == "retailer" else BRAND_DOC_TYPES

    fm = doc.front_matter
    meta_part = {k: v for k, v in fm.items() if k in META_KEYS}
    rules = {k: v for k, v in fm.items() if k not in META_KEYS}
    try:
        meta = DocMeta.model_validate(meta_part)
    except ValidationError as err:
        raise doc.validation_error(err) from None

    if getattr(meta, scope) != owner:
        raise doc.error((scope,), f"{scope} must be {owner!r} for a document in {rel[0]}/{owner}/")
    other = "brand" if scope == "retailer" else "retailer"
    if getattr(meta, other) is not None:
        raise doc.error((other,), f"a {scope} document cannot name a {other}")
    if scope == "brand" and not meta.owner_tenant:
        raise doc.error((), "brand documents need owner_tenant: the tenant that may read them")
    if scope == "retailer" and meta.owner_tenant is not None:
        raise doc.error(("owner_tenant",), "retailer documents are not owned by a tenant")
    if meta.doc_type not in doc_types:
        raise doc.error(
            ("doc_type",),
            f"unknown doc_type {meta.doc_type!r} for a {scope}; known: {', '.join(doc_types)}",
        )

    anchors = doc.anchors()
    for key, anchor in meta.sections.items():
        if anchor not in anchors:
            raise doc.error(("sections", key), f"no heading with anchor #{anchor} in the body")
    return CorpusDocument(doc, meta, scope, owner, rules)


def _check_sections(cdoc: CorpusDocument) -> None:
    """Every rule is explained in a section of the body, and every entry names a rule."""
    sections, rules = cdoc.meta.sections, cdoc.rules
    for key in sections:
        if key.split(".")[0] not in rules:
            raise cdoc.doc.error(("sections", key), f"{key!r} names no rule of this document")
    for rule in rules:
        if not any(k == rule or k.startswith(rule + ".") for k in sections):
            raise cdoc.doc.error((rule,), f"rule {rule!r} has no entry in sections")


def iter_corpus(corpus: Path | None = None) -> Iterator[CorpusDocument]:
    """Every retailer and brand document, in a stable order."""
    corpus = corpus or corpus_dir()
    for kind in ("retailers", "brands"):
        for path in sorted((corpus / kind).glob("*/*.md")):
            yield read_corpus_document(path, corpus)


def _read_owner(
    folder: Path, corpus: Path, doc_types: dict[str, tuple[type[BaseModel], str]]
) -> tuple[dict[str, BaseModel], dict[str, str]]:
    """Validate each document's rules; returns doc_type -> rules object, and the sources."""
    parsed: dict[str, BaseModel] = {}
    sources: dict[str, str] = {}
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.md")):
        cdoc = read_corpus_document(path, corpus)
        doc_type = cdoc.meta.doc_type
        if doc_type in seen:
            raise cdoc.doc.error(
                ("doc_type",), f"doc_type {doc_type!r} is already defined by {seen[doc_type]}"
            )
        seen[doc_type] = cdoc.display_path
        schema, policy_type = doc_types[doc_type]
        if "source" in cdoc.rules:
            raise cdoc.doc.error(("source",), "source is derived from sections; remove it")
        try:
            parsed[doc_type] = schema.model_validate(cdoc.rules)
        except ValidationError as err:
            raise cdoc.doc.validation_error(err) from None
        _check_sections(cdoc)
        sources[policy_type] = cdoc.source()
        for key, anchor in cdoc.meta.sections.items():
            sources[f"{policy_type}.{key}"] = cdoc.source(anchor)
    missing = [t for t in doc_types if t not in parsed]
    if missing:
        display = f"{corpus.name}/{folder.relative_to(corpus).as_posix()}"
        raise PolicyParseError(display, None, f"missing document(s) for {', '.join(missing)}")
    return parsed, sources


def load_retailer_policy(retailer_id: str, corpus: Path | None = None) -> RetailerPolicy:
    """All of one retailer's rules, typed. Raises `UnknownRetailerError` or `PolicyParseError`."""
    corpus = corpus or corpus_dir()
    known = list_retailers(corpus)
    if retailer_id not in known:
        raise UnknownRetailerError(
            f"unknown retailer {retailer_id!r}; known: {', '.join(known)}",
            retailer=retailer_id,
            known=known,
        )
    folder = corpus / "retailers" / retailer_id
    parsed, sources = _read_owner(folder, corpus, RETAILER_DOC_TYPES)
    overview = parsed["overview"]
    assert isinstance(overview, RetailerOverview)
    data_access = parsed["data_access"].model_copy(
        update={"source": sources.get("data_access.min_cell_size", sources["data_access"])}
    )
    try:
        return RetailerPolicy(
            retailer_id=retailer_id,
            name=overview.name,
            segment=overview.segment,
            placements=overview.placements,
            creative_review_business_days=overview.creative_review_business_days,
            creative=parsed["creative_specs"],
            prohibited=parsed["prohibited_content"],
            disclaimers=parsed["disclaimers"],
            data_access=data_access,
            measurement=parsed["measurement"],
            bidding=parsed["placements_bidding"],
            sources=sources,
        )
    except ValidationError as err:
        problem = "; ".join(e["msg"] for e in err.errors())
        raise PolicyParseError(f"{corpus.name}/retailers/{retailer_id}", None, problem) from None


def load_brand_guide(brand_id: str, corpus: Path | None = None) -> BrandGuide:
    """A brand's voice and claims, typed. Raises `UnknownBrandError` or `PolicyParseError`."""
    corpus = corpus or corpus_dir()
    known = list_brands(corpus)
    if brand_id not in known:
        raise UnknownBrandError(
            f"unknown brand {brand_id!r}; known: {', '.join(known)}", brand=brand_id, known=known
        )
    folder = corpus / "brands" / brand_id
    owners = {read_corpus_document(p, corpus).meta.owner_tenant for p in folder.glob("*.md")}
    if len(owners) != 1:
        raise PolicyParseError(
            f"{corpus.name}/brands/{brand_id}",
            None,
            f"documents disagree on owner_tenant: {sorted(map(str, owners))}",
        )
    parsed, sources = _read_owner(folder, corpus, BRAND_DOC_TYPES)
    voice, claims = parsed["voice"], parsed["claims"]
    assert isinstance(voice, BrandVoice) and isinstance(claims, BrandClaims)
    return BrandGuide(
        brand_id=brand_id,
        owner_tenant=owners.pop() or brand_id,
        **voice.model_dump(),
        **claims.model_dump(),
        sources=sources,
    )


# (corpus, the brand documents' names, sizes and times) -> brand_owners' answer. Every request
# to the HTTP API and every plan asks who owns a brand; reading the whole corpus for it cost
# 188 ms a call (measured), more than the rest of a request's checks together.
_OWNERS: dict[tuple[str, tuple[tuple[str, int, int], ...]], dict[str, str]] = {}


def brand_owners(corpus: Path | None = None) -> dict[str, str]:
    """brand id -> the tenant allowed to read its documents (read again when a brand document
    changes)."""
    corpus = corpus or corpus_dir()
    paths = sorted((corpus / "brands").glob("*/*.md"))
    stamps = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    key = (str(corpus), stamps)
    if key not in _OWNERS:
        owners: dict[str, str] = {}
        for path in paths:
            cdoc = read_corpus_document(path, corpus)
            if cdoc.scope == "brand" and cdoc.meta.owner_tenant:
                owners.setdefault(cdoc.owner, cdoc.meta.owner_tenant)
        _OWNERS.clear()  # one corpus at a time in practice; never grows without bound
        _OWNERS[key] = owners
    return dict(_OWNERS[key])
