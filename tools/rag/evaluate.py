"""Retrieval quality and speed on fixed question sets.

Each question names its scope and the corpus section(s) that answer it. A question counts as
found at rank r when the r-th retrieved chunk comes from one of those sections.

Two sets are bundled: `curated` (eval_questions.jsonl, 84 questions written with the corpus
open) and `users` (eval_questions_users.jsonl, 102 questions written the way users ask -
paraphrased, informal, often without the corpus's words - before the hybrid retrieval was
built or tuned).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from tools.errors import RMNError
from tools.rag.index import PolicyIndex, get_index
from tools.rag.models import DEFAULT_MODE, RetrievalMode

QUESTIONS_FILE = Path(__file__).with_name("eval_questions.jsonl")
USER_QUESTIONS_FILE = Path(__file__).with_name("eval_questions_users.jsonl")
QUESTION_SETS: dict[str, Path] = {"curated": QUESTIONS_FILE, "users": USER_QUESTIONS_FILE}
# What retrieval must reach on every bundled set (issue #15).
TARGET_RECALL_AT_3 = 0.98
TARGET_LATENCY_MS_P50 = 30.0


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
    name: str = Field(description="question set: curated, users, or the file's stem")
    mode: RetrievalMode
    questions: int
    recall_at_1: float
    recall_at_3: float
    mrr: float = Field(description="mean reciprocal rank over the top `depth` chunks")
    depth: int
    latency_ms_p50: float = Field(description="warm search: embed the question and rank")
    latency_ms_p95: float
    embed_ms_p50: float = Field(description="median time spent embedding the question")
    cpu_ms_p50: float = Field(
        description="median CPU time of the searching thread: the latency on an idle core, "
        "which wall-clock latency exceeds when other work shares the CPU"
    )
    misses_at_3: list[EvalMiss]
    questions_file: str


class EvalSuite(BaseModel):
    mode: RetrievalMode
    sets: list[EvalReport]
    target_recall_at_3: float = TARGET_RECALL_AT_3
    target_latency_ms_p50: float = TARGET_LATENCY_MS_P50
    targets_met: bool = Field(description="every set reaches both targets")


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
    mode: RetrievalMode = DEFAULT_MODE,
    name: str | None = None,
) -> EvalReport:
    """Recall@1, recall@3, MRR and warm latency percentiles over one question set."""
    index = index or get_index()
    questions = questions if questions is not None else load_questions(questions_file)
    index.ensure()
    for q in questions[:warmup]:  # first queries pay for lazy initialisation, not retrieval
        index.search(q.question, retailers=q.retailers, tenant=q.tenant, k=depth, mode=mode)

    ranks: list[int | None] = []
    latencies: list[float] = []
    embed_ms: list[float] = []
    cpu_ms: list[float] = []
    misses: list[EvalMiss] = []
    for q in questions:
        started = time.perf_counter()
        cpu_started = time.thread_time()
        result = index.search(
            q.question, retailers=q.retailers, tenant=q.tenant, k=depth, mode=mode
        )
        latencies.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.thread_time() - cpu_started) * 1000)
        embed_ms.append(result.embed_ms)
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

    path = questions_file or QUESTIONS_FILE
    bundled = {f.resolve(): set_name for set_name, f in QUESTION_SETS.items()}
    return EvalReport(
        name=name or bundled.get(path.resolve(), path.stem),
        mode=mode,
        questions=len(questions),
        recall_at_1=recall(1),
        recall_at_3=recall(3),
        mrr=round(sum(1 / r for r in ranks if r is not None) / n, 4),
        depth=depth,
        latency_ms_p50=round(float(np.percentile(latencies, 50)), 2) if latencies else 0.0,
        latency_ms_p95=round(float(np.percentile(latencies, 95)), 2) if latencies else 0.0,
        embed_ms_p50=round(float(np.percentile(embed_ms, 50)), 2) if embed_ms else 0.0,
        cpu_ms_p50=round(float(np.percentile(cpu_ms, 50)), 2) if cpu_ms else 0.0,
        misses_at_3=misses,
        questions_file=str(path),
    )


def evaluate_sets(
    index: PolicyIndex | None = None,
    questions_files: list[Path] | None = None,
    *,
    mode: RetrievalMode = DEFAULT_MODE,
) -> EvalSuite:
    """Every bundled question set (or the files given), one report each, in one mode."""
    index = index or get_index()
    files = questions_files or list(QUESTION_SETS.values())
    reports = [evaluate(index, questions_file=f, mode=mode) for f in files]
    met = all(
        r.recall_at_3 >= TARGET_RECALL_AT_3 and r.latency_ms_p50 < TARGET_LATENCY_MS_P50
        for r in reports
    )
    return EvalSuite(mode=mode, sets=reports, targets_met=met)
