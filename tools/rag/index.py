"""The policy index: a persistent Chroma collection of corpus chunks, and scoped search over it.

The collection lives under `cache_dir()/rag`. It stores the corpus content hash in its metadata;
the first search of a process compares it with the corpus on disk and rebuilds when they differ,
so a second start with an unchanged corpus only opens the collection.

Every search is scoped: retailer documents only for the retailers named, brand documents only
for the tenant that owns them.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from tools.errors import RMNError, UnknownBrandError, UnknownRetailerError
from tools.paths import bundled_catalog_dir, cache_dir
from tools.policy.loader import corpus_dir
from tools.rag.chunking import CHUNKER_VERSION, chunk_corpus, corpus_hash, index_text
from tools.rag.embeddings import (
    EMBED_BATCH,
    EMBEDDING_MODEL,
    embed_documents,
    embed_query,
    embeddings,
)
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
from tools.rag.ranking import ChunkTable

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection

COLLECTION = "rmn-policy-corpus"

__all__ = [
    "BuildInfo",
    "PolicyIndex",
    "RetrievedChunk",
    "ScopeError",
    "SearchResult",
    "SearchScope",
    "get_index",
]


class PolicyIndex:
    """Scoped search over the policy corpus (dense, keyword or both fused), backed by a
    persistent Chroma collection."""

    def __init__(
        self, corpus: Path | None = None, cache: Path | None = None, *, progress: bool | None = None
    ) -> None:
        self.corpus = Path(corpus or corpus_dir()).resolve()
        self.path = Path(cache or cache_dir()) / _folder_for(self.corpus)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self._client: ClientAPI | None = None
        self._collection: Collection | None = None
        self._table: ChunkTable | None = None
        self._retailers: list[str] = []
        self._brand_owners: dict[str, str] = {}
        # Chroma's client start-up is not thread-safe: concurrent first runs (the HTTP server's
        # workers) must open and build the collection one at a time.
        self._lock = threading.RLock()

    # --- building -----------------------------------------------------------------------

    def _open_client(self) -> ClientAPI:
        with self._lock:
            return self._client_locked()

    def _client_locked(self) -> ClientAPI:
        if self._client is None:
            import chromadb
            from chromadb.config import Settings

            self.path.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(
                path=str(self.path), settings=Settings(anonymized_telemetry=False)
            )
        return self._client

    def _stored(self) -> Collection | None:
        from chromadb.errors import NotFoundError

        try:
            return self._open_client().get_collection(COLLECTION, embedding_function=None)
        except NotFoundError:
            return None

    def ensure(self, force: bool = False) -> BuildInfo:
        """Open the index, building it first when it is missing, stale or `force` is set."""
        with self._lock:
            return self._ensure(force)

    def _ensure(self, force: bool) -> BuildInfo:
        started = time.perf_counter()
        current = corpus_hash(self.corpus)
        stored = None if force else self._stored()
        meta = (stored.metadata or {}) if stored is not None else {}
        if stored is not None and meta.get("corpus_hash") == current:
            self._adopt(stored, meta)
            return self._info(False, current, started)
        self._build(current)
        return self._info(True, current, started)

    def _info(self, built: bool, current: str, started: float) -> BuildInfo:
        assert self._collection is not None
        return BuildInfo(
            built=built,
            chunks=self._collection.count(),
            corpus_hash=current,
            corpus=str(self.corpus),
            path=str(self.path),
            seconds=round(time.perf_counter() - started, 3),
        )

    def _adopt(self, collection: Collection, meta: dict[str, Any]) -> None:
        self._collection = collection
        self._table = ChunkTable.from_collection(collection)
        self._retailers = json.loads(str(meta.get("retailers", "[]")))
        self._brand_owners = json.loads(str(meta.get("brand_owners", "{}")))

    def _build(self, current: str) -> None:
        chunks = chunk_corpus(self.corpus)  # parse errors surface before the old index is dropped
        client = self._open_client()
        if self._stored() is not None:
            client.delete_collection(COLLECTION)
        # The hash is written last, so an interrupted build is never taken for a fresh one.
        collection = client.create_collection(
            COLLECTION,
            embedding_function=None,
            configuration={"hnsw": {"space": "cosine"}},
            metadata={"corpus_hash": "building"},
        )
        bar = tqdm(
            total=len(chunks),
            desc="Indexing policy corpus",
            unit="chunk",
            file=sys.stderr,
            disable=not self.progress,
        )
        with bar:
            for start in range(0, len(chunks), EMBED_BATCH):
                batch = chunks[start : start + EMBED_BATCH]
                collection.add(
                    ids=[c.id for c in batch],
                    documents=[c.text for c in batch],
                    metadatas=[dict(c.metadata) for c in batch],
                    embeddings=embed_documents(
                        [index_text(c.text, c.metadata["rules"]) for c in batch]
                    ),
                )
                bar.update(len(batch))
        retailers = sorted({c.metadata["retailer"] for c in chunks if c.metadata["retailer"]})
        owners = {
            c.metadata["brand"]: c.metadata["owner_tenant"] for c in chunks if c.metadata["brand"]
        }
        meta: dict[str, Any] = {
            "corpus_hash": current,
            "chunker": CHUNKER_VERSION,
            "embedding_model": EMBEDDING_MODEL,
            "retailers": json.dumps(retailers),
            "brand_owners": json.dumps(owners, sort_keys=True),
        }
        collection.modify(metadata=meta)
        self._adopt(collection, meta)

    # --- searching ----------------------------------------------------------------------

    def _ready(self) -> ChunkTable:
        with self._lock:
            if self._table is None:
                self.ensure()
            assert self._table is not None
            return self._table

    def resolve_scope(
        self,
        retailers: Sequence[str],
        tenant: str | None,
        brands: Sequence[str] | None,
        doc_types: Sequence[str] | None = None,
    ) -> tuple[SearchScope, list[str]]:
        """Check a scope; returns it with the refusals (notes) for brands the tenant cannot read."""
        self._ready()
        retailers = list(dict.fromkeys(retailers))
        unknown = [r for r in retailers if r not in self._retailers]
        if unknown:
            raise UnknownRetailerError(
                f"unknown retailer {unknown[0]!r}; known: {', '.join(self._retailers)}",
                retailer=unknown[0],
                known=self._retailers,
            )
        refusals: list[str] = []
        if brands is None:
            # A tenant sees its own brand guides alongside the retailers' rules.
            wanted = sorted(b for b, owner in self._brand_owners.items() if owner == tenant)
        else:
            wanted = list(dict.fromkeys(brands))
            for b in wanted:
                if b not in self._brand_owners:
                    raise UnknownBrandError(
                        f"unknown brand {b!r}; known: {', '.join(sorted(self._brand_owners))}",
                        brand=b,
                    )
                owner = self._brand_owners[b]
                if owner != tenant:
                    asked = f"tenant {tenant!r}" if tenant else "no tenant"
                    refusals.append(
                        f"brand documents of {b!r} are visible only to tenant {owner!r}; "
                        f"this query ran as {asked}"
                    )
        if not retailers and not wanted:
            raise ScopeError(
                "a policy search must name at least one retailer (or a brand of its tenant)",
                known_retailers=self._retailers,
            )
        scope = SearchScope(
            retailers=retailers,
            tenant=tenant,
            brands=[] if refusals else wanted,
            doc_types=list(doc_types) if doc_types else None,
        )
        return scope, refusals

    @staticmethod
    def in_scope(meta: dict[str, Any], scope: SearchScope) -> bool:
        """Whether a chunk may be returned for `scope`; checked again after the store's filter."""
        if scope.doc_types and meta.get("doc_type") not in scope.doc_types:
            return False
        if meta.get("scope") == "retailer":
            return meta.get("retailer") in scope.retailers
        if meta.get("scope") == "brand":
            return (
                bool(scope.tenant)
                and meta.get("brand") in scope.brands
                and meta.get("owner_tenant") == scope.tenant
            )
        return False

    def _here(self, source: str) -> str:
        """A chunk's source under this corpus's folder name. An index is reused for any
        folder with the same documents (`corpus_hash`), and kept the folder it was built
        in: reports cited "rmn-e2e-os687oh1/retailers/...", a bench's deleted temp folder."""
        _, _, rest = source.partition("/")
        return f"{self.corpus.name}/{rest}" if rest else source

    def search(
        self,
        query: str,
        *,
        retailers: Sequence[str] = (),
        tenant: str | None = None,
        brands: Sequence[str] | None = None,
        doc_types: Sequence[str] | None = None,
        k: int = 4,
        mode: RetrievalMode = DEFAULT_MODE,
    ) -> SearchResult:
        """The `k` chunks that best answer `query` within the scope.

        `retailers`: retailer documents searched. `tenant`: who is asking; its own brand guides
        are searched too. `brands`: brand guides to search instead of the tenant's own; a brand
        the tenant does not own refuses the whole query (no chunks, `refused`, and `notes`).
        `mode`: `hybrid` (default: dense and BM25 rankings fused by reciprocal rank fusion),
        `dense` (MiniLM cosine only) or `bm25` (keywords only).
        """
        if k < 1:
            raise RMNError("k must be at least 1", k=k)
        if mode not in MODES:
            raise RMNError(f"unknown retrieval mode {mode!r}; known: {', '.join(MODES)}", mode=mode)
        table = self._ready()
        if mode != "bm25":
            embeddings()  # loaded once per process; not part of a search's time
        started = time.perf_counter()
        scope, refusals = self.resolve_scope(retailers, tenant, brands, doc_types)
        if refusals:
            return SearchResult(
                query=query, scope=scope, k=k, mode=mode, chunks=[], refused=True, notes=refusals
            )
        embed_seconds = 0.0

        def timed_embed(text: str) -> list[float]:
            nonlocal embed_seconds
            t0 = time.perf_counter()
            try:
                return embed_query(text)
            finally:
                embed_seconds += time.perf_counter() - t0

        chunks: list[RetrievedChunk] = []
        for hit in table.rank(query, scope, mode, k, timed_embed):
            meta = table.metadatas[hit.position]
            # The mask already applied this rule; checked again so no code path can leak.
            if not self.in_scope(meta, scope):
                continue
            chunks.append(
                RetrievedChunk(
                    rank=len(chunks) + 1,
                    score=round(hit.score, 6 if mode == "hybrid" else 4),
                    similarity=None if hit.similarity is None else round(hit.similarity, 4),
                    bm25=None if hit.bm25 is None else round(hit.bm25, 4),
                    source=self._here(str(meta["source"])),
                    rules=[r for r in str(meta.get("rules", "")).split(",") if r],
                    retailer=str(meta["retailer"]) or None,
                    brand=str(meta["brand"]) or None,
                    doc_type=str(meta["doc_type"]),
                    section=str(meta["section"]),
                    heading_path=str(meta["heading_path"]),
                    text=table.texts[hit.position],
                )
            )
        notes = []
        if tenant and brands is None and not scope.brands:
            notes.append(f"tenant {tenant!r} owns no brand documents; searched retailer documents")
        if mode == "bm25" and len(chunks) < k:
            notes.append(f"only {len(chunks)} chunk(s) in scope share a word with the question")
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        return SearchResult(
            query=query,
            scope=scope,
            k=k,
            mode=mode,
            chunks=chunks,
            notes=notes,
            elapsed_ms=elapsed,
            embed_ms=round(embed_seconds * 1000, 2),
        )


def _folder_for(corpus: Path) -> str:
    """The cache folder of a corpus's index: `rag` for the bundled catalog's documents (and
    any copy of them, such as a simulated market's), `rag-<content hash>` for other documents
    (a user's catalog), so that two catalogs never rebuild one collection over each other, in
    one process or in several."""
    current = corpus_hash(corpus)
    return "rag" if current == corpus_hash(bundled_catalog_dir()) else f"rag-{current[:16]}"


_INDEXES: dict[tuple[Path, Path], PolicyIndex] = {}
_INDEXES_LOCK = threading.Lock()


def get_index(
    corpus: Path | None = None, cache: Path | None = None, *, progress: bool | None = None
) -> PolicyIndex:
    """One `PolicyIndex` per corpus and cache location in this process."""
    key = (Path(corpus or corpus_dir()).resolve(), Path(cache or cache_dir()).resolve())
    with _INDEXES_LOCK:
        if key not in _INDEXES:
            _INDEXES[key] = PolicyIndex(key[0], key[1], progress=progress)
        return _INDEXES[key]
