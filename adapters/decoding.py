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

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from adapters.batching import Job, Row
from adapters.prefixes import LayerKV, PrefixCache, newline_ids, prefix_lengths
from adapters.structured import GrammarCompiler, GrammarLogitsProcessor
from tools.errors import RMNError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


DECODE_PATH_ENV = "RMN_DECODE_PATH"
# "0" serves the int8 path's decoder layers as transformers builds them (`adapters.fused`).
FUSED_LAYERS_ENV = "RMN_FUSED_LAYERS"
MergedPath = Literal["fp32", "bf16", "int8"]
MERGED_PATHS: tuple[MergedPath, ...] = ("fp32", "bf16", "int8")
# The /proc/cpuinfo flags that decide (and explain) the decode path.
CPU_FLAGS_OF_INTEREST = (
    "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_bf16",
    "amx_int8", "avx_vnni",
)  # fmt: skip
# oneDNN ISA caps (ONEDNN_MAX_CPU_ISA) under which bfloat16 matmuls still run natively.
_ONEDNN_BF16_ISAS = ("BF16", "AMX", "FP16", "AVX10", "ALL", "DEFAULT")


class DecodePathError(RMNError):
    """A decode path asked for (RMN_DECODE_PATH) that is not one there is."""

    kind = "decode_path"


@dataclass(frozen=True)
class CpuInfo:
    """What the decode path is chosen from: the CPU's flags (/proc/cpuinfo), the kernel set
    torch dispatches to (`torch.backends.cpu.get_cpu_capability()`, lowered by
    `ATEN_CPU_CAPABILITY=avx2`), and oneDNN's ISA cap (`ONEDNN_MAX_CPU_ISA`). bfloat16 is native
    only when all three allow it, so an AVX2 emulation on an AVX-512 machine is taken at its
    word."""

    flags: frozenset[str] = field(repr=False)
    capability: str
    onednn_max_isa: str | None = None

    @property
    def bf16_flag(self) -> bool:
        return "avx512_bf16" in self.flags or "amx_bf16" in self.flags

    @property
    def native_bf16(self) -> bool:
        """Whether bfloat16 matmuls run natively here (flag, dispatch and oneDNN cap agree)."""
        isa = (self.onednn_max_isa or "ALL").upper()
        return (
            self.bf16_flag
            and self.capability.upper().startswith("AVX512")
            and any(k in isa for k in _ONEDNN_BF16_ISAS)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "flags": sorted(f for f in self.flags if f in CPU_FLAGS_OF_INTEREST),
            "torch_capability": self.capability,
            "onednn_max_cpu_isa": self.onednn_max_isa,
            "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
            "native_bf16": self.native_bf16,
        }


def cpu_flags() -> frozenset[str]:
    """The flags of this machine's first CPU in /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_info() -> CpuInfo:
    """This machine's `CpuInfo`, as torch and oneDNN are set up in this process."""
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # very old torch: trust the flags alone
        capability = "AVX512"
    return CpuInfo(cpu_flags(), capability, os.environ.get("ONEDNN_MAX_CPU_ISA") or None)


def cpu_has_fast_bf16(cpu: CpuInfo | None = None) -> bool:
    """Whether this CPU multiplies bfloat16 natively (avx512_bf16 or AMX, and neither torch's
    dispatch nor oneDNN capped below it)."""
    return (cpu or cpu_info()).native_bf16


@dataclass(frozen=True)
class DecodeChoice:
    """The merged decode path a runtime serves with: `dtype` is the merged copy's dtype (norms,
    attention, residuals); for "int8", `act_dtype` is the dtype the int8 linears multiply in
    (inputs cast to it, outputs cast back to `dtype`); `reason` says why."""

    path: MergedPath
    dtype: torch.dtype
    reason: str
    act_dtype: torch.dtype | None = None
    fused: bool = True  # int8 only: decoder layers fused (`adapters.fused`)

    @property
    def label(self) -> str:
        """float32, bfloat16, int8+bfloat16 (int8 weights x bfloat16 activations)."""
        name = str(self.dtype).removeprefix("torch.")
        if self.path != "int8":
            return name
        return f"int8+{str(self.act_dtype or self.dtype).removeprefix('torch.')}"

    def to_dict(self) -> dict[str, Any]:
        out = {
            "path": self.path,
            "label": self.label,
            "model_dtype": str(self.dtype).removeprefix("torch."),
            "reason": self.reason,
        }
        if self.path == "int8":
            from adapters.quantize import WIDE_ROWS

            # prompts and forced runs multiply with the copy's float weights (adapters.quantize)
            out["float_passes_from_rows"] = WIDE_ROWS
            out["fused_layers"] = self.fused
        return out


