"""Structured output: JSON that follows a schema, by construction.

A JSON schema (or a pydantic model's schema) is compiled by llguidance into a grammar; at every
decode step a logits processor asks the grammar which tokens may come next and masks the others
to -inf, so the model can only write JSON the schema allows (keys, enums, bounds, lengths), and
only end when the object is complete. The text is then validated with pydantic, which also runs
checks a grammar cannot express (custom validators); a failure there gets one repair turn, and a
second failure is reported as a fallback so the caller's rule-based path can take over.

Whitespace between JSON tokens is turned off: a small model otherwise spends tokens (or loops)
on indentation, and compact JSON is fewer decode steps.

Plain sentences have a grammar of their own (`SentenceGrammar`): words without digits, and where
a number appears only one of the caller's number strings, written exactly as given, with each
sentence ending on a citation marker `[1]`..`[n]` when passages were shown. A small model can
then not invent a number or cite a passage it was not shown; the caller still verifies the text
(`tools.plan.numbers`), so a grammar bug cannot ship an invented number either. With a
`lexicon`, words too come from a list: the lexicon's and those of what the model was shown.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from adapters.generation import Generation
from tools.errors import RMNError

if TYPE_CHECKING:
    import torch
    from llguidance import LLMatcher, LLTokenizer
    from transformers import PreTrainedTokenizerBase


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
class SentenceGrammar:
    """Short plain sentences: words of letters (no digits), each number one of `numbers`
    written exactly as given, each sentence ending with a citation marker `[1]`..`[citations]`
    when there are passages to cite, `min_sentences`..`max_sentences` sentences of
    `min_words`..`max_words` items (a word or a number) each. `banned_words` (e.g. spelled-out
    numbers) are never a word, in any case. With `openings`, there is one sentence per opening
    and sentence i starts with `openings[i]`, written by the caller (plain words and any of
    `numbers`): they fix what each sentence is about and state its numbers, and the model
    continues it. With `free_numbers=False` the model's own words carry no number at all (the
    openings hold them). The answer parses to its text."""

    numbers: tuple[str, ...] = ()
    citations: int = 0
    min_sentences: int = 1
    max_sentences: int = 2
    min_words: int = 5
    max_words: int = 24
    banned_words: frozenset[str] = frozenset()
    # No word may start with one of these: `tools.plan.vocabulary.name_joins` gives "betag"
    # for "Beta Grocers", so that the model cannot glue a name it was shown into one word.
    banned_prefixes: frozenset[str] = frozenset()
    openings: tuple[str, ...] = ()
    free_numbers: bool = True
    # With a lexicon, a word the model writes is one of these words or of `known_words` (the
    # words of what it was shown), as written, instead of any run of letters, and a sentence
    # does not end on a function word (`DANGLING_WORDS`): a small model then cannot write a
    # non-word ("theollsund", "xtraordinary") or stray off the plan ("icing").
    # `tools.plan.vocabulary.GENERAL_WORDS` is the one the plan's texts use.
    # Sentence starts come from `openings`; without them, a first word is capitalised.
    lexicon: frozenset[str] = frozenset()
    known_words: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 1 <= self.min_sentences <= self.max_sentences:
            raise SchemaUnsupportedError("sentences: need 1 <= min_sentences <= max_sentences")
        if not 2 <= self.min_words <= self.max_words:
            raise SchemaUnsupportedError("sentences: need 2 <= min_words <= max_words")
        if self.citations < 0:
            raise SchemaUnsupportedError("sentences: citations must be 0 or more")
        bad = [n for n in self.numbers if not n or '"' in n or "\\" in n or n != n.strip()]
        if bad:
            raise SchemaUnsupportedError(f"sentences: number strings cannot be used: {bad}")
        junk = [
            w
            for w in self.lexicon | self.known_words
            if not re.fullmatch(r"[A-Za-z][A-Za-z'-]*", w)
        ]
        if junk:
            raise SchemaUnsupportedError(f"sentences: lexicon words must be letters: {junk[:5]}")
        odd = [o for o in self.openings if not self._plain_opening(o)]
        if odd:
            raise SchemaUnsupportedError(
                f"sentences: openings must be plain words and the given numbers: {odd}"
            )

    def _plain_opening(self, opening: str) -> bool:
        if not re.fullmatch(r"[A-Z][^\s\[\]\\\"]*(?: [^\s\[\]\\\"]+)*", opening):
            return False
        for token in opening.split(" "):
            bare = token.rstrip(",")
            if any(c.isdigit() for c in bare):
                if bare not in self.numbers:
                    return False
            elif not re.fullmatch(r"[A-Za-z'-]+", bare):
                return False
        return True

    def lark(self) -> str:
        """The grammar in llguidance's Lark dialect."""
        free = self.numbers if self.free_numbers else ()
        items = "WORD | NUM" if free else "WORD"
        cites = " | ".join(f'" [{i}]."' for i in range(1, self.citations + 1))
        tail = f'((" " | ", ") item){{{self.min_words - 1},{self.max_words - 1}}} END'
        if self.lexicon:  # the last word is no dangling function word ("the fit of the.")
            most = f"{{{self.min_words - 2},{self.max_words - 2}}}"
            tail = f'((" " | ", ") item){most} (" " | ", ") last END'
        rest = f"[A-Za-z'-]{{0,{WORD_CHARS - 1}}}"
        word = f"/[A-Za-z]{rest}/{self._not_banned()}"
        first = f"/[A-Z]{rest}/{self._not_banned()}"
        if self.lexicon:  # banned words are left out of the lexicon instead (`_lexicon_lines`)
            word, first = "LEX", "CAPLEX"
        if self.openings:
            named = [f"opened{i}" for i in range(len(self.openings))]
            lines = ["start: " + ' " " '.join(named)]
            lines += [
                f"{n}: {json.dumps(o)} {tail}" for n, o in zip(named, self.openings, strict=True)
            ]
        else:
            more = f"{{{self.min_sentences - 1},{self.max_sentences - 1}}}"
            lines = [f'start: sentence (" " sentence){more}', f"sentence: FIRST {tail}"]
            lines.append(f"FIRST: {first}")
        lines += [
            f"item: {items}",
            f"WORD: {word}",
            f"END: {cites}" if cites else 'END: "."',
        ]
        if self.lexicon:
            lines.append("last: LAST | NUM" if free else "last: LAST")
            lines += self._lexicon_lines(capitals=not self.openings)
        if free:
            ordered = sorted(set(free), key=lambda n: (-len(n), n))
            lines.append("NUM: " + " | ".join(json.dumps(n) for n in ordered))
        return "\n".join(lines) + "\n"

    def _lexicon_lines(self, capitals: bool) -> list[str]:
        """LEX: the lexicon's words and `known_words`; LAST: those a sentence may end on;
        CAPLEX (a sentence's first word, without openings): the words capitalised."""
        banned = frozenset(w.lower() for w in self.banned_words)
        starts = tuple(sorted(p.lower() for p in self.banned_prefixes))
        shared = _alternatives(self.lexicon, banned, starts, capitals)
        known = _alternatives(self.known_words - self.lexicon, banned, starts, capitals)
        pairs = zip(shared, known, strict=True)
        ending, dangling, caps = (" | ".join(filter(None, pair)) for pair in pairs)
        if not ending:
            raise SchemaUnsupportedError("sentences: no lexicon word a sentence may end on")
        lines = [f"LAST: {ending}"]
        lines += [f"DANGLING: {dangling}", "LEX: LAST | DANGLING"] if dangling else ["LEX: LAST"]
        if capitals:
            lines.append(f"CAPLEX: {caps}")
        return lines

    def _not_banned(self) -> str:
        # Any case: each letter as a class ("[tT][wW][oO]"), as the regexes have no flags.
        out = ""
        if self.banned_words:
            words = "|".join(_any_case(w) for w in sorted(self.banned_words))
            # Nor as a part of a hyphenated word ("twenty-five").
            out += " & ~/(([A-Za-z'-]*-)?(" + words + ")(-[A-Za-z'-]*)?)/"
        if self.banned_prefixes:
            starts = "|".join(_any_case(w) for w in sorted(self.banned_prefixes))
            out += " & ~/((" + starts + ")[A-Za-z'-]*)/"
        return out

    def validate(self, text: str) -> str:
        """The text cut to its last whole sentence (a token limit may stop it mid-sentence);
        `OutputInvalid` when no whole sentence is left."""
        text = text.strip()
        if not text.endswith("."):
            cut = text.rfind(". ")
            text = text[: cut + 1] if cut >= 0 else ""
        if not text:
            raise OutputInvalid("the text stopped before its first sentence was complete")
        return text


