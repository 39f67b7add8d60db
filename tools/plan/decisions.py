"""The decisions made on plans (approve, edit, reject, auto-approve), kept in SQLite.

    store = DecisionStore(decisions_path(data_dir()))  # <data>/decisions.sqlite
    store.record(thread_id, tenant, plan, decision)   # False when already recorded
    store.similar("acme", plan.brief)                 # memory for the next reflection
    store.preference_pairs("acme")                    # chosen vs rejected plans, for DPO
    store.delete_thread(thread_id, tenant="acme")     # a deleted thread's rows, erased

Each record keeps the plan as JSON, the brief and the decision with its reason and edits. A
decision is identified by (thread, action, plan revision): the graph may run its final node
again after a crash, and the second record of the same decision writes nothing. Every call
opens its own connection in WAL mode, so threads and processes can share one file; with
`RMN_DATABASE_URL` set the table lives in that database instead (tools/storage).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import math
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tools.brief.schema import StructuredBrief
from tools.errors import AccessDeniedError, RMNError
from tools.plan import Decision, DecisionAction, Plan
from tools.plan.labels import objective_words
from tools.storage import Migration, Row
from tools.storage.stores import location, open_store

DECISIONS_FILE = "decisions.sqlite"
STORE = "decisions"
CHOSEN: tuple[str, ...] = ("approve", "auto_approve")
NOT_CHOSEN: tuple[str, ...] = ("edit", "reject")
# Similarity of two briefs: weights of retailer overlap, same objective and budget ratio.
W_RETAILERS, W_OBJECTIVE, W_BUDGET = 0.5, 0.2, 0.3
MEMORY_CHARS = 220

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    revision TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    changes TEXT NOT NULL,
    decided_by TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    brand_id TEXT NOT NULL,
    retailers TEXT NOT NULL,
    objective TEXT NOT NULL,
    total_budget REAL NOT NULL,
    brief_text TEXT NOT NULL,
    brief TEXT NOT NULL,
    plan TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (thread_id, action, revision)
);
CREATE INDEX IF NOT EXISTS decisions_by_tenant ON decisions (tenant, id);
"""
# Version 1 is the schema files written before versioned migrations had (PRAGMA user_version 1,
# the only version there was): on such a file every statement is a no-op and version 1 is
# recorded, its rows untouched.
MIGRATIONS = (Migration(1, "decisions", _SCHEMA),)


def decisions_path(data_dir: Path) -> Path:
    """Where the planning graph records its threads' decisions: `<data>/decisions.sqlite`."""
    return Path(data_dir) / DECISIONS_FILE


class DecisionStoreError(RMNError):
    kind = "decision_store_error"


class DecisionRow(BaseModel):
    """One recorded decision with the plan it was made on."""

    id: int
    thread_id: str
    tenant: str
    revision: str
    action: DecisionAction
    reason: str | None
    changes: dict[str, Any]
    by: str
    at: datetime
    brand_id: str
    retailers: list[str]
    objective: str
    total_budget: float
    brief_text: str
    brief: StructuredBrief
    plan: Plan
    recorded_at: datetime


class PreferencePair(BaseModel):
    """An approved plan and a plan the human edited or rejected, for the same brief text."""

    tenant: str
    prompt: str = Field(description="the brief text both plans answer")
    chosen: Plan
    rejected: Plan
    rejected_action: DecisionAction
    reason: str = Field(description="why the rejected plan lost: the reason or the edits")


