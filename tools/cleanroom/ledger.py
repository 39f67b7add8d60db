"""The privacy ledger: epsilon spent per tenant and retailer in the current budget period,
and every differentially private answer released, so that asking again costs nothing.

One SQLite file (`<data>/cleanroom/privacy_ledger.sqlite`), or the database `RMN_DATABASE_URL`
names (tools/storage), holds both, so that a release is charged and stored in one exclusive
transaction: concurrent clean-room processes serialize on it (the file's write lock, or a
Postgres advisory lock), a query charges only once its noisy answer exists, and two processes
releasing the same query at once charge it once (the second gets the first's answer).

Budget periods follow the retailer's policy (`budget_period`): the budget starts afresh at
each calendar day, ISO week (Monday), month or quarter, 00:00 UTC; `none` never. Spend is
counted from the start of the current period.

Cached answers are post-processing of a release that was already paid for: answering the
same query (same tenant, retailer, grouping, metrics, filters, limit and epsilon, on the
same events file under the same rules) from the cache spends nothing, in any period.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tools.errors import PrivacyBudgetExceededError
from tools.storage import Connection, Database, Migration
from tools.storage.stores import open_store, store_exists

# OpenDP rounds its privacy map conservatively, so allow for the last bit of float error.
_TOLERANCE = 1e-9
LEDGER_FILE = "privacy_ledger.sqlite"
STORE = "ledger"
# Every charge and release of every tenant takes this one lock: the budget check and the
# insert that follows it must not interleave with another process's (two server replicas).
LOCK = "ledger"
MIGRATIONS = (
    Migration(
        1,
        "spend and releases",
        "CREATE TABLE IF NOT EXISTS spend (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, "
        "tenant TEXT NOT NULL, retailer TEXT NOT NULL, epsilon REAL NOT NULL, "
        "audit_id TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS releases (tenant TEXT NOT NULL, retailer TEXT NOT "
        "NULL, key TEXT NOT NULL, ts TEXT NOT NULL, epsilon REAL NOT NULL, audit_id "
        "TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (tenant, retailer, key))",
    ),
)


def ledger_path(data_dir: Path) -> Path:
    """The ledger's SQLite file (the embedded default): `<data>/cleanroom/privacy_ledger.sqlite`."""
    return Path(data_dir) / "cleanroom" / LEDGER_FILE


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
    """Epsilon spent per (tenant, retailer) and the released answers: in `path` (SQLite) by
    default, in the database `RMN_DATABASE_URL` (or `url`) names otherwise."""

    def __init__(
        self, path: Path, clock: Callable[[], datetime] | None = None, url: str | None = None
    ) -> None:
        self.path = path
        self.clock = clock or (lambda: datetime.now(UTC))
        self._url = url
        self._db: Database | None = None

    def _database(self) -> Database:
        # Opened on first use: a clean room that only lists retailers creates no file.
        if self._db is None:
            self._db = open_store(self.path, STORE, MIGRATIONS, self._url)
        return self._db

    def _exists(self) -> bool:
        return self._db is not None or store_exists(self.path, self._url)

    @staticmethod
    def _totals(
        con: Connection, tenant: str, retailer: str, since: datetime | None
    ) -> tuple[float, int]:
        # Timestamps are UTC ISO strings, so they order as text.
        row = con.one(
            "SELECT coalesce(sum(epsilon), 0.0), count(*) FROM spend "
            "WHERE tenant = ? AND retailer = ? AND ts >= ?",
            (tenant, retailer, since.isoformat() if since else ""),
        )
        return (float(row[0]), int(row[1])) if row else (0.0, 0)

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
        if self._exists():
            with self._database().connect() as con:
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
        with self._database().exclusive(LOCK) as con:
            return self._charge(con, tenant, retailer, epsilon, budget, audit_id, period)

    def _charge(
        self,
        con: Connection,
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
        if not self._exists():
            return None
        with self._database().connect() as con:
            row = con.one(
                "SELECT payload FROM releases WHERE tenant = ? AND retailer = ? AND key = ?",
                (tenant, retailer, key),
            )
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
        with self._database().exclusive(LOCK) as con:
            row = con.one(
                "SELECT payload FROM releases WHERE tenant = ? AND retailer = ? AND key = ?",
                (tenant, retailer, key),
            )
            if row is None:
                status = self._charge(con, tenant, retailer, epsilon, budget, audit_id, period)
                con.execute(
                    "INSERT INTO releases (tenant, retailer, key, ts, epsilon, audit_id, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (tenant, retailer, key, self.clock().astimezone(UTC).isoformat(), epsilon,
                     audit_id, json.dumps(payload, default=str, allow_nan=False)),
                )  # fmt: skip
                return status, None
        return self.status(tenant, retailer, budget, period), json.loads(row[0])

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
