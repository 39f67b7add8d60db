"""Retrieval quality and speed on a fixed question set.

Each question names its scope and the corpus section(s) that answer it. A question counts as
found at rank r when the r-th retrieved chunk comes from one of those sections.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from tools.errors import RMNError
from tools.rag.index import PolicyIndex, get_index

QUESTIONS_FILE = Path(__file__).with_name("eval_questions.jsonl")


class QuestionSetError(RMNError):
    """A question file that cannot be read, with the line of the first bad question."""

    kind = "question_set_error"


class EvalQuestion(BaseModel):
    id: str
    question: str
    retailers: list[str]
    tenant: str | None = None
    expected: list[str] = Field(
        min_length=1, description="answering sections, relative to the corpus: path#anchor"
    )


class EvalMiss(BaseModel):
    id: str
    question: str
    expected: list[str]
    retrieved: list[str] = Field(description="top 3 sources, relative to the corpus")


class EvalReport(BaseModel):
    questions: int
    recall_at_1: float
    recall_at_3: float
    mrr: float = Field(description="mean reciprocal rank over the top `depth` chunks")
    depth: int
    latency_ms_p50: float = Field(description="warm search: embed the question and query")
    latency_ms_p95: float
    misses_at_3: list[EvalMiss]
    questions_file: str


def load_questions(path: Path | None = None) -> list[EvalQuestion]:
    path = path or QUESTIONS_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise QuestionSetError(f"cannot read question set {path}: {err}", file=str(path)) from None
    questions = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            questions.append(EvalQuestion.model_validate_json(line))
        except ValidationError as err:
            problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            raise QuestionSetError(
                f"{path}:{n}: bad question: {problem}", file=str(path), line=n
            ) from None
    return questions


def _relative(source: str) -> str:
    # Sources start with the corpus folder's name; questions are written relative to it.
    return source.split("/", 1)[1] if "/" in source else source


def evaluate(
    index: PolicyIndex | None = None,
    questions: list[EvalQuestion] | None = None,
    *,
    depth: int = 10,
    warmup: int = 3,
    questions_file: Path | None = None,
) -> EvalReport:
    """Recall@1, recall@3, MRR and warm latency percentiles over the question set."""
    index = index or get_index()
    questions = questions if questions is not None else load_questions(questions_file)
    index.ensure()
    for q in questions[:warmup]:  # first queries pay for lazy initialisation, not retrieval
        index.search(q.question, retailers=q.retailers, tenant=q.tenant, k=depth)

    ranks: list[int | None] = []
    latencies: list[float] = []
    misses: list[EvalMiss] = []
    for q in questions:
        started = time.perf_counter()
        result = index.search(q.question, retailers=q.retailers, tenant=q.tenant, k=depth)
        latencies.append((time.perf_counter() - started) * 1000)
        got = [_relative(c.source) for c in result.chunks]
        rank = next((i + 1 for i, s in enumerate(got) if s in q.expected), None)
        ranks.append(rank)
        if rank is None or rank > 3:
            misses.append(
                EvalMiss(id=q.id, question=q.question, expected=q.expected, retrieved=got[:3])
            )

    n = len(questions) or 1

    def recall(k: int) -> float:
        return round(sum(1 for r in ranks if r is not None and r <= k) / n, 4)

    return EvalReport(
        questions=len(questions),
        recall_at_1=recall(1),
        recall_at_3=recall(3),
        mrr=round(sum(1 / r for r in ranks if r is not None) / n, 4),
        depth=depth,
        latency_ms_p50=round(float(np.percentile(latencies, 50)), 2) if latencies else 0.0,
        latency_ms_p95=round(float(np.percentile(latencies, 95)), 2) if latencies else 0.0,
        misses_at_3=misses,
        questions_file=str(questions_file or QUESTIONS_FILE),
    )
