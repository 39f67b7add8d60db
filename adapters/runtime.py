"""One shared base model, specialised per call by up to three LoRA adapters.

A call names an `AdapterSet` (retailer, brand, task) and a tenant. The registry checks each
adapter's base fingerprint and the tenant's right to a brand adapter; the runtime loads each
adapter once and combines the set (`adapters.composition`: the base alone, the one adapter, or
an exact `cat` composition of two or three).

Two decode paths (the `decode` option):

* "lora": the shared base plus the LoRA modules. Concurrent calls with different adapter sets
  are batched into one `generate` with one adapter per row (`adapter_names`), about 2x the
  throughput of running them one by one, with the same tokens.
* "merged" (the default of `Runtime.load`): per adapter set, a copy of the weights with the
  composition added in (W + sum of B·A) in `merged_dtype`, kept in its own LRU cache. No LoRA
  work per token, and bfloat16 halves the bytes read per token: on CPUs with avx512_bf16 this
  is the fastest exact-composition path (~2x the float32 LoRA path; top-1 token agreement with
  float32 ~98 %). Calls are batched with others of the same adapter set. int8 dynamic
  quantisation was measured and rejected: SmolLM2's activation outliers drop top-1 agreement to
  about 40 %.

The merged path's precision is chosen from the device (`adapters.decoding.choose_decode_path`,
`merged_dtype="auto"`): cuda and CPUs with native bfloat16 (avx512_bf16 / AMX) serve bfloat16;
other CPUs (AVX2) serve a float32 copy whose linears are int8 weight-only (`adapters.quantize`,
multiplying in bfloat16, the one activation dtype torch's kernel vectorises), a quarter of
float32's weight bytes per token, or float32 where torch lacks the kernel.
`RMN_DECODE_PATH=fp32|bf16|int8` overrides the choice; `decode_choice` (and
`stats()["decode_path"]`) records what was chosen and why.

Calls from any number of threads share batches (`adapters.batching`); a call with a JSON schema
decodes under its grammar and gets one repair turn (`adapters.structured`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from adapters import prompts
from adapters.base import (
    BASE_MODEL_ID,
    QuantizationUnavailableError,
    base_fingerprint,
    load_base_model,
    load_base_model_4bit,
    quiet_progress,
)
from adapters.batching import BatchQueue, Job, Row
from adapters.composition import AdapterLoadError, LoraBank, MergedBank
from adapters.decoding import (
    BatchDecoder,
    CpuInfo,
    DecodeChoice,
    DecodePathError,
    MergedPath,
    choose_decode_path,
    cpu_info,
)
from adapters.fused import int8_decode_copy
from adapters.generation import Generation
from adapters.registry import AdapterEntry, AdapterRegistry, AdapterSet
from adapters.structured import (
    GrammarCompiler,
    OutputInvalid,
    OutputSchema,
    SchemaLike,
    StructuredOutputError,
)
from tools.errors import RMNError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

FAST_FORWARD_ENV = "RMN_FAST_FORWARD"
# Merged copies kept (one per adapter set). A plan composes up to 8 sets (task/planning; the
# base for the rationale; per retailer, retailer + task/creative for copy and the retailer alone
# for governance's second opinion), and the four retailers make 10. With 4 kept, every plan
# rebuilt 4-8 copies: 22 builds over 4 plans of `rmn bench e2e`'s briefs, 0.14 s each on
# bf16 and 0.30 s on int8 under the AVX2 emulation (about 1.5 s a plan there), and the
# base copy's kept prompt prefixes went with it (`adapters.prefixes.PrefixCache`).
MERGED_CACHE_SIZE = 10
# Each merged copy holds the adapted weights once more: 10 kept cost about 0.8 GB more peak
# memory than 4 over those plans (3.3 -> 4.1 GB on bf16, 3.6 -> 4.3 GB on int8). On a small
# machine `RMN_MERGED_COPIES=4` keeps fewer, at the rebuild cost above.
MERGED_COPIES_ENV = "RMN_MERGED_COPIES"

Message = dict[str, str]
DecodePath = Literal["lora", "merged"]
ROLES = frozenset({"system", "user", "assistant"})
MAX_TEMPERATURE = 2.0

__all__ = [
    "AdapterSet",
    "Generation",
    "Request",
    "Runtime",
    "QuantizationUnavailableError",
    "RuntimeConfigError",
    "DecodePathError",
    "AdapterLoadError",
    "StructuredOutputError",
]


class RuntimeConfigError(RMNError):
    kind = "runtime_config"


def merged_copies_from_env() -> int:
    """`RMN_MERGED_COPIES` as a count of merged copies to keep (`MERGED_CACHE_SIZE` unset)."""
    raw = os.environ.get(MERGED_COPIES_ENV, "").strip()
    if not raw:
        return MERGED_CACHE_SIZE
    if not raw.isdigit() or int(raw) < 1:
        raise RuntimeConfigError(
            f"{MERGED_COPIES_ENV} must be a whole number of merged copies, 1 or more; got {raw!r}"
        )
    return int(raw)


@dataclass
class Request:
    """One call for `Runtime.generate_many`."""

    messages: Sequence[Message]
    adapters: AdapterSet = field(default_factory=AdapterSet)
    tenant: str | None = None
    max_new_tokens: int = 256
    json_schema: SchemaLike | None = None
    # 0: greedy. Above 0: sampled at this temperature from the row's own generator seeded
    # with `seed`, so a row's tokens do not depend on what it was batched with.
    temperature: float = 0.0
    seed: int | None = None


def check_request(request: Request) -> None:
    """A call's limits and messages, checked before any decoding (on every backend)."""
    if request.max_new_tokens < 1:
        raise RuntimeConfigError(f"max_new_tokens must be >= 1, not {request.max_new_tokens}")
    if not 0.0 <= request.temperature <= MAX_TEMPERATURE:
        raise RuntimeConfigError(
            f"temperature must be between 0 and {MAX_TEMPERATURE}, not {request.temperature}"
        )
    for message in request.messages:
        if message.get("role") not in ROLES or not isinstance(message.get("content"), str):
            raise RuntimeConfigError(
                "a message is {'role': system|user|assistant, 'content': str}, "
                f"not {message!r}"
            )
    if not request.messages:
        raise RuntimeConfigError("a call needs at least one message")


