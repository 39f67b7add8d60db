"""Prompt prefixes a decode computes once: their keys and values, kept per model.

Two kinds of prefix are kept (`prefix_lengths`): a chat's turns before its last user message
where they hold worked examples (`Job.prefix_len`, the same from call to call), and the head
that every row of one batch shares (`shared_head`): the copywriter's rows for one product and
placement differ only from their angle on, the second opinion's rows for one retailer only
from the copy they check. The rest of each row is computed after the kept keys and values
(`adapters.decoding.ForwardLoop`).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from adapters.batching import Job

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# A prompt prefix worth keeping (`Job.prefix_len`): the rationale's system message and worked
# example are about 250-320 tokens, the reflection's (one a sentence) 115-175; a short system
# message alone is not worth the memory. At 128 most of the reflection's were not kept: its
# step took 1.97 s a plan under the AVX2 emulation, 1.28 s at 96 (`rmn bench e2e`).
PREFIX_MIN_TOKENS = 96
# Prefixes kept per model. A prefix's keys and values take 46 kB a token in float32
# (SmolLM2-135M: 30 layers x 3 key-value heads x 64 x 2), so 8 of 300 tokens about 110 MB.
PREFIX_CACHE_SIZE = 8
LayerKV = tuple[torch.Tensor, torch.Tensor]


class PrefixCache:
    """The keys and values of prompt prefixes (a chat's system message and worked examples,
    the same from call to call), per model, least recently used out. Models are held weakly:
    a merged copy the runtime evicts takes its prefixes with it.

    Why: the rationale's worked example doubled its prompt, and a prompt is one wide pass
    whose cost grows with its length: 2 rows of 673 tokens took 2.0 s in float32 under the AVX2
    emulation, of 350 tokens 0.95 s. With its prefix kept, a call computes only the rest."""

    def __init__(self, size: int = PREFIX_CACHE_SIZE) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._by_model: weakref.WeakKeyDictionary[Any, OrderedDict[tuple[int, ...], list[LayerKV]]]
        self._by_model = weakref.WeakKeyDictionary()

    def get(
        self, model: Any, prefix: tuple[int, ...], compute: Callable[[], list[LayerKV]]
    ) -> list[LayerKV]:
        """Each layer's (keys, values) of `prefix` under `model`, computed on a miss."""
        kept = self._by_model.setdefault(model, OrderedDict())
        if prefix in kept:
            kept.move_to_end(prefix)
            self.hits += 1
            return kept[prefix]
        self.misses += 1
        kept[prefix] = compute()
        while len(kept) > self.size:
            kept.popitem(last=False)
        return kept[prefix]

    def stats(self) -> dict[str, int]:
        return {"prefix_hits": self.hits, "prefix_misses": self.misses}


def newline_ids(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """The ids of the tokens that end a line: byte-level BPE writes a newline as "Ċ",
    SentencePiece as "<0x0A>"."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    ends = ("\u010a", "\n", "<0x0A>")
    return frozenset(i for i, t in enumerate(tokens) if isinstance(t, str) and t.endswith(ends))


def shared_head(prompts: Sequence[Sequence[int]], newlines: frozenset[int]) -> int:
    """How many leading tokens every prompt of a batch of two or more shares, cut after the
    last line end among them (so that the next batch of the same retailer or product, whose
    rows differ elsewhere in their last line, finds the same head kept) and short of each
    prompt's last token (every row computes at least one); 0 below `PREFIX_MIN_TOKENS`.

    Why: on real AVX2 the prompt's pass was 22.7 s of 35.0 s of decoding over 3 plans (`rmn
    bench e2e`), and the two rows of a copy or second-opinion batch share 240-250 of their
    250-310 tokens."""
    if len(prompts) < 2:
        return 0
    limit = min(len(p) for p in prompts) - 1
    first = prompts[0]
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts[1:]):
        n += 1
    while n > 0 and first[n - 1] not in newlines:
        n -= 1
    return n if n >= PREFIX_MIN_TOKENS else 0


def prefix_lengths(batch: Sequence[Job], newlines: frozenset[int]) -> list[int]:
    """Each row's prompt tokens to take from the kept prefixes: its own worked examples where
    any row of the batch has them, else the head the batch shares (0 for none)."""
    own = [j.prefix_len if j.prefix_len >= PREFIX_MIN_TOKENS else 0 for j in batch]
    if any(own):
        return own
    return [shared_head([j.prompt for j in batch], newlines)] * len(batch)
