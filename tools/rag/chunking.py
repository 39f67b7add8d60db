"""Cut the policy corpus into retrievable chunks: one per Markdown section, with the heading
path in front so that a rule is never separated from what it is about."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from tools.policy.loader import CorpusDocument, corpus_dir, iter_corpus

# Bump when chunk text, indexed text or metadata change shape, so existing indexes rebuild.
CHUNKER_VERSION = "sections-v2"
# all-MiniLM-L6-v2 reads 256 word pieces; longer sections are split on paragraphs so that
# their tail is not silently cut off.
MAX_CHUNK_CHARS = 1100


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str
    metadata: dict[str, str]


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for kind in ("retailers", "brands") for p in (corpus / kind).glob("*/*.md"))


def corpus_hash(corpus: Path | None = None) -> str:
    """Content hash of every indexed document (paths and bytes) and of the chunker version."""
    corpus = corpus or corpus_dir()
    h = hashlib.sha256(CHUNKER_VERSION.encode())
    for path in corpus_files(corpus):
        h.update(path.relative_to(corpus).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _split_long(body: str) -> list[str]:
    if len(body) <= MAX_CHUNK_CHARS:
        return [body]
    parts: list[str] = []
    current = ""
    for para in body.split("\n\n"):
        if current and len(current) + len(para) + 2 > MAX_CHUNK_CHARS:
            parts.append(current)
            current = para
        else:
            current = f"{current}\n\n{para}" if current else para
    return [*parts, current] if current else parts


def _join_lines(text: str) -> str:
    # Markdown wraps prose at a fixed width; rejoin lines within paragraphs for readability.
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n") if p.strip())


def _rules_by_anchor(cdoc: CorpusDocument) -> dict[str, list[str]]:
    """The front-matter rules each section explains (`sections` maps rule -> anchor)."""
    out: dict[str, list[str]] = {}
    for rule, anchor in cdoc.meta.sections.items():
        out.setdefault(anchor, []).append(rule)
    return out


def index_text(chunk_text: str, rules: str) -> str:
    """What is embedded and keyword-indexed: the chunk plus the words of the rules its section
    explains. A section often never names what it governs ("How Globex sounds" is the `tone`
    rule, "Weekly price validity" is `required_disclaimers.price_validity`); adding the rule
    names is document expansion from curated metadata. Measured with RRF on the two question
    sets, recall@3 went from 0.976 / 0.931 to 0.988 / 0.961 (curated / users)."""
    words = list(
        dict.fromkeys(w for rule in rules.split(",") for w in re.split(r"[._]", rule) if w)
    )
    return f"{chunk_text}\nRules: {' '.join(words)}" if words else chunk_text


def chunk_document(cdoc: CorpusDocument) -> list[Chunk]:
    doc, meta = cdoc.doc, cdoc.meta
    rules = _rules_by_anchor(cdoc)
    base = {
        "scope": cdoc.scope,
        "retailer": cdoc.owner if cdoc.scope == "retailer" else "",
        "brand": cdoc.owner if cdoc.scope == "brand" else "",
        "owner_tenant": meta.owner_tenant or "",
        "doc_type": meta.doc_type,
        "title": meta.title,
        "doc_path": cdoc.display_path,
    }
    has_h1 = any(s.level == 1 for s in doc.sections)
    pieces: list[tuple[tuple[str, ...], str, str, str]] = []  # path, heading, anchor, text
    if doc.intro:
        pieces.append(((meta.title,), meta.title, "", doc.intro))
    for s in doc.sections:
        if s.text:
            path = s.path if has_h1 else (meta.title, *s.path)
            pieces.append((path, s.heading, s.anchor, s.text))

    chunks: list[Chunk] = []
    for path, heading, anchor, text in pieces:
        heading_path = " > ".join(path)
        source = cdoc.source(anchor or None)
        for i, part in enumerate(_split_long(_join_lines(text))):
            chunks.append(
                Chunk(
                    id=f"{source}~{i}",
                    text=f"{heading_path}\n{part}",
                    metadata={
                        **base,
                        "section": heading,
                        "anchor": anchor,
                        "heading_path": heading_path,
                        "source": source,
                        # Rules explained here, comma-separated (Chroma metadata is scalar).
                        "rules": ",".join(rules.get(anchor, [])),
                    },
                )
            )
    return chunks


def chunk_corpus(corpus: Path | None = None) -> list[Chunk]:
    """Chunks of every retailer and brand document; raises `PolicyParseError` on a bad file."""
    return [c for cdoc in iter_corpus(corpus) for c in chunk_document(cdoc)]
