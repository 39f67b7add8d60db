"""Reviewers' ratings of what the model wrote, kept for training: each copy variant and each
rationale text rated (thumbs up or down, a 1-5 score, a corrected text), and why a plan was
edited or rejected. Every rating is stored with the exact model input it rates (the prompt
messages), the output as the plan holds it, the adapters that wrote it and the reviewer.

    store = FeedbackStore(feedback_path(data_dir))   # <data>/feedback.sqlite
    item = rated_item(plan, FeedbackIn(target="copy", index=0, thumbs="down",
                                       corrected="Crisp and salty\\nMade for sharing."))
    store.add(tenant="acme", thread_key=plan.thread_id, thread_id="...", item=item,
              rating=rating, reviewer="key-0123456789ab")
    dpo_pairs(store.list("acme"))     # TRL preference rows: prompt, chosen, rejected
    sft_rows(store.list("acme"))      # TRL conversational rows: messages
    feedback_stats(store.list())      # counts, agreement, worst-rated retailers and tasks
    store.delete_thread(key, tenant="acme")  # erased with its thread

Tenant-scoped: every read and delete names the tenant. Text written by a template (copy
fallback, template rationale) carries no prompt: it is rated and counted but never exported
as a model preference.
"""

from __future__ import annotations

import builtins
import json
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.errors import RMNError
from tools.plan.plan import Plan
from tools.storage import Migration, Row
from tools.storage.stores import location, open_store

FEEDBACK_FILE = "feedback.sqlite"
STORE = "feedback"
MAX_TEXT = 4000
Target = Literal["copy", "rationale", "plan"]
Message = dict[str, str]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    thread_key TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    task TEXT NOT NULL,
    item TEXT NOT NULL,
    retailer TEXT,
    prompt TEXT,
    output TEXT NOT NULL,
    adapters TEXT NOT NULL,
    written_by TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    thumbs TEXT,
    score INTEGER,
    corrected TEXT,
    reason TEXT,
    decision TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_by_tenant ON feedback (tenant, id);
CREATE INDEX IF NOT EXISTS feedback_by_thread ON feedback (tenant, thread_key);
"""
# Version 1 is the schema files written before versioned migrations had: on such a file every
# statement is a no-op and version 1 is recorded, its rows untouched.
MIGRATIONS = (Migration(1, "feedback", _SCHEMA),)


class FeedbackError(RMNError):
    kind = "invalid_feedback"


def feedback_path(data_dir: Path) -> Path:
    """Where ratings are kept: `<data>/feedback.sqlite`, next to the decision store."""
    return Path(data_dir) / FEEDBACK_FILE


class FeedbackIn(BaseModel):
    """One rating as a reviewer sends it (HTTP body, review-page form)."""

    model_config = ConfigDict(extra="forbid")

    target: Target = Field(description="copy: a copy variant; rationale: a rationale text; "
                           "plan: why the plan was edited or rejected")  # fmt: skip
    index: int | None = Field(None, ge=0, description="the copy variant's position (0-based)")
    kind: Literal["allocation", "experiment"] | None = Field(
        None, description="which rationale text"
    )
    thumbs: Literal["up", "down"] | None = None
    score: int | None = Field(None, ge=1, le=5)
    corrected: str | None = Field(
        None, max_length=MAX_TEXT, description="the text as it should have been"
    )
    reason: str | None = Field(None, max_length=MAX_TEXT, description="why, in words")
    decision: Literal["edited", "rejected"] | None = Field(
        None, description="for a plan: what the reviewer did to it"
    )

    @model_validator(mode="after")
    def _complete(self) -> FeedbackIn:
        if self.target == "copy" and self.index is None:
            raise ValueError("rating a copy variant needs its index")
        if self.target == "rationale" and self.kind is None:
            raise ValueError("rating a rationale text needs its kind (allocation or experiment)")
        if self.target == "plan":
            if not (self.reason or "").strip() or self.decision is None:
                raise ValueError("feedback on a plan needs the decision (edited or rejected) "
                                 "and a reason")  # fmt: skip
        elif self.thumbs is None and self.score is None and not (self.corrected or "").strip():
            raise ValueError("a rating needs thumbs, a score (1-5) or a corrected text")
        return self


class RatedItem(BaseModel):
    """What a rating rates, read off the plan: the model's input and output and who wrote it."""

    task: Target
    item: str = Field(description="copy 1, rationale allocation, plan")
    retailer: str | None = None
    prompt: list[Message] | None = Field(
        None, description="the exact messages the model was given; None: written by a template"
    )
    output: str
    adapters: list[str] = Field(default_factory=list)
    written_by: str