class _Int8MergedBank(MergedBank):
    """Merged copies (in `dtype`) whose linear layers are then made int8 weight-only,
    multiplying in `act_dtype`, once per copy; the base's shared tensors are left as they are.
    Passes of `WIDE_ROWS` rows or more (prompts, runs of forced tokens) multiply with the
    copy's float weights, where the int8 kernel is the slower one (`adapters.quantize`); the
    decoder layers are fused unless `fuse` is off (`adapters.fused`: the same products in
    fewer, wider calls)."""

    def __init__(
        self,
        lora: LoraBank,
        dtype: torch.dtype,
        act_dtype: torch.dtype,
        cache_size: int,
        fuse: bool = True,
    ) -> None:
        super().__init__(lora, dtype, cache_size)
        self.act_dtype = act_dtype
        self.fuse = fuse
        self._quantized: set[int] = set()

    def get(self, entries: Sequence[AdapterEntry]) -> PreTrainedModel:
        model = super().get(entries)
        if id(model) not in self._quantized:
            started = time.perf_counter()
            int8_decode_copy(model, self.act_dtype, fuse=self.fuse)
            self.build_seconds[-1] += time.perf_counter() - started
            # ids of evicted copies may be reused: keep only those of copies still cached
            self._quantized = {id(m) for m in self.models.values()}
        return model


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


@dataclass
class _Plan:
    messages: list[Message]
    entries: tuple[AdapterEntry, ...]
    schema: OutputSchema | None


