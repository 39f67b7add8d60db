"""Kept prompt prefixes (`adapters.prefixes`): the head that every row of a batch shares is
computed once, cut after a line end so that the next batch with the same head finds it, and the
answers are those of each prompt computed whole. A tiny random Llama with SmolLM2's tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adapters.batching import Job
from adapters.prefixes import PREFIX_MIN_TOKENS, newline_ids, prefix_lengths, shared_head
from adapters.registry import AdapterSet
from adapters.runtime import Request
from adapters.structured import SentenceGrammar
from adapters.testing import tiny_fingerprint, tiny_llama, tiny_runtime, write_standard_adapters

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NL = frozenset({10})


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, _ = tiny_llama()
    return write_standard_adapters(
        tmp_path_factory.mktemp("adapters"), model, base_fingerprint=tiny_fingerprint()
    )


def test_the_shared_head_ends_after_a_line_end_and_leaves_each_row_a_token() -> None:
    head = [1] * 120 + [10]  # 121 tokens, the last a line end
    assert shared_head([[*head, 5, 6, 7], [*head, 5, 6, 8]], NL) == 121  # not 123: mid-line
    assert shared_head([[*head, 5], [*head, 5]], NL) == 121  # identical rows keep a token
    assert shared_head([[*head, 10], [*head, 10]], NL) == 121
    assert shared_head([[*head, 5, 6, 7]], NL) == 0  # one row: nothing shared
    assert shared_head([[*head, 5], [2, *head]], NL) == 0
    short = [1] * (PREFIX_MIN_TOKENS - 2) + [10]
    assert shared_head([[*short, 5], [*short, 6]], NL) == 0  # too short to keep
    no_line = [1] * 200
    assert shared_head([[*no_line, 5], [*no_line, 6]], NL) == 0


def test_a_rows_own_worked_examples_win_over_the_shared_head() -> None:
    head = [1] * 150 + [10]
    jobs = [Job([*head, 3, 4], (), 8, None), Job([*head, 3, 5], (), 8, None)]
    assert prefix_lengths(jobs, NL) == [151, 151]
    jobs[0].prefix_len = 140
    assert prefix_lengths(jobs, NL) == [140, 0]


def test_smollm2s_line_end_tokens_are_found() -> None:
    _, tokenizer = tiny_llama()
    ids = newline_ids(tokenizer)
    assert tokenizer("a\nb", add_special_tokens=False)["input_ids"][1] in ids
    assert tokenizer("a b", add_special_tokens=False)["input_ids"][1] not in ids


def test_a_batch_computes_its_shared_head_once_and_answers_as_if_whole(root: Path) -> None:
    """The copywriter's and the second opinion's rows share a long head (system message,
    retailer, product, rules) and differ in their last lines. Before, each row computed it."""
    system = {"role": "system", "content": "You write short retail ad copy by the rules. " * 12}
    asks = [
        "Angle: lead with the price.",
        "Angle: lead with the claim.",
        "Angle: lead with the taste.",
        "Angle: lead with the pack.",
    ]
    grammar = SentenceGrammar(min_words=3, max_words=8)
    reqs = [
        Request([system, {"role": "user", "content": a}], AdapterSet(), None, 20, grammar)
        for a in asks
    ]
    whole = tiny_runtime(root, decode="merged", merged_dtype=torch.float32)
    whole._decoder.prefixes = None  # noqa: SLF001 - every prompt computed whole
    alone = [whole.generate_many([r])[0] for r in reqs]
    expected = [g.text for g in alone]

    kept = tiny_runtime(root, decode="merged", merged_dtype=torch.float32)
    first = kept.generate_many(reqs[:2])
    assert [g.batch_size for g in first] == [2, 2]
    assert kept.stats()["prefix_misses"] == 1 and kept.stats()["prefix_hits"] == 1
    second = kept.generate_many(reqs[2:])  # the same head: found kept
    assert kept.stats()["prefix_misses"] == 1 and kept.stats()["prefix_hits"] == 3
    assert [g.text for g in first + second] == expected
    # the whole prompt, still counted
    assert [g.prompt_tokens for g in first] == [g.prompt_tokens for g in alone[:2]]