@lru_cache(maxsize=16)
def _alternatives(
    words: frozenset[str], banned: frozenset[str], starts: tuple[str, ...], capitals: bool
) -> tuple[str, str, str]:
    """`words` as Lark alternatives: those a sentence may end on, the dangling ones, and all
    capitalised (empty unless `capitals`). Banned words and words with a banned start are
    left out here: intersecting a lexeme of 27k words (a lexicon tried first) with the banned
    patterns (`& ~/.../`) stopped llguidance's lexer ("too many expressions constructed").
    Cached, as the lexicon is the same for every plan."""
    kept = [
        w
        for w in sorted(words)
        if len(w) <= WORD_CHARS
        and not {w.lower(), *w.lower().split("-")} & banned
        and not (starts and w.lower().startswith(starts))
    ]
    ending = " | ".join(json.dumps(w) for w in kept if w.lower() not in DANGLING_WORDS)
    dangling = " | ".join(json.dumps(w) for w in kept if w.lower() in DANGLING_WORDS)
    upper = sorted({w[0].upper() + w[1:] for w in kept}) if capitals else []
    return ending, dangling, " | ".join(json.dumps(w) for w in upper)


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in word)


# Longest word the sentence grammar admits (a longer one is a loop or a pasted identifier).
WORD_CHARS = 16
# Words a sentence written under a lexicon cannot end on: SmolLM2-135M, stopped by the word
# limit, ended "... check the fit of the.", "... test the plan against." and "... although.".
DANGLING_WORDS = frozenset([
    "a", "an", "the", "of", "to", "for", "with", "from", "by", "at", "in", "into", "onto", "as",
    "than", "that", "which", "whose", "and", "or", "but", "nor", "if", "because", "while", "so",
    "such", "its", "their", "our", "your", "this", "these", "those", "is", "are", "was", "were",
    "be", "been", "being", "should", "could", "would", "will", "can", "cannot", "may", "might",
    "must", "shall", "do", "does", "did", "has", "have", "had", "not", "no", "very", "each",
    "every", "some", "any", "both", "either", "neither", "about", "above", "across", "after",
    "against", "although", "before", "behind", "below", "between", "beyond", "during", "like",
    "near", "per", "since", "through", "toward", "towards", "under", "unless", "until", "upon",
    "via", "whether", "within", "without"
])  # fmt: skip


