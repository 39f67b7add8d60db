import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Tests never reach a model hub; the models come from installed packages.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def rag_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rag-cache")


@pytest.fixture(scope="session")
def rag_index(rag_cache: Path):  # type: ignore[no-untyped-def]
    """The real policy corpus, indexed once per test session in a temporary cache."""
    from tools.policy import corpus_dir
    from tools.rag import get_index

    index = get_index(corpus_dir(), rag_cache, progress=False)
    index.ensure()
    return index


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """For modules on the tiny model: its ops take microseconds, and OpenMP hand-offs between
    threads on a shared machine cost milliseconds each, so one thread is faster and steadier."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def seed7_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed-7 market (90 days, 100k events), generated and harmonized once per session.
    Never planned on directly: modules take a copy (`market`)."""
    from tools.world import WorldSpec, ensure_world

    data = tmp_path_factory.mktemp("seed7-world")
    ensure_world(data, WorldSpec(seed=7, days=90, events=100_000))
    return data


@pytest.fixture(scope="module")
def market(seed7_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A module's own copy of the seed-7 market: its plans, caches and reports stay its own."""
    data = tmp_path_factory.mktemp("market") / "data"
    shutil.copytree(seed7_world, data)
    return data


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """One throwaway PostgreSQL cluster for the session (tests/postgres_support.py): its URL.
    Tests take a database of their own on it with `postgres_support.new_database`."""
    pytest.importorskip("psycopg", reason="pip install -e '.[postgres]'")
    from postgres_support import temporary_postgres

    try:
        with temporary_postgres() as url:
            yield url
    except RuntimeError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def decodes_to() -> Callable[[Any, str], bool]:
    """Whether decoding under a sentence grammar (`adapters.structured.SentenceGrammar`) can
    write `text` with the SmolLM2 tokenizer: the tokens the grammar forces (an opening, in its
    own tokenization, as the decoder feeds them), then the text's own tokens where the model
    chooses."""
    import llguidance.hf
    from llguidance import LLMatcher

    from adapters.structured import OutputSchema
    from adapters.testing import smollm2_tokenizer

    tokenizer = smollm2_tokenizer()
    ll_tokenizer = llguidance.hf.from_tokenizer(tokenizer)

    def decodes(grammar: Any, text: str) -> bool:
        matcher = LLMatcher(ll_tokenizer, OutputSchema.of(grammar).grammar(), log_level=0)
        at = 0
        while at < len(text):
            tokens = list(matcher.compute_ff_tokens())
            if not tokens:
                tokens = tokenizer(text[at:], add_special_tokens=False)["input_ids"][:1]
            piece = tokenizer.decode(tokens)
            if not text.startswith(piece, at) or not matcher.consume_tokens(tokens):
                return False
            at += len(piece)
        return matcher.is_accepting()

    return decodes
