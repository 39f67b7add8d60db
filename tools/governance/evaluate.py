"""Precision and recall of the PII scanner and the injection detector on labelled sets.

Each task has a development set the rules were tuned on and a smaller holdout set written
afterwards and never tuned on; the holdout is the honest estimate.

PII (`data/pii_labelled.jsonl`, `data/pii_holdout.jsonl`): one text per line with its PII spans
(`{"id", "kind", "text", "spans": [{"type", "start", "end", "text"}]}`). Labelling rule: a span
is PII by what it is, not whose it is (a support line's phone number is a PHONE); product,
order, tracking, campaign, store and zip numbers, prices, dates that are not birth dates and
version strings are not PII. A number written as an SSN is an SSN even when it is a published
sample number ("SSN 078-05-1120": pii-221, relabelled for issue #12: a false alarm on a sample
number is cheaper than a miss). A finding counts as an exact match when type, start and end
agree, and as an overlap match when the type agrees and the spans share a character (each
label matches at most one finding).

The baseline is Presidio's default recognizer registry for English with the same no-op NLP
engine (no spaCy model, so its context words cannot boost scores), mapped to our types, at
the default score threshold of 0 and at 0.5. Its email check is pointed at the bundled
public-suffix snapshot, as ours is, since the default would try to download the list.

Injection (`data/injection_labelled.jsonl`, `data/injection_holdout.jsonl`):
`{"id", "where", "injection": bool, "text", "tenant"?}`; a text counts as flagged when
`detect_injection` returns any finding for it.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.predefined_recognizers import EmailRecognizer
from pydantic import BaseModel, Field, ValidationError

from tools.governance.errors import GovernanceInputError
from tools.governance.injection import detect_injection
from tools.governance.pii import (
    PII_TYPES,
    find_pii,
    no_op_nlp_engine,
    offline_suffix_check,
    retail_analyzer,
)

DATA_DIR = Path(__file__).parent / "data"
PII_SET = DATA_DIR / "pii_labelled.jsonl"
INJECTION_SET = DATA_DIR / "injection_labelled.jsonl"
# Written after the rules were settled and never tuned on: the honest estimate.
PII_HOLDOUT = DATA_DIR / "pii_holdout.jsonl"
INJECTION_HOLDOUT = DATA_DIR / "injection_holdout.jsonl"

# Presidio entity -> our type, for the types both detect.
PRESIDIO_TYPES = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "US_SSN": "SSN",
    "CREDIT_CARD": "CREDIT_CARD",
    "IP_ADDRESS": "IP_ADDRESS",
    "IBAN_CODE": "IBAN",
}
COMMON_TYPES = tuple(PRESIDIO_TYPES.values())
MAX_ERRORS = 25


class Span(BaseModel):
    type: str
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str = ""


class PiiExample(BaseModel):
    id: str
    kind: str = ""
    text: str
    spans: list[Span] = Field(default_factory=list)


class InjectionExample(BaseModel):
    id: str
    where: str
    injection: bool
    text: str
    tenant: str | None = None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise GovernanceInputError(f"labelled set not found: {path}", path=str(path))
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise GovernanceInputError(f"{path}:{n}: not JSON: {err.msg}") from None
    return rows


def load_pii_set(path: Path = PII_SET) -> list[PiiExample]:
    """Read and check a labelled PII set: every span must quote its text."""
    examples = []
    for n, row in enumerate(_read_jsonl(path), 1):
        try:
            ex = PiiExample.model_validate(row)
        except ValidationError as err:
            raise GovernanceInputError(f"{path}:{n}: {err.errors()[0]['msg']}") from None
        for s in ex.spans:
            if ex.text[s.start : s.end] != s.text or s.type not in PII_TYPES:
                raise GovernanceInputError(
                    f"{path}:{n}: span {s.type} {s.start}-{s.end} does not quote {s.text!r} "
                    f"or its type is not one of {', '.join(PII_TYPES)}"
                )
        examples.append(ex)
    return examples


def load_injection_set(path: Path = INJECTION_SET) -> list[InjectionExample]:
    out = []
    for n, row in enumerate(_read_jsonl(path), 1):
        try:
            out.append(InjectionExample.model_validate(row))
        except ValidationError as err:
            raise GovernanceInputError(f"{path}:{n}: {err.errors()[0]['msg']}") from None
    return out


# --- the baseline -----------------------------------------------------------------------------


class _OfflineEmailRecognizer(EmailRecognizer):
    def validate_result(self, pattern_text: str) -> bool:
        return offline_suffix_check(pattern_text)


@lru_cache(maxsize=1)
def presidio_default_analyzer() -> AnalyzerEngine:
    """Presidio's default English registry on the no-op NLP engine."""
    nlp = no_op_nlp_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    registry.recognizers = [
        _OfflineEmailRecognizer() if isinstance(r, EmailRecognizer) else r
        for r in registry.recognizers
    ]
    return AnalyzerEngine(registry=registry, nlp_engine=nlp)


def presidio_default_spans(text: str, threshold: float = 0.0) -> list[Span]:
    results = presidio_default_analyzer().analyze(
        text=text, language="en", entities=list(PRESIDIO_TYPES), score_threshold=threshold
    )
    return [
        Span(
            type=PRESIDIO_TYPES[r.entity_type], start=r.start, end=r.end, text=text[r.start : r.end]
        )
        for r in results
        if r.entity_type in PRESIDIO_TYPES
    ]


def ours_spans(text: str) -> list[Span]:
    return [Span(type=f.type, start=f.start, end=f.end, text=f.text) for f in find_pii(text)]


# --- scoring ----------------------------------------------------------------------------------


def _prf(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(f1, 4),
    }