def choose_decode_path(
    device_type: str,
    cpu: CpuInfo | None = None,
    env: Mapping[str, str] | None = None,
    int8_available: Callable[[torch.dtype], bool] | None = None,
) -> DecodeChoice:
    """The fastest merged path that keeps quality on this device, or the one
    `RMN_DECODE_PATH` (fp32 | bf16 | int8; unset or "auto": choose) names.

    cuda: bfloat16. CPU with native bfloat16: bfloat16 (~2x float32, top-1 agreement 0.98).
    Other CPUs (AVX2): a float32 model whose linears are int8 weight-only multiplying in
    bfloat16 (a quarter of float32's weight bytes per token), or float32 where torch lacks the
    kernel. bfloat16, not float32, in the int8 matmul: torch 2.13's `_weight_int8pack_mm` is
    vectorised for bfloat16 activations only; with float32 (or float16) it measured 2-10x
    slower than the float32 linear it replaces, on AVX-512 and under AVX2 emulation alike."""
    from adapters.quantize import int8_weight_only_available

    env = os.environ if env is None else env
    raw = env.get(DECODE_PATH_ENV, "")
    wanted = raw.strip().lower()
    if wanted not in ("", "auto", *MERGED_PATHS):
        raise DecodePathError(
            f"{DECODE_PATH_ENV} must be one of fp32, bf16, int8 (or unset / auto to choose "
            f"from the CPU), not {raw!r}",
            value=raw,
            allowed=[*MERGED_PATHS, "auto"],
        )
    by_env = f"{DECODE_PATH_ENV}={wanted}"
    if wanted == "fp32":
        return DecodeChoice("fp32", torch.float32, by_env)
    if device_type == "cuda":
        if wanted == "int8":
            raise DecodePathError(
                f"{DECODE_PATH_ENV}=int8 is a CPU path (int8 weight-only linears); on cuda use "
                "bf16 or fp32",
                value=raw,
            )
        return DecodeChoice("bf16", torch.bfloat16, by_env if wanted else "cuda")
    if device_type != "cpu":
        dtype = torch.bfloat16 if wanted == "bf16" else torch.float32
        return DecodeChoice("bf16" if wanted == "bf16" else "fp32", dtype,
                            by_env if wanted else f"{device_type}: float32")  # fmt: skip
    cpu = cpu or cpu_info()
    native = cpu.native_bf16
    if wanted == "bf16":
        note = "" if native else " (bf16 is not native on this CPU: slow)"
        return DecodeChoice("bf16", torch.bfloat16, by_env + note)
    if not wanted and native:
        return DecodeChoice("bf16", torch.bfloat16, "CPU has native bf16 (avx512_bf16/amx)")
    model = torch.bfloat16 if native else torch.float32
    why = by_env if wanted else f"no native bf16 (torch capability {cpu.capability})"
    if (int8_available or int8_weight_only_available)(torch.bfloat16):
        fused = _fused_layers(env)
        return DecodeChoice("int8", model, why, act_dtype=torch.bfloat16, fused=fused)
    return DecodeChoice(
        "fp32", torch.float32, f"{why}; torch has no _weight_int8pack_mm kernel: float32"
    )


def _fused_layers(env: Mapping[str, str]) -> bool:
    """`RMN_FUSED_LAYERS`: unset, 1 or on fuses the int8 path's decoder layers; 0 or off
    serves them as transformers builds them (the same numbers, more ops per token)."""
    raw = env.get(FUSED_LAYERS_ENV, "")
    value = raw.strip().lower()
    if value in ("", "1", "on"):
        return True
    if value in ("0", "off"):
        return False
    raise DecodePathError(
        f"{FUSED_LAYERS_ENV} must be 1 or 0 (on or off), not {raw!r}", value=raw
    )


