"""Decoding of one batch: left-padded prompts in one `generate` call, each row under its own
token limit and, where it has a schema, its own grammar; greedy, or for a row with a
temperature, sampled from that row's own seeded generator (`SeededSampler`).

Rows of a batch may ask for different `max_new_tokens`: the batch runs to the largest and
`RowLimits` stops each row at its own. A row with a schema decodes under a `GrammarLogitsProcessor`
row mask; the others decode freely. Generation stops at EOS, which is cut from the text.

A batch with a grammar row decodes in our own loop instead of `generate` (`fast_forward`):
where a row's grammar allows only one continuation (a JSON key, a sentence opening the code
wrote, a citation marker), those tokens go into the next forward pass together, as a prompt
does, instead of one pass each; rows of different lengths are left-padded inside the step,
masked out of attention. Decoding on CPU costs about the same per pass whatever its width, so
forced tokens come almost free. The tokens are the grammar's own tokenization of the forced
text (`compute_ff_tokens`); a row's answer is complete when its grammar stops, with no pass
spent on the EOS. `Row.forced` counts them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from adapters.batching import Job, Row
from adapters.structured import GrammarCompiler, GrammarLogitsProcessor

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (avx512_bf16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class RowLimits:
    """Stops each row at its own `max_new_tokens` inside a batch that runs to the largest."""

    def __init__(self, limits: list[int], prompt_len: int) -> None:
        self.limits = torch.tensor(limits)
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        generated = input_ids.shape[1] - self.prompt_len
        return (generated >= self.limits).to(input_ids.device)


class SeededSampler:
    """Per-row sampling inside a greedy `generate`: a row with a temperature draws its next
    token from the softmax of its (grammar-masked) scores with its own `torch.Generator`, and
    every other token is masked, so the greedy step picks the draw. A row's draws depend on
    its seed and its own scores only, never on the rows it shares a batch with."""

    def __init__(self, rows: list[tuple[float, int | None]]) -> None:
        self.rows = [
            (i, t, torch.Generator().manual_seed(seed or 0))
            for i, (t, seed) in enumerate(rows)
            if t > 0
        ]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for i, temperature, generator in self.rows:
            probs = torch.softmax(scores[i].float().cpu() / temperature, dim=-1)
            if not torch.isfinite(probs).all() or probs.sum() <= 0:
                continue  # every token masked: leave the row to the grammar's end
            token = int(torch.multinomial(probs, 1, generator=generator))
            scores[i] = float("-inf")
            scores[i, token] = 0.0
        return scores


class BatchDecoder:
    """Decodes batches of jobs with one tokenizer, its grammars, on one device."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        grammars: GrammarCompiler,
        device: torch.device,
        eos_token_id: int,
        pad_token_id: int,
        fast_forward: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.grammars = grammars
        self.device = device
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id
        self.fast_forward = fast_forward

    def decode(
        self,
        model: Any,
        batch: list[Job],
        compositions: list[str],
        label: str,
        adapter_names: list[str] | None = None,
    ) -> list[Row]:
        """The batch's rows, in order, decoded greedily by `model` (with `adapter_names`: one
        PEFT adapter per row); `compositions` and `label` are recorded on the rows."""
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        extra: dict[str, Any] = {} if adapter_names is None else {"adapter_names": adapter_names}
        if self.fast_forward and any(j.schema for j in batch):
            return ForwardLoop(self, model, batch, extra).run(compositions, label)
        width = max(len(j.prompt) for j in batch)
        input_ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for i, job in enumerate(batch):  # left padding: every row's next token is at the end
            input_ids[i, width - len(job.prompt) :] = torch.tensor(job.prompt)
            attention[i, width - len(job.prompt) :] = 1
        matchers = [self.grammars.matcher(j.schema) if j.schema else None for j in batch]
        processors = []
        if any(m is not None for m in matchers):
            vocab = self.grammars.ll_tokenizer.vocab_size
            processors.append(GrammarLogitsProcessor(matchers, self.eos_token_id, vocab))
        if any(j.temperature > 0 for j in batch):  # after the grammar: draws what it allows
            processors.append(SeededSampler([(j.temperature, j.seed) for j in batch]))
        config = GenerationConfig(
            max_new_tokens=max(j.max_new_tokens for j in batch),
            do_sample=False,
            eos_token_id=self.eos_token_id,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        with torch.inference_mode():
            out = model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                generation_config=config,
                logits_processor=LogitsProcessorList(processors),
                stopping_criteria=StoppingCriteriaList(
                    [RowLimits([j.max_new_tokens for j in batch], width)]
                ),
                **extra,
            )
        rows = []
        for i, job in enumerate(batch):
            new = out[i, width:].tolist()[: job.max_new_tokens]
            finish = "length"
            if self.eos_token_id in new:
                new = new[: new.index(self.eos_token_id)]
                finish = "stop"
            text = self.tokenizer.decode(new, skip_special_tokens=True)
            rows.append(Row(new, text, finish, len(batch), compositions[i], label))
        return rows