def plan_revision(plan: Plan) -> str:
    """A digest of the plan's content (decision and status left out), so the same plan decided
    twice has one revision and a re-optimised plan after an edit has another."""
    body = plan.model_dump(mode="json", exclude={"decision", "status"})
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class DecisionStore:
    """Decisions on plans in one SQLite file (created with its folder on first use), or in the
    database `url` (default `RMN_DATABASE_URL`) names."""

    def __init__(self, path: Path, url: str | None = None) -> None:
        self.path = Path(path)
        try:
            self._db = open_store(self.path, STORE, MIGRATIONS, url)
        except (RMNError, sqlite3.DatabaseError, OSError) as err:
            raise DecisionStoreError(
                f"cannot open the decision store at {location(self.path, url)}: {err}",
                path=str(self.path),
            ) from None

    def record(
        self,
        thread_id: str,
        tenant: str,
        plan: Plan,
        decision: Decision,
        revision: str | None = None,
    ) -> bool:
        """Store a decision on `plan`; False (and nothing written) when this thread already
        has this action on this plan revision. `revision` defaults to `plan_revision(plan)`."""
        if not thread_id or not tenant:
            raise DecisionStoreError("a decision needs a thread id and a tenant")
        if plan.tenant != tenant:
            raise AccessDeniedError(
                f"plan {plan.thread_id!r} belongs to tenant {plan.tenant!r}, not {tenant!r}",
                tenant=tenant,
            )
        if plan.thread_id != thread_id:
            raise DecisionStoreError(
                f"plan {plan.thread_id!r} is not the plan of thread {thread_id!r}",
                thread_id=thread_id,
            )
        brief = plan.brief
        row = (
            thread_id,
            tenant,
            revision or plan_revision(plan),
            decision.action,
            decision.reason,
            json.dumps(decision.changes, sort_keys=True, default=str),
            decision.by,
            decision.at.isoformat(),
            brief.brand_id,
            json.dumps(_retailers(plan)),
            brief.objective,
            brief.total_budget,
            plan.brief_text,
            brief.model_dump_json(),
            plan.model_dump_json(by_alias=True),
            datetime.now(UTC).isoformat(),
        )
        with self._db.transaction() as con:
            new = con.one(
                "INSERT INTO decisions (thread_id, tenant, revision, action, reason, "
                "changes, decided_by, decided_at, brand_id, retailers, objective, total_budget, "
                "brief_text, brief, plan, recorded_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING RETURNING id",
                row,
            )
        return new is not None

    def delete_thread(self, thread_id: str, *, tenant: str) -> int:
        """Erase the tenant's decisions on a thread (the thread was deleted); answers how many.
        The rows are overwritten on disk and the write-ahead log emptied, so what the
        reviewer wrote does not linger in the file; `similar` no longer cites the thread."""
        with self._db.transaction() as con:
            gone = con.execute(
                "DELETE FROM decisions WHERE thread_id = ? AND tenant = ?", (thread_id, tenant)
            ).rowcount
        with self._db.connect() as con:
            self._db.erased(con)
        return int(gone)

    def list(self, tenant: str | None = None) -> builtins.list[DecisionRow]:
        """Every decision, oldest first; one tenant's only when `tenant` is given."""
        query = "SELECT * FROM decisions"
        args: tuple[str, ...] = ()
        if tenant is not None:
            query, args = query + " WHERE tenant = ?", (tenant,)
        with self._db.connect() as con:
            rows = con.all(query + " ORDER BY id", args)
        return [_row(r) for r in rows]

    def similar(
        self,
        tenant: str,
        brief: StructuredBrief,
        k: int = 3,
        exclude_thread: str | None = None,
    ) -> builtins.list[str]:
        """Short memory references to this tenant's decided plans most like `brief` (shared
        retailers, same objective, similar budget), most similar first: the latest decision
        of each thread. Never another tenant's."""
        if k < 1:
            return []
        latest: dict[str, DecisionRow] = {}
        for row in self.list(tenant):
            if row.thread_id != exclude_thread:
                latest[row.thread_id] = row  # rows come oldest first
        wanted = set(_brief_retailers(brief))
        scored = sorted(
            latest.values(),
            key=lambda r: (-_similarity(wanted, brief, r), -r.id),
        )
        return [memory_line(r) for r in scored[:k]]

    def preference_pairs(self, tenant: str) -> builtins.list[PreferencePair]:
        """(approved plan, edited or rejected plan) pairs sharing a brief text: within a thread
        (an edit, then the approval of the re-optimised plan) and across threads of the same
        brief. The newest approval is the chosen side of each pair."""
        groups: dict[str, builtins.list[DecisionRow]] = {}
        for row in self.list(tenant):
            groups.setdefault(" ".join(row.brief_text.lower().split()), []).append(row)
        pairs = []
        for rows in groups.values():
            chosen = [r for r in rows if r.action in CHOSEN]
            if not chosen:
                continue
            best = chosen[-1]
            for lost in rows:
                if lost.action not in NOT_CHOSEN or lost.revision == best.revision:
                    continue
                pairs.append(
                    PreferencePair(
                        tenant=tenant,
                        prompt=best.brief_text,
                        chosen=best.plan,
                        rejected=lost.plan,
                        rejected_action=lost.action,
                        reason=_why(lost),
                    )
                )
        return pairs


