"""Structured output: JSON that follows a schema, by construction.

A JSON schema (or a pydantic model's schema) is compiled by llguidance into a grammar; at every
decode step a logits processor asks the grammar which tokens may come next and masks the others
to -inf, so the model can only write JSON the schema allows (keys, enums, bounds, lengths), and
only end when the object is complete. The text is then validated with pydantic, which also runs
checks a grammar cannot express (custom validators); a failure there gets one repair turn, and a
second failure is reported as a fallback so the caller's rule-based path can take over.

Whitespace between JSON tokens is turned off: a small model otherwise spends tokens (or loops)
on indentation, and compact JSON is fewer decode steps.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from tools.errors import RMNError

if TYPE_CHECKING:
    import torch
    from llguidance import LLMatcher, LLTokenizer
    from transformers import PreTrainedTokenizerBase

    from adapters.runtime import Generation

SchemaLike = type[BaseModel] | dict[str, Any]

JSON_OPTIONS: dict[str, Any] = {"whitespace_flexible": False, "lenient": True}


class SchemaUnsupportedError(RMNError):
    """A schema the grammar compiler cannot turn into a grammar."""

    kind = "schema_unsupported"


class StructuredOutputError(RMNError):
    """No schema-valid answer after the repair turn; `generation` has the text and the reason,
    so a rule-based fallback can take over and say why."""

    kind = "structured_output_invalid"

    def __init__(self, message: str, generation: Generation | None = None, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.generation = generation


class OutputInvalid(ValueError):
    """The answer's text fails the schema; the message is short enough to put in a repair turn."""


@dataclass(frozen=True)
class OutputSchema:
    """A schema to decode against, from a pydantic model (answers parse to that model) or a
    plain JSON schema (answers parse to dicts)."""

    json_schema: dict[str, Any]
    model: type[BaseModel] | None = None
    key: str = field(default="", compare=False)

    @property
    def grammar_schema(self) -> dict[str, Any]:
        """The schema the grammar follows: objects are closed (no keys beyond `properties`)
        unless the schema says otherwise. JSON Schema allows extra keys by default, and a
        small model given that freedom writes invented keys until it runs out of tokens."""
        return _closed(self.json_schema)

    @classmethod
    def of(cls, schema: SchemaLike | OutputSchema) -> OutputSchema:
        if isinstance(schema, OutputSchema):
            return schema
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            js = schema.model_json_schema()
            return cls(js, schema, _key(js))
        if isinstance(schema, dict):
            return cls(schema, None, _key(schema))
        raise SchemaUnsupportedError(
            f"a schema is a pydantic model class or a JSON-schema dict, not {type(schema).__name__}"
        )

    @property
    def name(self) -> str:
        return self.model.__name__ if self.model else str(self.json_schema.get("title", "json"))

    def validate(self, text: str) -> Any:
        """The parsed answer, or `OutputInvalid` saying what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            cut = "the answer stopped before the JSON was complete" if text.strip() else "empty"
            raise OutputInvalid(f"not complete JSON ({cut}: {err.msg})") from None
        if self.model is not None:
            try:
                return self.model.model_validate(data)
            except ValidationError as err:
                raise OutputInvalid(_pydantic_problems(err)) from None
        _validate_json_schema(data, self.json_schema)
        return data


def _closed(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    for named in ("properties", "$defs", "definitions", "patternProperties"):
        if isinstance(schema.get(named), dict):
            out[named] = {k: _closed(v) for k, v in schema[named].items()}
    if "properties" in schema and "additionalProperties" not in schema:
        out["additionalProperties"] = False
    return out


def _key(schema: dict[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, separators=(",", ":"))


def _pydantic_problems(err: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in err.errors()[:5]
    )


def _validate_json_schema(data: Any, schema: dict[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.validate(data, schema)
    except jsonschema.ValidationError as err:
        where = ".".join(str(p) for p in err.absolute_path) or "value"
        raise OutputInvalid(f"{where}: {err.message}") from None


class GrammarCompiler:
    """Compiled grammars for one tokenizer, cached per schema. Each decode gets its own matcher
    (a copy of the cached one), as a matcher holds the state of one answer."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._ll_tokenizer: LLTokenizer | None = None
        self._templates: dict[str, LLMatcher] = {}
        self._lock = threading.Lock()

    @property
    def ll_tokenizer(self) -> LLTokenizer:
        if self._ll_tokenizer is None:
            import llguidance.hf

            # About 0.4 s for SmolLM2's vocabulary, so built once.
            self._ll_tokenizer = llguidance.hf.from_tokenizer(self._tokenizer)
        return self._ll_tokenizer

    def matcher(self, schema: OutputSchema) -> LLMatcher:
        from llguidance import LLMatcher

        with self._lock:
            template = self._templates.get(schema.key)
            if template is None:
                try:
                    grammar = LLMatcher.grammar_from_json_schema(
                        schema.grammar_schema, overrides=JSON_OPTIONS
                    )
                except ValueError as err:
                    raise SchemaUnsupportedError(
                        f"schema {schema.name} cannot be compiled: {err}"
                    ) from None
                template = LLMatcher(self.ll_tokenizer, grammar, log_level=0)
                if template.is_error():
                    raise SchemaUnsupportedError(
                        f"schema {schema.name} cannot be compiled: {template.get_error()}"
                    )
                self._templates[schema.key] = template
            return template.deep_copy()


