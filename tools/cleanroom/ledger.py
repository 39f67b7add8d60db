"""The privacy ledger: epsilon spent per tenant and retailer in the current budget period,
and every differentially private answer released, so that asking again costs nothing.

One SQLite file (`<data>/cleanroom/privacy_ledger.sqlite`) holds both, so that a release is
charged and stored in one write transaction: concurrent clean-room processes serialize on
it, a query charges only once its noisy answer exists, and two processes releasing the same
query at once charge it once (the second gets the first's answer).

Budget periods follow the retailer's policy (`budget_period`): the budget starts afresh at
each calendar day, ISO week (Monday), month or quarter, 00:00 UTC; `none` never. Spend is
counted from the start of the current period.

Cached answers are post-processing of a release that was already paid for: answering the
same query (same tenant, retailer, grouping, metrics, filters, limit and epsilon, on the
same events file under the same rules) from the cache spends nothing, in any period.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tools.errors import PrivacyBudgetExceededError

# OpenDP rounds its privacy map conservatively, so allow for the last bit of float error.
_TOLERANCE = 1e-9


def period_window(period: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(start of the current budget period, start of the next), UTC; (None, None) for `none`."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "none":
        return None, None
    if period == "daily":
        return day, day + timedelta(days=1)
    if period == "weekly":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "monthly":
        start = day.replace(day=1)
        return start, _add_months(start, 1)
    if period == "quarterly":
        start = day.replace(day=1, month=3 * ((day.month - 1) // 3) + 1)
        return start, _add_months(start, 3)
    raise ValueError(f"unknown budget period {period!r}")


def _add_months(first: datetime, months: int) -> datetime:
    index = first.month - 1 + months
    return first.replace(year=first.year + index // 12, month=index % 12 + 1)


class BudgetStatus(BaseModel):
    tenant: str
    retailer: str
    budget: float
    spent: float
    remaining: float
    queries: int
    period: str = "none"
    period_start: datetime | None = None
    refreshes_at: datetime | None = None


class PrivacyLedger:
    """Epsilon spent per (tenant, retailer) and the released answers, in SQLite."""

    def __init__(self, path: Path, clock: Callable[[], datetime] | None = None) -> None:
        self.path = path
        self.clock = clock or (lambda: datetime.now(UTC))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS spend (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, "
                "tenant TEXT NOT NULL, retailer TEXT NOT NULL, epsilon REAL NOT NULL, "
                "audit_id TEXT NOT NULL)"
            )
            con.execute(
                "CREATE TABLE IF NOT EXISTS releases (tenant TEXT NOT NULL, retailer TEXT NOT "
                "NULL, key TEXT NOT NULL, ts TEXT NOT NULL, epsilon REAL NOT NULL, audit_id "
                "TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (tenant, retailer, key))"
            )
            yield con

    @staticmethod
    def _totals(
        con: sqlite3.Connection, tenant: str, retailer: str, since: datetime | None
    ) -> tuple[float, int]:
        # Timestamps are UTC ISO strings, so they order as text.
        row = con.execute(
            "SELECT coalesce(sum(epsilon), 0.0), count(*) FROM spend "
            "WHERE tenant = ? AND retailer = ? AND ts >= ?",
            (tenant, retailer, since.isoformat() if since else ""),
        ).fetchone()
        return float(row[0]), int(row[1])

    def _status(
        self, tenant: str, retailer: str, budget: float, period: str, spent: float, n: int
    ) -> BudgetStatus:
        start, refresh = period_window(period, self.clock())
        return BudgetStatus(
            tenant=tenant,
            retailer=retailer,
            budget=budget,
            spent=spent,
            remaining=max(budget - spent, 0.0),
            queries=n,
            period=period,
            period_start=start,
            refreshes_at=refresh,
        )

    def status(self, tenant: str, retailer: str, budget: float, period: str = "none") -> (
        BudgetStatus
    ):  # fmt: skip
        """Spent and remaining in the current period."""
        spent, n = (0.0, 0)
        if self.path.exists():
            with self._connect() as con:
                spent, n = self._totals(
                    con, tenant, retailer, period_window(period, self.clock())[0]
                )
        return self._status(tenant, retailer, budget, period, spent, n)

    def check(
        self, tenant: str, retailer: str, epsilon: float, budget: float, period: str = "none"
    ) -> None:
        """Refuse early, before any data is read, when the budget cannot cover `epsilon`."""
        status = self.status(tenant, retailer, budget, period)
        self._refuse_if_over(status, epsilon)

    def charge(
        self,
        tenant: str,
        retailer: str,
        epsilon: float,
        budget: float,
        audit_id: str,
        period: str = "none",
    ) -> BudgetStatus:
        """Record `epsilon` against the budget, or refuse; atomic across processes."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                status = self._charge(con, tenant, retailer, epsilon, budget, audit_id, period)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return status

    def _charge(
        self,
        con: sqlite3.Connection,
        tenant: str,
        retailer: str,
        epsilon: float,
        budget: float,
        audit_id: str,
        period: str,
    ) -> BudgetStatus:
        now = self.clock()
        spent, n = self._totals(con, tenant, retailer, period_window(period, now)[0])
        self._refuse_if_over(self._status(tenant, retailer, budget, period, spent, n), epsilon)
        con.execute(
            "INSERT INTO spend (ts, tenant, retailer, epsilon, audit_id) VALUES (?, ?, ?, ?, ?)",
            (now.astimezone(UTC).isoformat(), tenant, retailer, epsilon, audit_id),
        )
        return self._status(tenant, retailer, budget, period, spent + epsilon, n + 1)

    # --- released answers -------------------------------------------------------------------

    def released(self, tenant: str, retailer: str, key: str) -> dict[str, Any] | None:
        """The answer released earlier for this query key, if any."""
        if not self.path.exists():
            return None
        with self._connect() as con:
            row = con.execute(
                "SELECT payload FROM releases WHERE tenant = ? AND retailer = ? AND key = ?",
                (tenant, retailer, key),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def release(
        self,
        tenant: str,
        retailer: str,
        key: str,
        epsilon: float,
        budget: float,
        period: str,
        audit_id: str,
        payload: dict[str, Any],
    ) -> tuple[BudgetStatus, dict[str, Any] | None]:
        """Charge `epsilon` and store the answer in one transaction, or refuse (nothing is
        charged or stored). When another process released the same key in the meantime,
        nothing is charged and its answer comes back as the second value."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                row = con.execute(
                    "SELECT payload FROM releases WHERE tenant = ? AND retailer = ? AND key = ?",
                    (tenant, retailer, key),
                ).fetchone()
                if row is not None:
                    con.execute("ROLLBACK")
                    return self.status(tenant, retailer, budget, period), json.loads(row[0])
                status = self._charge(con, tenant, retailer, epsilon, budget, audit_id, period)
                con.execute(
                    "INSERT INTO releases (tenant, retailer, key, ts, epsilon, audit_id, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        tenant,
                        retailer,
                        key,
                        self.clock().astimezone(UTC).isoformat(),
                        epsilon,
                        audit_id,
                        json.dumps(payload, default=str, allow_nan=False),
                    ),
                )
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        return status, None

    @staticmethod
    def _refuse_if_over(status: BudgetStatus, epsilon: float) -> None:
        spent, budget = status.spent, status.budget
        if spent + epsilon > budget + _TOLERANCE:
            refresh = (
                f"; the budget refreshes on {status.refreshes_at:%Y-%m-%d} (UTC)"
                if status.refreshes_at
                else "; it does not refresh (budget_period: none)"
            )
            raise PrivacyBudgetExceededError(
                f"privacy budget exceeded for tenant '{status.tenant}' at '{status.retailer}': "
                f"spent {spent:g} + requested {epsilon:g} > budget {budget:g} "
                f"(remaining {max(budget - spent, 0.0):g}){refresh}",
                tenant=status.tenant,
                retailer=status.retailer,
                spent=spent,
                requested=epsilon,
                budget=budget,
                refreshes_at=status.refreshes_at.isoformat() if status.refreshes_at else None,
            )
