"""Decoding of one batch: left-padded prompts in one `generate` call, each row under its own
token limit and, where it has a schema, its own grammar; greedy, or for a row with a
temperature, sampled from that row's own seeded generator (`SeededSampler`).

Rows of a batch may ask for different `max_new_tokens`: the batch runs to the largest and
`RowLimits` stops each row at its own. A row with a schema decodes under a `GrammarLogitsProcessor`
row mask; the others decode freely. Generation stops at EOS, which is cut from the text.
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
    ) -> None:
        self.tokenizer = tokenizer
        self.grammars = grammars
        self.device = device
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id

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