class FeedbackRecord(BaseModel):
    """One stored rating."""

    id: int
    tenant: str
    thread_id: str
    task: Target
    item: str
    retailer: str | None
    prompt: list[Message] | None
    output: str
    adapters: list[str]
    written_by: str
    reviewer: str
    thumbs: Literal["up", "down"] | None
    score: int | None
    corrected: str | None
    reason: str | None
    decision: str | None
    at: datetime


def copy_output(headline: str, body: str) -> str:
    """A copy variant as the copy model answers: a JSON object with its headline and body."""
    return json.dumps({"headline": headline, "body": body}, ensure_ascii=False)


def _corrected_copy(text: str) -> str:
    """A reviewer's corrected copy in the model's answer format: JSON with headline and body
    as sent, else the first line is the headline and the rest the body."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("headline"), str):
        return copy_output(data["headline"], str(data.get("body") or ""))
    head, _, body = text.strip().partition("\n")
    return copy_output(head.strip(), " ".join(body.split()))


def rated_item(plan: Plan, rating: FeedbackIn) -> RatedItem:
    """The plan's text a rating is about, with the model input and output it rates."""
    if rating.target == "copy":
        variants = plan.copy_variants
        if rating.index is None or rating.index >= len(variants):
            raise FeedbackError(f"the plan has {len(variants)} copy variant(s); no variant at "
                                f"index {rating.index}", field="index")  # fmt: skip
        v = variants[rating.index]
        return RatedItem(task="copy", item=f"copy {rating.index + 1}", retailer=v.retailer_id,
                         prompt=v.prompt, output=copy_output(v.headline, v.body),
                         adapters=v.adapters, written_by=v.path)  # fmt: skip
    if rating.target == "rationale":
        text = plan.text(rating.kind or "")
        if text is None:
            raise FeedbackError(f"the plan has no {rating.kind} rationale", field="kind")
        return RatedItem(task="rationale", item=f"rationale {text.kind}", prompt=text.prompt,
                         output=text.text, adapters=text.adapters,
                         written_by=text.path)  # fmt: skip
    # The plan itself: the brief is what was asked, the plan's spend what was answered.
    spend: dict[str, float] = {}
    for row in plan.allocation:
        spend[row.retailer_id] = spend.get(row.retailer_id, 0.0) + row.spend
    return RatedItem(task="plan", item="plan", output=json.dumps(
        {"brief": plan.brief_text, "spend_by_retailer": spend}, sort_keys=True),
        written_by="optimizer")  # fmt: skip


