"""The policy index behind LangChain's standard retriever interface, for graph nodes."""

from __future__ import annotations

from pathlib import Path

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from tools.rag.index import get_index
from tools.rag.models import DEFAULT_MODE, RetrievalMode, SearchResult


class PolicyRetriever(BaseRetriever):
    """Scoped retrieval over retailer policies and the tenant's own brand guides.

        retriever = PolicyRetriever(retailers=["gamma"], tenant="globex", k=4)
        docs = retriever.invoke("what disclaimers does gamma require for vitamins?")

    Each document's metadata carries `source` (path#anchor), `score` (the fused rank score in
    the default hybrid mode), `similarity` and `bm25`, `retailer` or `brand`, `doc_type` and
    `section`. A scope naming another tenant's brand returns no documents; call
    `search()` to get the refusal notes as well.
    """

    retailers: list[str] = Field(default_factory=list)
    tenant: str | None = None
    brands: list[str] | None = Field(
        default=None, description="brand guides to search; default: those the tenant owns"
    )
    doc_types: list[str] | None = None
    k: int = Field(default=4, ge=1)
    mode: RetrievalMode = Field(
        default=DEFAULT_MODE, description="hybrid (dense + BM25, fused), dense or bm25"
    )
    corpus: Path | None = None
    cache: Path | None = None

    def search(self, query: str) -> SearchResult:
        index = get_index(self.corpus, self.cache)
        return index.search(
            query,
            retailers=self.retailers,
            tenant=self.tenant,
            brands=self.brands,
            doc_types=self.doc_types,
            k=self.k,
            mode=self.mode,
        )

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        result = self.search(query)
        for note in result.notes:
            run_manager.on_text(note)
        return [
            Document(
                page_content=c.text,
                metadata={
                    "source": c.source,
                    "score": c.score,
                    "similarity": c.similarity,
                    "bm25": c.bm25,
                    "rank": c.rank,
                    "retailer": c.retailer,
                    "brand": c.brand,
                    "doc_type": c.doc_type,
                    "section": c.section,
                },
            )
            for c in result.chunks
        ]