# --- helpers --------------------------------------------------------------------------------


def _row(r: Row) -> DecisionRow:
    return DecisionRow(
        id=r["id"],
        thread_id=r["thread_id"],
        tenant=r["tenant"],
        revision=r["revision"],
        action=r["action"],
        reason=r["reason"],
        changes=json.loads(r["changes"]),
        by=r["decided_by"],
        at=datetime.fromisoformat(r["decided_at"]),
        brand_id=r["brand_id"],
        retailers=json.loads(r["retailers"]),
        objective=r["objective"],
        total_budget=r["total_budget"],
        brief_text=r["brief_text"],
        brief=StructuredBrief.model_validate_json(r["brief"]),
        plan=Plan.model_validate_json(r["plan"]),
        recorded_at=datetime.fromisoformat(r["recorded_at"]),
    )


def _brief_retailers(brief: StructuredBrief) -> builtins.list[str]:
    try:
        return brief.resolved_retailers()
    except RMNError:  # a brand outside the catalog: the brief's own list
        return list(brief.retailers)


def _retailers(plan: Plan) -> builtins.list[str]:
    """The retailers the plan spends at, else those its brief names."""
    funded = sorted({r.retailer_id for r in plan.allocation if r.spend > 0})
    return funded or sorted(_brief_retailers(plan.brief))


def _similarity(wanted: set[str], brief: StructuredBrief, row: DecisionRow) -> float:
    have = set(row.retailers)
    union = wanted | have
    overlap = len(wanted & have) / len(union) if union else 1.0
    same_objective = 1.0 if row.objective == brief.objective else 0.0
    low, high = sorted((row.total_budget, brief.total_budget))
    ratio = low / high if high > 0 and math.isfinite(high) else 0.0
    return W_RETAILERS * overlap + W_OBJECTIVE * same_objective + W_BUDGET * ratio


_VERB = {
    "approve": "approved",
    "auto_approve": "auto-approved",
    "edit": "edited",
    "reject": "rejected",
}


def memory_line(row: DecisionRow) -> str:
    """One past decision as a short reference: date, thread, verdict, budget, retailers,
    objective, expected iROAS and the reason or edits."""
    parts = [
        f"{row.at:%Y-%m-%d} {row.thread_id}: {_VERB[row.action]} ${row.total_budget:,.0f} over "
        f"{'+'.join(row.retailers) or 'no retailers'}, {objective_words(row.objective)}"
    ]
    outcome = row.plan.expected_outcome
    if outcome is not None:
        i = outcome.iroas
        parts.append(f"iROAS {i.mean:.2f} ({i.low:.2f}-{i.high:.2f})")
    if row.action in NOT_CHOSEN:
        parts.append(_why(row))
    line = "; ".join(parts)
    return line if len(line) <= MEMORY_CHARS else line[: MEMORY_CHARS - 3].rstrip() + "..."


def _why(row: DecisionRow) -> str:
    if row.changes:
        edits = ", ".join(f"{k}={v}" for k, v in sorted(row.changes.items()))
        return f"edits: {edits}" + (f" ({row.reason})" if row.reason else "")
    return f"reason: {row.reason}" if row.reason else "no reason given"