class FeedbackStore:
    """Ratings in one SQLite file (created with its folder on first use); WAL mode, one
    connection per call, so the server's threads and the CLI share it. With `url` (default
    `RMN_DATABASE_URL`) naming a database, the table lives there instead."""

    def __init__(self, path: Path, url: str | None = None) -> None:
        self.path = Path(path)
        try:
            self._db = open_store(self.path, STORE, MIGRATIONS, url)
        except (RMNError, sqlite3.DatabaseError, OSError) as err:
            raise FeedbackError(
                f"cannot open the feedback store at {location(self.path, url)}: {err}"
            ) from None

    def add(
        self,
        *,
        tenant: str,
        thread_key: str,
        thread_id: str,
        item: RatedItem,
        rating: FeedbackIn,
        reviewer: str,
    ) -> FeedbackRecord:
        """Store one rating of `item`; answers the record as stored."""
        corrected = (rating.corrected or "").strip() or None
        if corrected is not None and item.task == "copy":
            corrected = _corrected_copy(corrected)
        at = datetime.now(UTC)
        row = (tenant, thread_key, thread_id, item.task, item.item, item.retailer,
               None if item.prompt is None else json.dumps(item.prompt, ensure_ascii=False),
               item.output, json.dumps(item.adapters), item.written_by, reviewer, rating.thumbs,
               rating.score, corrected, (rating.reason or "").strip() or None, rating.decision,
               at.isoformat())  # fmt: skip
        with self._db.transaction() as con:
            new = con.one(
                "INSERT INTO feedback (tenant, thread_key, thread_id, task, item, retailer, "
                "prompt, output, adapters, written_by, reviewer, thumbs, score, corrected, "
                "reason, decision, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id",
                row,
            )
        return self.get(tenant, int(new[0]) if new else 0)

    def get(self, tenant: str, feedback_id: int) -> FeedbackRecord:
        with self._db.connect() as con:
            row = con.one("SELECT * FROM feedback WHERE id = ? AND tenant = ?",
                          (feedback_id, tenant))  # fmt: skip
        if row is None:
            raise FeedbackError(f"no feedback {feedback_id}")
        return _record(row)

    def list(
        self, tenant: str | None = None, thread_key: str | None = None
    ) -> builtins.list[FeedbackRecord]:
        """Ratings oldest first: one tenant's (and one thread's) when given, else all."""
        query, args = "SELECT * FROM feedback WHERE 1=1", []
        if tenant is not None:
            query, args = query + " AND tenant = ?", [*args, tenant]
        if thread_key is not None:
            query, args = query + " AND thread_key = ?", [*args, thread_key]
        with self._db.connect() as con:
            rows = con.all(query + " ORDER BY id", args)
        return [_record(r) for r in rows]

    def delete_thread(self, thread_key: str, *, tenant: str) -> int:
        """Erase the tenant's ratings on a thread (the thread was deleted); answers how many.
        Rows are overwritten on disk and the write-ahead log emptied."""
        with self._db.transaction() as con:
            gone = con.execute("DELETE FROM feedback WHERE thread_key = ? AND tenant = ?",
                               (thread_key, tenant)).rowcount  # fmt: skip
        with self._db.connect() as con:
            self._db.erased(con)
        return int(gone)


def _record(row: Row) -> FeedbackRecord:
    data = dict(zip(row.keys(), row, strict=True))
    data["prompt"] = json.loads(data["prompt"]) if data["prompt"] else None
    data["adapters"] = json.loads(data["adapters"])
    return FeedbackRecord.model_validate(data)


# --- training data ----------------------------------------------------------------------------


def _answer(text: str) -> list[Message]:
    return [{"role": "assistant", "content": text}]


def dpo_pairs(records: list[FeedbackRecord]) -> list[dict[str, Any]]:
    """TRL preference rows (conversational: `prompt` messages, `chosen` and `rejected` as the
    assistant's answer): a corrected text over the original it corrects, and a thumbs-up
    output over a thumbs-down output of the same prompt. Only model-written items (with a
    prompt) count; a pair appears once however many reviewers gave it."""
    seen: set[tuple[str, str, str]] = set()
    out: list[dict[str, Any]] = []

    def add(prompt: list[Message], chosen: str, rejected: str, record: FeedbackRecord) -> None:
        key = (json.dumps(prompt, sort_keys=True), chosen, rejected)
        if chosen == rejected or key in seen:
            return
        seen.add(key)
        out.append({"prompt": prompt, "chosen": _answer(chosen), "rejected": _answer(rejected),
                    "task": record.task, "tenant": record.tenant})  # fmt: skip

    by_prompt: dict[tuple[str, str], list[FeedbackRecord]] = defaultdict(list)
    for r in records:
        if r.prompt is None or r.task == "plan":
            continue
        if r.corrected:
            add(r.prompt, r.corrected, r.output, r)
        if r.thumbs is not None:
            by_prompt[(r.tenant, json.dumps(r.prompt, sort_keys=True))].append(r)
    for group in by_prompt.values():
        ups = [r for r in group if r.thumbs == "up"]
        downs = [r for r in group if r.thumbs == "down"]
        for up in ups:
            for down in downs:
                if up.prompt is not None:
                    add(up.prompt, up.output, down.output, up)
    return out