class GrammarLogitsProcessor:
    """A transformers logits processor for a batch: row i follows `matchers[i]` (None: free
    text). Rows that have ended (EOS or padding after it) are left alone."""

    def __init__(
        self, matchers: list[LLMatcher | None], eos_token_id: int, grammar_vocab: int
    ) -> None:
        import torch

        self.matchers = matchers
        self.eos = eos_token_id
        self.grammar_vocab = grammar_vocab
        self.ended = [m is None for m in matchers]
        self.failed: list[str | None] = [None] * len(matchers)
        self._started = False
        self._shifts = torch.arange(32, dtype=torch.int32)
        self._bitmask: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        import torch

        if self._started:
            last = input_ids[:, -1].tolist()
            for i, matcher in enumerate(self.matchers):
                if matcher is None or self.ended[i]:
                    continue
                if last[i] == self.eos:
                    self.ended[i] = True
                elif not matcher.consume_token(last[i]):
                    # Cannot happen while masks are applied. Should a grammar bug make it
                    # happen, the row stops being masked and validation reports its text.
                    self.failed[i] = matcher.get_error() or "token rejected by the grammar"
                    self.ended[i] = True
        self._started = True
        rows = [i for i, done in enumerate(self.ended) if not done]
        if not rows:
            return scores
        vocab = scores.shape[-1]
        if self._bitmask is None:
            words = (self.grammar_vocab + 31) // 32
            self._bitmask = torch.full((len(self.matchers), words), -1, dtype=torch.int32)
        for i in rows:
            matcher = self.matchers[i]
            assert matcher is not None
            if matcher.is_stopped():  # the object is complete: only EOS may follow
                self._bitmask[i].zero_()
                bit = 1 << (self.eos % 32)
                self._bitmask[i, self.eos // 32] = bit - (1 << 32) if bit >= 1 << 31 else bit
            else:
                # llguidance.torch's helper does the same, but importing it sets up torch.compile.
                row = self._bitmask[i]
                matcher.unsafe_compute_mask_ptr(row.data_ptr(), row.numel() * row.element_size())
        idx = torch.tensor(rows)
        words = self._bitmask[idx]
        allowed = ((words.unsqueeze(-1) >> self._shifts) & 1).reshape(len(rows), -1)
        allowed = allowed[:, : min(vocab, self.grammar_vocab)]
        if allowed.shape[1] < vocab:  # ids beyond the tokenizer's vocabulary are never allowed
            pad = torch.zeros(len(rows), vocab - allowed.shape[1], dtype=allowed.dtype)
            allowed = torch.cat([allowed, pad], dim=1)
        blocked = allowed.to(scores.device) == 0
        scores[idx.to(scores.device)] = scores[idx.to(scores.device)].masked_fill(
            blocked, float("-inf")
        )
        return scores
