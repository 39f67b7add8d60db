"""Scoped retrieval over the policy corpus.

    from tools.rag import get_index
    result = get_index().search("what disclaimers does gamma require for vitamins?",
                                retailers=["gamma"], tenant="globex", k=4)

Heavy libraries (chromadb, sentence-transformers) load on first use, not on import.
`PolicyRetriever` (LangChain) lives in `tools.rag.retriever`.
"""

from tools.rag.index import (
    BuildInfo,
    PolicyIndex,
    RetrievedChunk,
    ScopeError,
    SearchResult,
    SearchScope,
    get_index,
)

__all__ = [
    "BuildInfo",
    "PolicyIndex",
    "RetrievedChunk",
    "ScopeError",
    "SearchResult",
    "SearchScope",
    "get_index",
]
