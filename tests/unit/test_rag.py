"""Scoped retrieval over the policy corpus: no leakage across retailers or tenants in any mode
(dense, BM25, hybrid), refusals that say why, rebuild on corpus change, the LangChain
retriever, the CLI, rank fusion, and retrieval quality on both question sets."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cli.main import app
from tools.errors import RMNError, UnknownBrandError, UnknownRetailerError
from tools.policy import corpus_dir
from tools.rag import MODES, PolicyIndex, ScopeError, SearchResult
from tools.rag.chunking import chunk_corpus, corpus_hash, index_text
from tools.rag.evaluate import QUESTION_SETS, USER_QUESTIONS_FILE, load_questions
from tools.rag.keyword import KeywordIndex, tokenize
from tools.rag.ranking import RRF_K, reciprocal_rank_fusion
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


@pytest.mark.parametrize("mode", MODES)
def test_no_leakage_across_retailers_or_tenants(index: PolicyIndex, mode: str) -> None:
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
        result = index.search(question, retailers=retailers, tenant=tenant, k=8, mode=mode)  # type: ignore[arg-type]
        assert not result.refused and result.mode == mode
        # Keyword mode returns only chunks that share a word with the question.
        assert len(result.chunks) == 8 if mode != "bm25" else 1 <= len(result.chunks) <= 8
        assert_in_scope(result, retailers, tenant)
        seen_retailers |= {c.retailer for c in result.chunks if c.retailer}
        seen_brands |= {c.brand for c in result.chunks if c.brand}
    assert seen_retailers == {"alpha", "beta", "gamma", "delta"}
    assert seen_brands <= {"globex", "acme", "brand_x"} and seen_brands


@pytest.mark.parametrize("mode", MODES)
def test_brand_questions_find_only_the_tenants_own_guide(index: PolicyIndex, mode: str) -> None:
    question = "which words and claims must our ads avoid?"
    for tenant in OWNERS:
        result = index.search(question, retailers=["alpha"], tenant=tenant, k=40, mode=mode)  # type: ignore[arg-type]
        brands = {c.brand for c in result.chunks if c.brand}
        assert brands == {tenant}
        assert_in_scope(result, ["alpha"], tenant)
    anonymous = index.search(question, retailers=["alpha"], k=40, mode=mode)  # type: ignore[arg-type]
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
    with pytest.raises(RMNError, match="unknown retrieval mode 'sparse'"):
        index.search("k?", retailers=["alpha"], mode="sparse")  # type: ignore[arg-type]


def test_results_are_ranked_with_scores_sources_and_filters(index: PolicyIndex) -> None:
    result = index.search(
        "what disclaimers does gamma require for vitamins?", retailers=["gamma"], k=4
    )
    scores = [c.score for c in result.chunks]
    assert result.mode == "hybrid" and [c.rank for c in result.chunks] == [1, 2, 3, 4]
    # Fused scores: at most 1/(k+1) from each of the two rankings.
    top_bound = 2 / (RRF_K + 1) + 1e-6  # scores are rounded to 6 decimals
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= top_bound
    assert all(c.similarity is not None and -1 <= c.similarity <= 1 for c in result.chunks)
    assert all(c.bm25 is not None and c.bm25 >= 0 for c in result.chunks)
    assert 0 < result.embed_ms <= result.elapsed_ms
    top = result.chunks[0]
    assert (
        top.source == "rag_corpus/retailers/gamma/disclaimers.md#vitamins-and-dietary-supplements"
    )
    assert top.text.startswith("Gamma Pharmacy required disclaimers > Vitamins and dietary")
    assert "Food and Drug Administration" in top.text
    assert top.rules == ["required_disclaimers.supplement_fda"]

    dense = index.search(
        "what disclaimers does gamma require for vitamins?", retailers=["gamma"], k=4, mode="dense"
    )
    assert [c.score for c in dense.chunks] == [c.similarity for c in dense.chunks]
    assert all(c.bm25 is None for c in dense.chunks)
    keyword = index.search("vitamins disclaimer", retailers=["gamma"], k=4, mode="bm25")
    assert keyword.embed_ms == 0 and all(c.similarity is None for c in keyword.chunks)
    assert [c.score for c in keyword.chunks] == [c.bm25 for c in keyword.chunks]
    nothing = index.search("zyzzyva", retailers=["gamma"], k=4, mode="bm25")
    assert nothing.chunks == [] and "share a word" in nothing.notes[0]

    only = index.search(
        "minimum cell size", retailers=["alpha", "gamma"], doc_types=["data_access"]
    )
    assert {c.doc_type for c in only.chunks} == {"data_access"}
    assert only.chunks[0].source.endswith("#minimum-cell-size")


def test_policy_retriever_uses_the_langchain_interface(index: PolicyIndex, cache: Path) -> None:
    retriever = PolicyRetriever(retailers=["gamma"], tenant="globex", k=4, cache=cache)
    docs = retriever.invoke("can a vitamin ad say it boosts immunity?")
    assert len(docs) == 4 and retriever.mode == "hybrid"
    assert all(
        d.metadata["similarity"] is not None and d.metadata["bm25"] is not None for d in docs
    )
    assert all(d.metadata["retailer"] == "gamma" or d.metadata["brand"] == "globex" for d in docs)
    assert all("#" in d.metadata["source"] and d.page_content for d in docs)
    dense = PolicyRetriever(retailers=["gamma"], k=2, mode="dense", cache=cache)
    assert all(d.metadata["bm25"] is None for d in dense.invoke("sunscreen disclaimer"))
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
    question = "can I launch a test over Thanksgiving weekend?"
    dense = changed.search(question, retailers=["delta"], mode="dense")
    assert dense.chunks[0].source.endswith("measurement.md#holiday-blackout")
    # Both rankings hold the new section. (Fused, this question ranks it below sections that
    # share the word "test" with it: a known limit of rank fusion, see README.)
    keyword = changed.search("Black Friday blackout", retailers=["delta"], mode="bm25")
    assert keyword.chunks[0].source.endswith("measurement.md#holiday-blackout")
    assert not PolicyIndex(corpus, cache, progress=False).ensure().built
    # The same documents in another folder reuse the index, and cite that folder.
    elsewhere = tmp_path / "my-data"
    shutil.copytree(corpus, elsewhere)
    moved = PolicyIndex(elsewhere, cache, progress=False)
    assert not moved.ensure().built
    found = moved.search("Black Friday blackout", retailers=["delta"], mode="bm25")
    assert found.chunks[0].source == "my-data/retailers/delta/measurement.md#holiday-blackout"


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
    # A refused query is an error (issue #12): exit 2 with the one-line JSON error.
    assert refused.exit_code == 2
    error = json.loads(refused.stdout)["error"]
    assert error["type"] == "access_denied" and "'acme'" in error["message"]

    unknown = runner.invoke(app, ["rag", "query", "k?", "-r", "alpha,omega", "--json"])
    assert unknown.exit_code == 2
    assert json.loads(unknown.stdout)["error"]["type"] == "unknown_retailer"

    built = runner.invoke(app, ["rag", "build", "--json"])
    assert built.exit_code == 0 and json.loads(built.stdout)["built"] is False


@pytest.mark.parametrize("name", sorted(QUESTION_SETS))
def test_question_sets_cover_the_corpus(index: PolicyIndex, name: str) -> None:
    questions = load_questions(QUESTION_SETS[name])
    assert len(questions) >= 60
    assert len({q.id for q in questions}) == len(questions)
    sections = {c.metadata["source"].split("/", 1)[1]: c for c in chunk_corpus()}
    headings = {c.metadata["section"].lower() for c in sections.values()}
    doc_types = set()
    for q in questions:
        assert all(e in sections for e in q.expected), q.id
        assert q.question.lower().rstrip("?") not in headings, q.id
        doc_types |= {sections[e].metadata["doc_type"] for e in q.expected}
    assert {r for q in questions for r in q.retailers} == {"alpha", "beta", "gamma", "delta"}
    assert len(doc_types) >= 8
    if name == "users":  # every retailer and doc type, and every brand's guide
        assert doc_types == {c.metadata["doc_type"] for c in sections.values()}
        assert {q.tenant for q in questions if q.tenant} == set(OWNERS)
        assert {e.split("/")[1] for q in questions for e in q.expected} >= {
            "alpha",
            "beta",
            "gamma",
            "delta",
            *OWNERS,
        }


def test_reciprocal_rank_fusion() -> None:
    fused = reciprocal_rank_fusion([np.array([2, 0, 1]), np.array([0, 3])], size=5, k=60)
    assert fused[0] == pytest.approx(1 / 62 + 1 / 61)  # 2nd and 1st
    assert fused[2] == pytest.approx(1 / 61) and fused[3] == pytest.approx(1 / 62)
    assert fused[1] == pytest.approx(1 / 63) and fused[4] == 0
    assert np.argmax(fused) == 0  # in both lists beats first in one


def test_keyword_tokens_and_scores() -> None:
    assert tokenize("Will they run copy that says it CURES headaches?") == [
        "run",
        "copi",
        "say",
        "cure",
        "headach",
    ]
    assert tokenize("Gamma's ads can't, isn\u2019t") == ["gamma", "ad", "not", "not"]
    kw = KeywordIndex(["Disease and cure claims", "Emoji are not allowed", "No side effects"])
    scores = kw.scores("does it cure a disease?")
    assert scores[0] > 0 and scores[1] == scores[2] == 0
    assert not kw.scores("").any() and not kw.scores("zyzzyva").any()
    assert np.isfinite(kw.scores("the of and")).all()


def test_indexed_text_names_the_rules_a_section_explains() -> None:
    chunks = {c.metadata["source"].split("/", 1)[1]: c for c in chunk_corpus()}
    sounds = chunks["brands/globex/voice.md#how-globex-sounds"]
    assert sounds.metadata["rules"] == "tone" and "Rules" not in sounds.text
    assert index_text(sounds.text, sounds.metadata["rules"]).endswith("\nRules: tone")
    caps = chunks["retailers/alpha/creative_specs.md#all-caps-words-and-acronyms"]
    assert index_text(caps.text, caps.metadata["rules"]).endswith(
        "Rules: all caps words allowed acronyms"
    )
    counted = chunks["retailers/alpha/creative_specs.md#how-characters-are-counted"]
    assert counted.metadata["rules"] == "" and index_text(counted.text, "") == counted.text


@pytest.mark.parametrize(
    ("question", "retailers", "expected"),
    [
        # The issue's examples: users' words, not the corpus's.
        (
            "is there a character cap on Beta product ads?",
            ["beta"],
            "beta/creative_specs.md#sponsored-product-ads",
        ),
        (
            "will they run copy that says it cures headaches?",
            ["gamma"],
            "gamma/prohibited_content.md#disease-and-cure-claims",
        ),
    ],
)
def test_hybrid_answers_questions_as_users_ask_them(
    index: PolicyIndex, question: str, retailers: list[str], expected: str
) -> None:
    top3 = [c.source for c in index.search(question, retailers=retailers, k=3).chunks]
    assert f"rag_corpus/retailers/{expected}" in top3, top3


def test_eval_reports_both_sets_and_meets_the_recall_floor(
    index: PolicyIndex, cache_env: dict[str, str]
) -> None:
    result = CliRunner().invoke(app, ["rag", "eval", "--json"])
    assert result.exit_code == 0, result.output
    suite = json.loads(result.stdout)
    assert suite["mode"] == "hybrid" and [r["name"] for r in suite["sets"]] == ["curated", "users"]
    assert suite["target_recall_at_3"] == 0.98 and suite["target_latency_ms_p50"] == 30.0
    curated, users = suite["sets"]
    assert curated["questions"] == 84 and users["questions"] >= 60
    # Measured: 0.988 and 0.961. The 0.98 target is met on the curated set only (see README).
    assert curated["recall_at_3"] >= 0.98, curated["misses_at_3"]
    assert users["recall_at_3"] >= 0.95, users["misses_at_3"]
    for report in (curated, users):
        assert report["mode"] == "hybrid"
        assert report["recall_at_1"] <= report["recall_at_3"] and 0 < report["mrr"] <= 1
        assert 0 < report["latency_ms_p50"] <= report["latency_ms_p95"]
        assert report["embed_ms_p50"] > 0 and report["cpu_ms_p50"] > 0
    assert suite["targets_met"] == all(
        r["recall_at_3"] >= 0.98 and r["latency_ms_p50"] < 30 for r in (curated, users)
    )


def test_eval_in_keyword_mode_and_bad_options(
    index: PolicyIndex, cache_env: dict[str, str]
) -> None:
    runner = CliRunner()
    args = ["rag", "eval", "--questions", str(USER_QUESTIONS_FILE), "--mode", "bm25", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    suite = json.loads(result.stdout)
    (users,) = suite["sets"]
    assert suite["mode"] == "bm25" and users["name"] == "users" and users["embed_ms_p50"] == 0
    assert users["recall_at_3"] >= 0.9  # measured 0.931

    bad = runner.invoke(app, ["rag", "eval", "--mode", "sparse", "--json"])
    assert (
        bad.exit_code == 2
        and "unknown retrieval mode" in json.loads(bad.stdout)["error"]["message"]
    )
    missing = runner.invoke(app, ["rag", "eval", "--questions", "nope.jsonl", "--json"])
    assert missing.exit_code == 2
    assert json.loads(missing.stdout)["error"]["type"] == "question_set_error"