@dataclass(frozen=True)
class OutputSchema:
    """A schema to decode against, from a pydantic model (answers parse to that model) or a
    plain JSON schema (answers parse to dicts).

    `decode_schema`, when given, is what the grammar follows instead of `json_schema`: a
    stricter schema (every answer it allows, `json_schema` allows too) for what the shown
    schema cannot say simply, such as one field's choice narrowing another's. The prompt keeps
    showing `json_schema`, the layout an adapter was trained on; answers are validated against
    it too. Build one with `OutputSchema.narrowed`."""

    json_schema: dict[str, Any]
    model: type[BaseModel] | None = None
    key: str = field(default="", compare=False)
    sentences: SentenceGrammar | None = None
    decode_schema: dict[str, Any] | None = field(default=None, kw_only=True)

    @property
    def is_json(self) -> bool:
        return self.sentences is None

    @property
    def repairable(self) -> bool:
        """Whether a failed answer gets a repair turn: JSON does (the error names the field);
        sentences cut off by the token limit do not (the caller's template is faster and as
        good as a second try of a 135M model)."""
        return self.sentences is None

    def grammar(self) -> str:
        """The llguidance grammar this output decodes under."""
        from llguidance import LLMatcher

        if self.sentences is not None:
            return LLMatcher.grammar_from_lark(self.sentences.lark())
        return LLMatcher.grammar_from_json_schema(self.grammar_schema, overrides=JSON_OPTIONS)

    @property
    def grammar_schema(self) -> dict[str, Any]:
        """The schema the grammar follows: objects are closed (no keys beyond `properties`)
        unless the schema says otherwise. JSON Schema allows extra keys by default, and a
        small model given that freedom writes invented keys until it runs out of tokens."""
        return _closed(self.decode_schema or self.json_schema)

    @classmethod
    def narrowed(cls, shown: dict[str, Any], decode: dict[str, Any] | None) -> OutputSchema:
        """A JSON schema shown and validated as `shown`, decoded under `decode` (None: under
        `shown` itself)."""
        key = _key(shown) if decode is None else _key({"shown": shown, "decode": decode})
        return cls(shown, None, key, decode_schema=decode)

    @classmethod
    def of(cls, schema: SchemaLike | OutputSchema) -> OutputSchema:
        if isinstance(schema, OutputSchema):
            return schema
        if isinstance(schema, SentenceGrammar):
            # A hash, not the text: a grammar with a lexicon is some 200 KB of Lark.
            digest = hashlib.sha256(schema.lark().encode()).hexdigest()
            return cls({"title": "sentences"}, None, "lark:" + digest, schema)
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
        if self.sentences is not None:
            return self.sentences.validate(text)
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


