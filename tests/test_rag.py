"""Scoped retrieval over the policy corpus: no leakage across retailers or tenants, refusals that
say why, rebuild on corpus change, the LangChain retriever, the CLI, and retrieval quality."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tools.errors import UnknownBrandError, UnknownRetailerError
from tools.policy import corpus_dir
from tools.rag import PolicyIndex, ScopeError, SearchResult
from tools.rag.chunking import chunk_corpus, corpus_hash
from tools.rag.evaluate import load_questions
from tools.rag.retriever import PolicyRetriever

OWNERS = {"acme": "acme", "globex": "globex", "initech": "initech", "brand_x": "brand_x"}


@pytest.fixture(scope="session")
def cache(rag_cache: Path) -> Path:
    return rag_cache


@pytest.fixture(scope="session")
def index(rag_index: PolicyIndex) -> PolicyIndex:
    assert rag_index.ensure().chunks == len(chunk_corpus())
    return rag_index


@pytest.fixture
def cache_env(cache: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("RMN_CACHE_DIR", str(cache))
    yield {"RMN_CACHE_DIR": str(cache)}


def assert_in_scope(result: SearchResult, retailers: list[str], tenant: str | None) -> None:
    for c in result.chunks:
        if c.retailer is not None:
            assert c.brand is None and c.retailer in retailers, c.source
            assert c.source.startswith(f"rag_corpus/retailers/{c.retailer}/")
        else:
            assert c.brand is not None and tenant is not None, c.source
            assert OWNERS[c.brand] == tenant, c.source
            assert c.source.startswith(f"rag_corpus/brands/{c.brand}/")


def test_no_leakage_across_retailers_or_tenants(index: PolicyIndex) -> None:
    questions = [q.question for q in load_questions()]
    scopes: list[tuple[list[str], str | None]] = [
        (["alpha"], None),
        (["beta", "gamma"], "globex"),
        (["delta"], "acme"),
        (["gamma"], "brand_x"),
    ]
    seen_retailers: set[str] = set()
    seen_brands: set[str] = set()
    for i, question in enumerate(questions):
        retailers, tenant = scopes[i % len(scopes)]
        result = index.search(question, retailers=retailers, tenant=tenant, k=8)
        assert not result.refused and len(result.chunks) == 8
        assert_in_scope(result, retailers, tenant)
        seen_retailers |= {c.retailer for c in result.chunks if c.retailer}
        seen_brands |= {c.brand for c in result.chunks if c.brand}
    assert seen_retailers == {"alpha", "beta", "gamma", "delta"}
    assert seen_brands <= {"globex", "acme", "brand_x"} and seen_brands


def test_brand_questions_find_only_the_tenants_own_guide(index: PolicyIndex) -> None:
    question = "which words and claims must our ads avoid?"
    for tenant in OWNERS:
        result = index.search(question, retailers=["alpha"], tenant=tenant, k=40)
        brands = {c.brand for c in result.chunks if c.brand}
        assert brands == {tenant}
        assert_in_scope(result, ["alpha"], tenant)
    anonymous = index.search(question, retailers=["alpha"], k=40)
    assert all(c.brand is None for c in anonymous.chunks)


def test_another_tenants_brand_documents_are_refused_with_a_reason(index: PolicyIndex) -> None:
    result = index.search("banned words", retailers=["alpha"], tenant="globex", brands=["acme"])
    assert result.refused and result.chunks == []
    assert result.notes == [
        "brand documents of 'acme' are visible only to tenant 'acme'; "
        "this query ran as tenant 'globex'"
    ]
    # Mixing an owned brand with a foreign one still refuses the whole query.
    mixed = index.search("tone", retailers=[], tenant="acme", brands=["acme", "initech"])
    assert mixed.refused and mixed.chunks == []
    anonymous = index.search("tone", brands=["brand_x"])
    assert anonymous.refused and "no tenant" in anonymous.notes[0]
    own = index.search("tone of voice", tenant="acme", brands=["acme"], k=3)
    assert not own.refused and {c.brand for c in own.chunks} == {"acme"}


def test_scope_errors(index: PolicyIndex) -> None:
    with pytest.raises(UnknownRetailerError, match="omega"):
        index.search("k?", retailers=["omega"])
    with pytest.raises(UnknownBrandError):
        index.search("k?", tenant="acme", brands=["umbrella"])
    with pytest.raises(ScopeError):
        index.search("k?")
    with pytest.raises(ScopeError):
        index.search("k?", tenant="no_such_tenant")


def test_results_are_ranked_with_scores_sources_and_filters(index: PolicyIndex) -> None:
    result = index.search(
        "what disclaimers does gamma require for vitamins?", retailers=["gamma"], k=4
    )
    scores = [c.score for c in result.chunks]
    assert [c.rank for c in result.chunks] == [1, 2, 3, 4]
    assert scores == sorted(scores, reverse=True) and -1 <= scores[-1] <= scores[0] <= 1
    top = result.chunks[0]
    assert (
        top.source == "rag_corpus/retailers/gamma/disclaimers.md#vitamins-and-dietary-supplements"
    )
    assert top.text.startswith("Gamma Pharmacy required disclaimers > Vitamins and dietary")
    assert "Food and Drug Administration" in top.text

    only = index.search(
        "minimum cell size", retailers=["alpha", "gamma"], doc_types=["data_access"]
    )
    assert {c.doc_type for c in only.chunks} == {"data_access"}
    assert only.chunks[0].source.endswith("#minimum-cell-size")


def test_policy_retriever_uses_the_langchain_interface(index: PolicyIndex, cache: Path) -> None:
    retriever = PolicyRetriever(retailers=["gamma"], tenant="globex", k=4, cache=cache)
    docs = retriever.invoke("can a vitamin ad say it boosts immunity?")
    assert len(docs) == 4
    assert all(d.metadata["retailer"] == "gamma" or d.metadata["brand"] == "globex" for d in docs)
    assert all("#" in d.metadata["source"] and d.page_content for d in docs)
    refused = PolicyRetriever(retailers=["gamma"], tenant="globex", brands=["acme"], cache=cache)
    assert refused.invoke("banned words") == []
    assert refused.search("banned words").refused


def test_unchanged_corpus_is_reused_and_a_change_rebuilds(tmp_path: Path) -> None:
    corpus = tmp_path / "rag_corpus"
    for part in ("retailers/delta", "brands/initech"):
        shutil.copytree(corpus_dir() / part, corpus / part)
    cache = tmp_path / "cache"
    first = PolicyIndex(corpus, cache, progress=False).ensure()
    assert first.built and first.corpus_hash == corpus_hash(corpus)

    # A second start (new process, same cache) reuses the stored collection.
    again = PolicyIndex(corpus, cache, progress=False).ensure()
    assert not again.built and again.chunks == first.chunks

    doc = corpus / "retailers/delta/measurement.md"
    doc.write_text(
        doc.read_text()
        + "\n## Holiday blackout\n\nNo experiment may start between Black Friday and New Year's"
        " Day, when traffic is too unusual to read a lift.\n"
    )
    changed = PolicyIndex(corpus, cache, progress=False)
    info = changed.ensure()
    assert info.built and info.corpus_hash != first.corpus_hash
    assert info.chunks == first.chunks + 1
    top = changed.search("can I launch a test over Thanksgiving weekend?", retailers=["delta"])
    assert top.chunks[0].source.endswith("measurement.md#holiday-blackout")
    assert not PolicyIndex(corpus, cache, progress=False).ensure().built


def test_cli_query_returns_chunks_as_json(index: PolicyIndex, cache_env: dict[str, str]) -> None:
    runner = CliRunner()
    args = ["rag", "query", "what disclaimers does gamma require for vitamins?", "--retailer"]
    result = runner.invoke(app, [*args, "gamma", "--tenant", "globex", "--k", "3", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["scope"] == {
        "retailers": ["gamma"],
        "tenant": "globex",
        "brands": ["globex"],
        "doc_types": None,
    }
    assert len(out["chunks"]) == 3
    assert out["chunks"][0]["source"].endswith(
        "gamma/disclaimers.md#vitamins-and-dietary-supplements"
    )

    refused = runner.invoke(
        app,
        [
            "rag",
            "query",
            "banned words",
            "-r",
            "alpha",
            "--tenant",
            "globex",
            "--brand",
            "acme",
            "--json",
        ],
    )
    assert refused.exit_code == 0
    body = json.loads(refused.stdout)
    assert body["refused"] and body["chunks"] == [] and "'acme'" in body["notes"][0]

    unknown = runner.invoke(app, ["rag", "query", "k?", "-r", "alpha,omega", "--json"])
    assert unknown.exit_code == 2
    assert json.loads(unknown.stdout)["error"]["type"] == "unknown_retailer"

    built = runner.invoke(app, ["rag", "build", "--json"])
    assert built.exit_code == 0 and json.loads(built.stdout)["built"] is False


def test_question_set_covers_the_corpus(index: PolicyIndex) -> None:
    questions = load_questions()
    assert len(questions) >= 60
    sections = {c.metadata["source"].split("/", 1)[1]: c for c in chunk_corpus()}
    headings = {c.metadata["section"].lower() for c in sections.values()}
    doc_types = set()
    for q in questions:
        assert all(e in sections for e in q.expected), q.id
        assert q.question.lower().rstrip("?") not in headings, q.id
        doc_types |= {sections[e].metadata["doc_type"] for e in q.expected}
    assert {r for q in questions for r in q.retailers} == {"alpha", "beta", "gamma", "delta"}
    assert len(doc_types) >= 8


def test_eval_meets_the_recall_target(index: PolicyIndex, cache_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["rag", "eval", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["questions"] >= 60
    assert report["recall_at_3"] >= 0.95, report["misses_at_3"]
    assert report["recall_at_1"] <= report["recall_at_3"] and 0 < report["mrr"] <= 1
    assert 0 < report["latency_ms_p50"] <= report["latency_ms_p95"]