# A chosen token's log-probability is kept at or above this (a token the model scored -inf,
# or NaN, is still a finite number in every record).
LOGPROB_FLOOR = -50.0


def _finite_logprob(value: float) -> float:
    return value if math.isfinite(value) and value > LOGPROB_FLOOR else LOGPROB_FLOOR


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
        # Where rows' prompts start with a kept prefix, only the rest is computed (`ForwardLoop`);
        # None: every prompt computed whole.
        self.prefixes: PrefixCache | None = PrefixCache()
        self._newlines: frozenset[int] | None = None

    @property
    def newlines(self) -> frozenset[int]:
        """The tokenizer's line-ending tokens, where a batch's shared head is cut."""
        if self._newlines is None:
            self._newlines = newline_ids(self.tokenizer)
        return self._newlines

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
        self.logprobs: list[list[float]] = [[] for _ in range(n)]
        self.finish = ["length"] * n
        self.done = [False] * n
        self.seen = [0] * n  # tokens in the cache per row (its next position)
        self.mask = torch.zeros((n, 0), dtype=torch.long)
        self.cache: Any = None

    def run(self, compositions: list[str], label: str) -> list[Row]:
        with torch.inference_mode():
            starts = self._reuse_prefixes()
        chunks = [
            list(j.prompt[starts[i] :]) + self._take_forced(i) for i, j in enumerate(self.batch)
        ]
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
                            compositions[i], label, forced=self.forced[i],
                            logprobs=self.logprobs[i]))  # fmt: skip
        return rows

    def _left(self, i: int) -> int:
        return self.batch[i].max_new_tokens - len(self.tokens[i])

    def _reuse_prefixes(self) -> list[int]:
        """Each row's prompt tokens already in the cache: its kept prefix (its worked examples,
        or the head the batch shares: `adapters.prefixes.prefix_lengths`), left-padded to the
        longest in the batch and masked like any padding; 0 for a row without one. Not on the
        LoRA path's per-row adapters (a prefix is kept per model)."""
        prefixes = self.d.prefixes
        if prefixes is None or "adapter_names" in self.extra:
            return [0] * len(self.batch)
        lengths = prefix_lengths(self.batch, self.d.newlines)
        if not any(lengths):
            return lengths
        kvs = [
            prefixes.get(self.model, tuple(j.prompt[:n]), lambda j=j, n=n: self._prefix_kv(j, n))
            if n
            else None
            for j, n in zip(self.batch, lengths, strict=True)
        ]
        width = max(lengths)
        from transformers import DynamicCache

        self.cache = DynamicCache()
        layers = len(next(kv for kv in kvs if kv is not None))
        for layer in range(layers):
            keys, values = [], []
            for kv, n in zip(kvs, lengths, strict=True):
                k, v = kv[layer] if kv is not None else self._empty(kvs, layer)
                pad = (0, 0, width - n, 0)  # left padding along the sequence
                keys.append(torch.nn.functional.pad(k[:, :, :n], pad))
                values.append(torch.nn.functional.pad(v[:, :, :n], pad))
            self.cache.update(torch.cat(keys), torch.cat(values), layer)
        self.mask = torch.zeros((len(self.batch), width), dtype=torch.long)
        for i, n in enumerate(lengths):
            if n:
                self.mask[i, width - n :] = 1
            self.seen[i] = n
        return lengths

    @staticmethod
    def _empty(kvs: list[list[LayerKV] | None], layer: int) -> LayerKV:
        k, v = next(kv for kv in kvs if kv is not None)[layer]
        return k[:, :, :0], v[:, :, :0]

    def _prefix_kv(self, job: Job, n: int) -> list[LayerKV]:
        """The keys and values of `job`'s first `n` prompt tokens, one pass on their own."""
        from transformers import DynamicCache

        cache = DynamicCache()
        self.model(
            input_ids=torch.tensor([job.prompt[:n]], device=self.d.device),
            attention_mask=torch.ones((1, n), dtype=torch.long, device=self.d.device),
            position_ids=torch.arange(n, device=self.d.device)[None],
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
            **self.extra,
        )
        return [(layer.keys, layer.values) for layer in cache.layers]

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
        free = torch.log_softmax(logits.float(), dim=-1)  # before the grammar's mask
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
            self.logprobs[i].append(_finite_logprob(float(free[i, token])))
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
