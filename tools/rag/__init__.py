"""Scoped retrieval over the policy corpus.

    from tools.rag import get_index
    result = get_index().search("what disclaimers does gamma require for vitamins?",
                                retailers=["gamma"], tenant="globex", k=4)

Retrieval fuses a dense ranking (MiniLM) and a keyword ranking (BM25) by reciprocal rank
fusion (`mode="hybrid"`, the default); `mode="dense"` and `mode="bm25"` run one of them.
Heavy libraries (chromadb, sentence-transformers) load on first use, not on import.
`PolicyRetriever` (LangChain) lives in `tools.rag.retriever`.
"""

from tools.rag.index import PolicyIndex, get_index
from tools.rag.models import (
    DEFAULT_MODE,
    MODES,
    BuildInfo,
    RetrievalMode,
    RetrievedChunk,
    ScopeError,
    SearchResult,
    SearchScope,
)

__all__ = [
    "DEFAULT_MODE",
    "MODES",
    "BuildInfo",
    "RetrievalMode",
    "PolicyIndex",
    "RetrievedChunk",
    "ScopeError",
    "SearchResult",
    "SearchScope",
    "get_index",
]
