"""What a policy search takes and returns: scope, retrieved chunks, results, build info."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tools.errors import RMNError

RetrievalMode = Literal["dense", "bm25", "hybrid"]
MODES: tuple[RetrievalMode, ...] = ("dense", "bm25", "hybrid")
DEFAULT_MODE: RetrievalMode = "hybrid"


class ScopeError(RMNError):
    """A search without a scope: it must name at least one retailer or brand."""

    kind = "scope_error"


class RetrievedChunk(BaseModel):
    rank: int
    score: float = Field(
        description="what the ranking used: reciprocal-rank-fusion score (hybrid, 0..2/61), "
        "cosine similarity (dense, -1..1) or BM25 score (bm25, >= 0)"
    )
    similarity: float | None = Field(
        default=None, description="cosine similarity of question and chunk (dense, hybrid)"
    )
    bm25: float | None = Field(
        default=None,
        description="BM25 keyword score, 0 when no question word occurs (bm25, hybrid)",
    )
    source: str = Field(description="document path and section anchor")
    rules: list[str] = Field(
        default_factory=list, description="front-matter rules this section explains"
    )
    retailer: str | None
    brand: str | None
    doc_type: str
    section: str
    heading_path: str
    text: str


class SearchScope(BaseModel):
    retailers: list[str]
    tenant: str | None
    brands: list[str] = Field(description="brand documents searched (all owned by the tenant)")
    doc_types: list[str] | None = None


class SearchResult(BaseModel):
    query: str
    scope: SearchScope
    k: int
    mode: RetrievalMode = DEFAULT_MODE
    chunks: list[RetrievedChunk]
    refused: bool = False
    notes: list[str] = Field(default_factory=list)
    elapsed_ms: float = 0.0
    embed_ms: float = Field(
        default=0.0, description="part of elapsed_ms spent embedding the question"
    )


class BuildInfo(BaseModel):
    built: bool = Field(description="False when the stored index matched the corpus")
    chunks: int
    corpus_hash: str
    corpus: str
    path: str
    seconds: float