def sft_rows(records: list[FeedbackRecord]) -> list[dict[str, Any]]:
    """TRL conversational rows (`messages`: the prompt and the answer to learn): each corrected
    text, and each output rated up (thumbs up, or a score of 4 or 5) that nobody corrected or
    rated down."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    bad = {(r.tenant, r.output) for r in records if r.thumbs == "down" or r.corrected
           or (r.score is not None and r.score <= 2)}  # fmt: skip
    for r in records:
        if r.prompt is None or r.task == "plan":
            continue
        answers = [r.corrected] if r.corrected else []
        liked = r.thumbs == "up" or (r.score is not None and r.score >= 4)
        if liked and (r.tenant, r.output) not in bad:
            answers.append(r.output)
        for answer in answers:
            key = json.dumps([r.prompt, answer], sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append({"messages": [*r.prompt, *_answer(answer)], "task": r.task,
                            "tenant": r.tenant})  # fmt: skip
    return out


# --- the dashboard --------------------------------------------------------------------------


class Bucket(BaseModel):
    """Ratings of one retailer or task."""

    name: str
    ratings: int
    up: int
    down: int
    mean_score: float | None
    down_share: float


class FeedbackStats(BaseModel):
    ratings: int
    by_task: dict[str, int]
    up: int
    down: int
    corrected: int
    plan_reasons: int
    items_rated_by_several: int = Field(description="items two or more reviewers rated")
    agreement: float | None = Field(
        None, description="share of reviewer pairs on the same item whose thumbs agree"
    )
    worst_retailers: list[Bucket]
    worst_tasks: list[Bucket]


def _bucket(name: str, rows: list[FeedbackRecord]) -> Bucket:
    up = sum(r.thumbs == "up" for r in rows)
    down = sum(r.thumbs == "down" for r in rows)
    scores = [r.score for r in rows if r.score is not None]
    return Bucket(name=name, ratings=len(rows), up=up, down=down,
                  mean_score=round(sum(scores) / len(scores), 2) if scores else None,
                  down_share=round(down / (up + down), 3) if up + down else 0.0)  # fmt: skip


def _worst(groups: dict[str, list[FeedbackRecord]], k: int) -> list[Bucket]:
    buckets = [_bucket(n, rows) for n, rows in groups.items()]
    return sorted(buckets, key=lambda b: (-b.down_share, b.mean_score or 6.0, b.name))[:k]


def feedback_stats(records: list[FeedbackRecord], k: int = 5) -> FeedbackStats:
    """Counts, reviewer agreement (pairs of reviewers' thumbs on the same item and output),
    and the retailers and tasks with the largest share of thumbs down (then lowest score)."""
    by_item: dict[tuple[str, str, str, str], dict[str, str]] = defaultdict(dict)
    for r in records:
        if r.thumbs is not None:
            by_item[(r.tenant, r.thread_id, r.item, r.output)][r.reviewer] = r.thumbs
    several = [v for v in by_item.values() if len(v) >= 2]
    pairs = [(a, b) for v in several for a, b in combinations(sorted(v.values()), 2)]
    retailers: dict[str, list[FeedbackRecord]] = defaultdict(list)
    tasks: dict[str, list[FeedbackRecord]] = defaultdict(list)
    for r in records:
        if r.task != "plan":
            tasks[r.task].append(r)
            if r.retailer:
                retailers[r.retailer].append(r)
    return FeedbackStats(
        ratings=len(records),
        by_task={t: sum(r.task == t for r in records) for t in ("copy", "rationale", "plan")},
        up=sum(r.thumbs == "up" for r in records),
        down=sum(r.thumbs == "down" for r in records),
        corrected=sum(bool(r.corrected) for r in records),
        plan_reasons=sum(r.task == "plan" for r in records),
        items_rated_by_several=len(several),
        agreement=round(sum(a == b for a, b in pairs) / len(pairs), 3) if pairs else None,
        worst_retailers=_worst(retailers, k),
        worst_tasks=_worst(tasks, k),
    )


__all__ = [
    "FeedbackError",
    "FeedbackIn",
    "FeedbackRecord",
    "FeedbackStats",
    "FeedbackStore",
    "RatedItem",
    "dpo_pairs",
    "feedback_path",
    "feedback_stats",
    "rated_item",
    "sft_rows",
]