def _match(gold: list[Span], found: list[Span], exact: bool) -> tuple[set[int], set[int]]:
    """Indexes of matched gold spans and matched findings (one-to-one)."""
    used_gold: set[int] = set()
    used_found: set[int] = set()
    for j, f in enumerate(found):
        for i, g in enumerate(gold):
            if i in used_gold or g.type != f.type:
                continue
            hit = (
                (g.start, g.end) == (f.start, f.end)
                if exact
                else g.start < f.end and f.start < g.end
            )
            if hit:
                used_gold.add(i)
                used_found.add(j)
                break
    return used_gold, used_found


def score_spans(
    examples: list[PiiExample],
    detect: Callable[[str], list[Span]],
    types: tuple[str, ...] = PII_TYPES,
) -> dict[str, Any]:
    """Per-type and overall precision/recall/F1 of `detect`, exact and overlap, over `types`."""
    counts = {
        mode: {t: {"tp": 0, "fp": 0, "fn": 0} for t in types} for mode in ("exact", "overlap")
    }
    errors: list[dict[str, Any]] = []
    seconds: list[float] = []
    for ex in examples:
        started = time.perf_counter()
        found = [s for s in detect(ex.text) if s.type in types]
        seconds.append(time.perf_counter() - started)
        gold = [s for s in ex.spans if s.type in types]
        for mode in ("exact", "overlap"):
            hit_gold, hit_found = _match(gold, found, exact=mode == "exact")
            c = counts[mode]
            for i, g in enumerate(gold):
                c[g.type]["tp" if i in hit_gold else "fn"] += 1
            for j, f in enumerate(found):
                if j not in hit_found:
                    c[f.type]["fp"] += 1
            if mode == "overlap":
                errors += [
                    {"id": ex.id, "error": "missed", "type": g.type, "text": g.text}
                    for i, g in enumerate(gold)
                    if i not in hit_gold
                ]
                errors += [
                    {"id": ex.id, "error": "false_positive", "type": f.type, "text": f.text}
                    for j, f in enumerate(found)
                    if j not in hit_found
                ]
    result: dict[str, Any] = {}
    for mode, by_type in counts.items():
        totals = {k: sum(c[k] for c in by_type.values()) for k in ("tp", "fp", "fn")}
        result[mode] = {
            "overall": _prf(**totals),
            "per_type": {t: _prf(**c) for t, c in by_type.items()},
        }
    result["errors"] = errors[:MAX_ERRORS]
    result["error_count"] = len(errors)
    result["ms_per_text_p50"] = round(1000 * statistics.median(seconds), 3) if seconds else 0.0
    return result


def evaluate_pii(path: Path = PII_SET) -> dict[str, Any]:
    """Our scanner and Presidio's defaults on a labelled set.

    `ours` covers every type we detect; `ours_common`, `presidio_default` (score threshold 0)
    and `presidio_threshold_0.5` cover the types both detect, so they compare like with like.
    """
    examples = load_pii_set(path)
    gold_counts: dict[str, int] = {}
    for ex in examples:
        for s in ex.spans:
            gold_counts[s.type] = gold_counts.get(s.type, 0) + 1
    return {
        "set": str(path),
        "texts": len(examples),
        "texts_without_pii": sum(1 for ex in examples if not ex.spans),
        "labelled_spans": gold_counts,
        "ours": score_spans(examples, ours_spans),
        "ours_common": score_spans(examples, ours_spans, COMMON_TYPES),
        "presidio_default": score_spans(examples, presidio_default_spans, COMMON_TYPES),
        "presidio_threshold_0.5": score_spans(
            examples, lambda t: presidio_default_spans(t, 0.5), COMMON_TYPES
        ),
    }


def evaluate_injection(path: Path = INJECTION_SET) -> dict[str, Any]:
    """Text-level precision and recall of `detect_injection`, overall and by source."""
    examples = load_injection_set(path)
    by_source: dict[str, dict[str, int]] = {}
    total = {"tp": 0, "fp": 0, "fn": 0}
    errors = []
    seconds = []
    for ex in examples:
        started = time.perf_counter()
        flagged = bool(detect_injection(ex.text, ex.where, ex.tenant))
        seconds.append(time.perf_counter() - started)
        source = ex.where.split("[")[0].split(".")[0]
        c = by_source.setdefault(source, {"tp": 0, "fp": 0, "fn": 0})
        outcome = (
            "tp"
            if flagged and ex.injection
            else "fp"
            if flagged
            else "fn"
            if ex.injection
            else None
        )
        if outcome:
            c[outcome] += 1
            total[outcome] += 1
        if outcome in ("fp", "fn"):
            errors.append({"id": ex.id, "where": ex.where, "error": outcome, "text": ex.text})
    return {
        "set": str(path),
        "texts": len(examples),
        "injections": sum(ex.injection for ex in examples),
        "overall": _prf(**total),
        "by_source": {s: _prf(**c) for s, c in by_source.items()},
        "errors": errors[:MAX_ERRORS],
        "ms_per_text_p50": round(1000 * statistics.median(seconds), 3) if seconds else 0.0,
    }


def bench_governance() -> dict[str, Any]:
    """Both evaluations on the development and holdout sets and the time to build the analyzer
    (importing Presidio, about 6 s of CPU, comes before it), as JSON-ready data."""
    started = time.perf_counter()
    retail_analyzer()
    warmup = time.perf_counter() - started
    return {
        "analyzer_build_s": round(warmup, 3),
        "pii": {"development": evaluate_pii(PII_SET), "holdout": evaluate_pii(PII_HOLDOUT)},
        "injection": {
            "development": evaluate_injection(INJECTION_SET),
            "holdout": evaluate_injection(INJECTION_HOLDOUT),
        },
    }