# What a call may decode under: a pydantic model class, a JSON-schema dict, sentences, or an
# `OutputSchema` built already (one with a narrowed grammar).
SchemaLike = type[BaseModel] | dict[str, Any] | SentenceGrammar | OutputSchema


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

    # Sentence grammars differ per plan (their numbers and openings): keep the most recent
    # ones only, so a long-running server does not grow without bound.
    CACHE_SIZE = 64

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._ll_tokenizer: LLTokenizer | None = None
        self._templates: OrderedDict[str, LLMatcher] = OrderedDict()
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
                    grammar = schema.grammar()
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
                while len(self._templates) > self.CACHE_SIZE:
                    self._templates.popitem(last=False)
            self._templates.move_to_end(schema.key)
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
        if self._started:
            last = input_ids[:, -1].tolist()
            for i in range(len(self.matchers)):
                self.advance(i, [last[i]])
        self._started = True
        return self.mask(scores)

    def advance(self, i: int, tokens: list[int]) -> None:
        """Row i's matcher takes `tokens` (EOS ends the row)."""
        matcher = self.matchers[i]
        if matcher is None or self.ended[i]:
            return
        for token in tokens:
            if token == self.eos:
                self.ended[i] = True
                return
            if not matcher.consume_token(token):
                # Cannot happen while masks are applied. Should a grammar bug make it
                # happen, the row stops being masked and validation reports its text.
                self.failed[i] = matcher.get_error() or "token rejected by the grammar"
                self.ended[i] = True
                return

    def forced(self, i: int, limit: int) -> list[int]:
        """The tokens row i's grammar allows no choice on from here (at most `limit`), taken
        by its matcher: they can be fed in one forward pass instead of one each."""
        matcher = self.matchers[i]
        if matcher is None or self.ended[i] or limit <= 0 or matcher.is_stopped():
            return []
        tokens = list(matcher.compute_ff_tokens())[:limit]
        if tokens and not matcher.consume_tokens(tokens):
            self.failed[i] = matcher.get_error() or "forced tokens rejected by the grammar"
            self.ended[i] = True
            return []
        return tokens

    def complete(self, i: int) -> bool:
        """Row i's answer is complete: only EOS may follow."""
        matcher = self.matchers[i]
        return matcher is not None and not self.ended[i] and matcher.is_stopped()

    def mask(self, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Each grammar row's scores with the tokens its grammar forbids at -inf."""
        import torch

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