class Runtime:
    """The shared base model serving generation calls with per-call adapters."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        base_fingerprint: str,
        registry: AdapterRegistry | None = None,
        decode: DecodePath = "lora",
        merged_dtype: torch.dtype | Literal["auto"] = "auto",
        cache_size: int = 4,
        merged_cache_size: int = MERGED_CACHE_SIZE,
        max_batch: int = 4,
        batch_window_s: float = 0.005,
        model_name: str | None = None,
        fast_forward: bool = True,
    ) -> None:
        if decode not in ("lora", "merged"):
            raise RuntimeConfigError(f"decode is 'lora' or 'merged', not {decode!r}")
        if cache_size < 1 or merged_cache_size < 1 or max_batch < 1:
            raise RuntimeConfigError("cache sizes and max_batch must be at least 1")
        if decode == "merged" and getattr(model, "is_loaded_in_4bit", False):
            raise RuntimeConfigError(
                "a 4-bit base cannot take merged weights: use decode='lora' (QLoRA)"
            )
        model.eval()
        self.model_name = model_name or str(getattr(model.config, "_name_or_path", "") or "llm")
        self.tokenizer = tokenizer
        self.base_fingerprint = base_fingerprint
        self.registry = registry if registry is not None else AdapterRegistry()
        self.decode = decode
        self.device = next(model.parameters()).device
        self.base_dtype = next(model.parameters()).dtype
        self.cpu: CpuInfo | None = cpu_info() if self.device.type == "cpu" else None
        if merged_dtype == "auto":
            choice = choose_decode_path(self.device.type, self.cpu)
        else:
            # float16 and others count as the float path; the label carries the dtype
            path: MergedPath = "bf16" if merged_dtype == torch.bfloat16 else "fp32"
            choice = DecodeChoice(path, merged_dtype, "merged_dtype argument")
        # The merged path chosen and why (see the module docstring); `merged_dtype` is its
        # copies' dtype (for int8, the dtype around the int8 linears).
        self.decode_choice: DecodeChoice = choice
        self.merged_dtype: torch.dtype = choice.dtype
        self._lora = LoraBank(model, cache_size)
        self._merged: MergedBank
        if choice.path == "int8":
            act = choice.act_dtype or choice.dtype
            self._merged = _Int8MergedBank(
                self._lora, choice.dtype, act, merged_cache_size, fuse=choice.fused
            )
        else:
            self._merged = MergedBank(self._lora, choice.dtype, merged_cache_size)
        self._grammars = GrammarCompiler(tokenizer)
        self.eos_token_id: int = tokenizer.eos_token_id
        self.pad_token_id: int = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_token_id
        )
        # Grammar-forced tokens in the next pass, not one pass each (`adapters.decoding`).
        self._decoder = BatchDecoder(
            tokenizer, self._grammars, self.device, self.eos_token_id, self.pad_token_id,
            fast_forward=fast_forward,
        )
        self._queue = BatchQueue(self._decode, self._admits, max_batch, batch_window_s)

    @classmethod
    def load(
        cls,
        *,
        root: Path | None = None,
        registry: AdapterRegistry | None = None,
        dtype: torch.dtype | None = None,
        load_in_4bit: bool = False,
        device: str | None = None,
        decode: DecodePath = "merged",
        **options: Any,
    ) -> Runtime:
        """The runtime on the real base model (SmolLM2-135M-Instruct) and the adapters under
        `root` (default: the repository's `adapters/`). `load_in_4bit` (bitsandbytes NF4, for
        QLoRA) needs CUDA; 4-bit bases serve through the LoRA path. `RMN_FAST_FORWARD=0` turns
        off feeding grammar-forced tokens together (for comparing; `fast_forward=` wins);
        `RMN_MERGED_COPIES` sets how many merged copies are kept (`merged_cache_size=` wins)."""
        options.setdefault("fast_forward", os.environ.get(FAST_FORWARD_ENV, "1").strip() != "0")
        options.setdefault("merged_cache_size", merged_copies_from_env())
        if load_in_4bit:
            model, tokenizer = load_base_model_4bit()
            decode = "lora"
        else:
            with quiet_progress():
                model, tokenizer = load_base_model(dtype, progress=False)
            if device:
                model.to(device)
        return cls(
            model,
            tokenizer,
            base_fingerprint=base_fingerprint(),
            model_name=BASE_MODEL_ID,
            registry=registry if registry is not None else AdapterRegistry(root),
            decode=decode,
            **options,
        )

    @property
    def fast_forward(self) -> bool:
        """Whether grammar-forced tokens are fed together (`adapters.decoding.ForwardLoop`)."""
        return self._decoder.fast_forward

    @fast_forward.setter
    def fast_forward(self, on: bool) -> None:
        self._decoder.fast_forward = bool(on)

    # -- public API ---------------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[Message],
        adapters: AdapterSet | None = None,
        tenant: str | None = None,
        *,
        max_new_tokens: int = 256,
        json_schema: SchemaLike | None = None,
        on_invalid: Literal["return", "raise"] = "return",
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Generation:
        """Generation for one conversation, greedy unless `temperature` > 0 (then seeded by
        `seed`). With `json_schema` (a pydantic model class, a JSON-schema dict or a
        `SentenceGrammar`) the answer is decoded under its grammar and validated; `parsed`
        holds the result. A failed JSON validation gets one repair turn (`repaired`); a second
        failure (or a failed sentence answer) sets `fallback` and `error` (or raises
        `StructuredOutputError` when `on_invalid="raise"`)."""
        request = Request(
            messages,
            adapters or AdapterSet(),
            tenant,
            max_new_tokens,
            json_schema,
            temperature=temperature,
            seed=seed,
        )
        return self.generate_many([request], on_invalid=on_invalid)[0]

    def generate_many(
        self,
        requests: Sequence[Request],
        *,
        on_invalid: Literal["return", "raise"] = "return",
    ) -> list[Generation]:
        """Several calls at once, batched together (the same outputs as one by one)."""
        started = time.perf_counter()
        plans = [self._plan(r) for r in requests]
        jobs = [self._job(p, r) for p, r in zip(plans, requests, strict=True)]
        self._queue.run(jobs)
        results = [self._finish(p, j, started) for p, j in zip(plans, jobs, strict=True)]
        repairs = [
            i
            for i, g in enumerate(results)
            if g.error and plans[i].schema is not None and plans[i].schema.repairable
        ]
        if repairs:
            retry = [self._job(plans[i], requests[i], repair_of=results[i]) for i in repairs]
            self._queue.run(retry)
            for i, job in zip(repairs, retry, strict=True):
                results[i] = self._finish(plans[i], job, started, first=results[i])
        for plan, gen in zip(plans, results, strict=True):
            gen.seconds = time.perf_counter() - started
            if gen.fallback and on_invalid == "raise":
                name = plan.schema.name if plan.schema else "JSON"
                raise StructuredOutputError(
                    f"no valid {name} answer after a repair turn: {gen.error}", generation=gen
                )
        return results

    def prepare(
        self, adapters: AdapterSet | None = None, tenant: str | None = None
    ) -> dict[str, Any]:
        """Load and compose an adapter set ahead of its first call; returns what was built."""
        entries = tuple(
            self.registry.resolve(adapters or AdapterSet(), tenant, self.base_fingerprint)
        )
        with self._queue.exclusive():
            started = time.perf_counter()
            if self.decode == "merged":
                self._merged.get(entries)
                composition = "merged" if entries else "base"
            else:
                _, composition = self._lora.adapter_name(entries, set())
        return {
            "adapters": [e.name for e in entries],
            "composition": composition,
            "seconds": time.perf_counter() - started,
        }

    def adapter_name(self, adapters: AdapterSet | None = None, tenant: str | None = None) -> str:
        """The PEFT adapter name rows of this set decode with on the LoRA path (loading and
        composing it if needed): `__base__`, an adapter's own name, or its `cat` composition."""
        entries = tuple(
            self.registry.resolve(adapters or AdapterSet(), tenant, self.base_fingerprint)
        )
        with self._queue.exclusive():
            return self._lora.adapter_name(entries, set())[0]

    def render_prompt(
        self,
        messages: Sequence[Message],
        adapters: AdapterSet | None = None,
        json_schema: SchemaLike | None = None,
    ) -> str:
        """The exact prompt text a call would decode from (system message and schema line
        included); no access check."""
        request = Request(messages, adapters or AdapterSet(), None, 1, json_schema)
        plan = self._plan(request, check_access=False)
        return self.tokenizer.apply_chat_template(
            plan.messages, tokenize=False, add_generation_prompt=True
        )

    def stats(self) -> dict[str, Any]:
        return {
            "decode": self.decode_label(),
            "decode_path": self.decode_choice.to_dict(),
            "cpu": self.cpu.to_dict() if self.cpu is not None else None,
            "adapters_loaded": sorted(self._lora.loaded),
            "compositions": [list(k) for k in self._lora.compositions],
            "composition_builds": self._lora.builds,
            "composition_evictions": self._lora.evictions,
            "merged_models": [list(k) for k in self._merged.models],
            "merged_builds": self._merged.builds,
            "merged_evictions": self._merged.evictions,
            **(self._decoder.prefixes.stats() if self._decoder.prefixes is not None else {}),
        }

    def decode_label(self) -> str:
        """What rows record: merged/bfloat16, merged/int8+float32, lora/float32, ..."""
        if self.decode == "merged":
            return f"merged/{self.decode_choice.label}"
        return f"lora/{str(self.base_dtype).removeprefix('torch.')}"

    @property
    def model(self) -> Any:
        """The shared model (a PeftModel once an adapter is loaded)."""
        return self._lora.model

    # -- planning a call --------------------------------------------------------------------

    def _plan(self, request: Request, check_access: bool = True) -> _Plan:
        check_request(request)
        entries = (
            tuple(self.registry.resolve(request.adapters, request.tenant, self.base_fingerprint))
            if check_access
            else ()
        )
        schema = OutputSchema.of(request.json_schema) if request.json_schema is not None else None
        if schema is not None:
            self._grammars.matcher(schema)  # a schema that cannot compile fails its own call only
        json_schema = schema.json_schema if schema is not None and schema.is_json else None
        messages = prompts.call_messages(request.messages, request.adapters.task, json_schema)
        return _Plan(messages, entries, schema)

    def _job(self, plan: _Plan, request: Request, repair_of: Generation | None = None) -> Job:
        messages = plan.messages
        if repair_of is not None:
            messages = [
                *messages,
                {"role": "assistant", "content": repair_of.text},
                {"role": "user", "content": prompts.repair_instruction(repair_of.error or "")},
            ]
        text = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        prompt = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return Job(
            prompt,
            plan.entries,
            request.max_new_tokens,
            plan.schema,
            temperature=request.temperature,
            seed=request.seed,
            prefix_len=self._context_len(messages, prompt) if repair_of is None else 0,
        )

    def _context_len(self, messages: Sequence[Message], prompt: list[int]) -> int:
        """How many of `prompt`'s tokens are the turns before its last user message, where
        there are worked examples among them (a system message, then a user and an assistant
        turn at least): they repeat from call to call. 0 otherwise."""
        if len(messages) < 4:
            return 0
        head = self.tokenizer.apply_chat_template(list(messages[:-1]), tokenize=False)
        ids = self.tokenizer(head, add_special_tokens=False)["input_ids"]
        return len(ids) if prompt[: len(ids)] == ids else 0

    def _finish(
        self, plan: _Plan, job: Job, started: float, first: Generation | None = None
    ) -> Generation:
        if job.error is not None:
            raise job.error
        row = job.row
        assert row is not None
        gen = Generation(
            text=row.text,
            adapters_active=[e.name for e in plan.entries],
            composition=row.composition,
            decode=row.decode,
            tokens=len(row.tokens) + (first.tokens if first else 0),
            forced_tokens=row.forced + (first.forced_tokens if first else 0),
            prompt_tokens=len(job.prompt) if first is None else first.prompt_tokens,
            seconds=time.perf_counter() - started,
            batch_size=row.batch_size,
            finish_reason=row.finish_reason,
            chosen_logprob=_mean(row.logprobs),
            messages=[dict(m) for m in plan.messages],
        )
        if plan.schema is None:
            return gen
        try:
            gen.parsed = plan.schema.validate(row.text)
            gen.repaired = first is not None
        except OutputInvalid as err:
            gen.error = str(err)
            gen.fallback = first is not None or not plan.schema.repairable
        return gen

    # -- batching ---------------------------------------------------------------------------

    def _admits(self, batch: list[Job], keys: set[tuple[str, ...]], job: Job) -> bool:
        """Whether a queued job may join the batch: rows of one adapter set on the merged path;
        on the LoRA path any sets, as long as their compositions fit in the cache together."""
        if self.decode == "merged":
            return not batch or job.key == batch[0].key
        return (
            job.key in keys
            or len(job.key) <= 1
            or sum(len(k) > 1 for k in keys) < self._lora.cache_size
        )

    def _decode(self, batch: list[Job]) -> list[Row]:
        """One batch on the model its adapter sets need: the merged copy for the set, or the
        shared LoRA model with each row's adapter or composition."""
        label = self.decode_label()
        if self.decode == "merged":
            model = self._merged.get(batch[0].entries)
            composition = "merged" if batch[0].entries else "base"
            return self._decoder.decode(model, batch, [composition] * len(batch), label)
        pinned: set[str] = set()
        names: list[str] = []
        compositions = []
        for job in batch:
            name, kind = self._lora.adapter_name(job.entries, pinned)
            pinned.add(name)
            names.append(name)
            compositions.append(kind)
        adapter_names = names if self._lora.wrapped else None
        return self._decoder.decode(self._lora.model, batch, compositions, label, adapter_names)