class ForwardLoop:
    """One batch decoded pass by pass with a KV cache, each row's forced tokens fed in the
    same pass as its chosen one (see the module's docstring)."""

    def __init__(self, decoder: BatchDecoder, model: Any, batch: list[Job],
                 extra: dict[str, Any]) -> None:  # fmt: skip
        self.d, self.model, self.batch, self.extra = decoder, model, batch, extra
        matchers = [decoder.grammars.matcher(j.schema) if j.schema else None for j in batch]
        vocab = decoder.grammars.ll_tokenizer.vocab_size
        self.grammar = GrammarLogitsProcessor(matchers, decoder.eos_token_id, vocab)
        self.sampler = (SeededSampler([(j.temperature, j.seed) for j in batch])
                        if any(j.temperature > 0 for j in batch) else None)  # fmt: skip
        n = len(batch)
        self.tokens: list[list[int]] = [[] for _ in range(n)]
        self.forced = [0] * n
        self.finish = ["length"] * n
        self.done = [False] * n
        self.seen = [0] * n  # tokens in the cache per row (its next position)
        self.mask = torch.zeros((n, 0), dtype=torch.long)
        self.cache: Any = None

    def run(self, compositions: list[str], label: str) -> list[Row]:
        chunks = [list(j.prompt) + self._take_forced(i) for i, j in enumerate(self.batch)]
        with torch.inference_mode():
            while True:
                logits = self._step(chunks)
                if all(self.done):
                    break
                chunks = self._choose(logits)
                if all(self.done):
                    break
        rows = []
        for i in range(len(self.batch)):
            text = self.d.tokenizer.decode(self.tokens[i], skip_special_tokens=True)
            rows.append(Row(self.tokens[i], text, self.finish[i], len(self.batch),
                            compositions[i], label, forced=self.forced[i]))  # fmt: skip
        return rows

    def _left(self, i: int) -> int:
        return self.batch[i].max_new_tokens - len(self.tokens[i])

    def _take_forced(self, i: int) -> list[int]:
        """Row i's forced tokens from here, recorded; the row ends when its answer is
        complete or its limit reached."""
        ff = self.grammar.forced(i, self._left(i))
        self.tokens[i].extend(ff)
        self.forced[i] += len(ff)
        if self.grammar.complete(i):
            self.done[i], self.finish[i] = True, "stop"
        elif self._left(i) <= 0:
            self.done[i] = True
        return ff

    def _choose(self, logits: torch.Tensor) -> list[list[int]]:
        """Each live row's next token under its grammar (and sampler); its next chunk."""
        scores = self.grammar.mask(logits.float())
        if self.sampler is not None:
            scores = self.sampler(None, scores)  # type: ignore[arg-type]
        picks = scores.argmax(-1).tolist()
        chunks: list[list[int]] = []
        for i, token in enumerate(picks):
            if self.done[i]:
                chunks.append([])
                continue
            if token == self.d.eos_token_id:
                self.done[i], self.finish[i] = True, "stop"
                chunks.append([])
                continue
            self.tokens[i].append(token)
            self.grammar.advance(i, [token])
            if self._left(i) <= 0:  # at its limit: nothing more to compute for it
                self.done[i] = True
                chunks.append([])
                continue
            chunks.append([token, *self._take_forced(i)])
        return chunks

    def _step(self, chunks: list[list[int]]) -> torch.Tensor:
        """One forward pass over each row's chunk (left-padded to the widest, the padding
        masked out); the logits at each row's last position."""
        width = max(1, max(len(c) for c in chunks))
        n = len(chunks)
        ids = torch.full((n, width), self.d.pad_token_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        pos = torch.zeros((n, width), dtype=torch.long)
        for i, chunk in enumerate(chunks):
            if chunk:
                k = len(chunk)
                ids[i, width - k :] = torch.tensor(chunk)
                mask[i, width - k :] = 1
                pos[i, width - k :] = torch.arange(self.seen[i], self.seen[i] + k)
                self.seen[i] += k
        self.mask = torch.cat([self.mask, mask], dim=1)
        if self.cache is None:
            from transformers import DynamicCache

            self.cache = DynamicCache()
        out = self.model(
            input_ids=ids.to(self.d.device),
            attention_mask=self.mask.to(self.d.device),
            position_ids=pos.to(self.d.device),
            cache=self.cache,
            use_cache=True,
            logits_to_keep=1,
            **self.extra,
        )
        return out.logits[:, -1, :]
