"""Differential privacy for clean-room answers: OpenDP's Laplace mechanism and the
per-tenant epsilon ledger.

Neighboring datasets differ by one event row. Each row falls in exactly one output cell, so
the vector of per-cell counts changes by at most 1 in L1 norm, and the vector of per-cell sums
of a metric clamped to [0, U] changes by at most U (U = the rules' `sum_clamp`). A query that
releases n such vectors (the event count and one sum per metric) splits its epsilon evenly
across them; by sequential composition the query costs exactly its epsilon. Averages are a
noisy sum over a noisy count, which is post-processing and costs nothing more.

Which cells appear is decided by the k threshold on exact counts, as are the reported numbers
of cells returned and suppressed: cell presence is protected by k-anonymity, not by DP.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from tools.errors import PrivacyBudgetExceededError

MECHANISM = "laplace"
# OpenDP rounds its privacy map conservatively, so allow for the last bit of float error.
_MAP_TOLERANCE = 1e-9


def _laplace(
    values: list[float] | list[int], sensitivity: float, epsilon: float, integer: bool
) -> tuple[list, float]:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    scale = sensitivity / epsilon
    atom = dp.atom_domain(T="i64") if integer else dp.atom_domain(T=float, nan=False)
    metric = dp.l1_distance(T="i64" if integer else float)
    meas = dp.m.make_laplace(dp.vector_domain(atom), metric, scale=scale)
    d_in = int(sensitivity) if integer else float(sensitivity)
    if meas.map(d_in) > epsilon * (1 + _MAP_TOLERANCE):
        raise RuntimeError(f"Laplace scale {scale} does not give epsilon {epsilon}")
    return meas(values), scale


def noisy_counts(counts: list[int], epsilon: float) -> tuple[list[int], float]:
    """Per-cell event counts plus discrete Laplace noise (sensitivity 1); returns the scale."""
    if not counts:
        return [], 1.0 / epsilon
    return _laplace([int(c) for c in counts], 1, epsilon, integer=True)


def noisy_sums(sums: list[float], bound: float, epsilon: float) -> tuple[list[float], float]:
    """Per-cell sums of values clamped to [0, bound], plus Laplace noise (sensitivity bound)."""
    if not sums:
        return [], bound / epsilon
    return _laplace([float(s) for s in sums], bound, epsilon, integer=False)


class BudgetStatus(BaseModel):
    tenant: str
    retailer: str
    budget: float
    spent: float
    remaining: float
    queries: int


class PrivacyLedger:
    """Epsilon spent per (tenant, retailer), in SQLite so that concurrent clean-room processes
    serialize their check-and-charge in one write transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS spend (id INTEGER PRIMARY KEY, ts TEXT NOT NULL, "
                "tenant TEXT NOT NULL, retailer TEXT NOT NULL, epsilon REAL NOT NULL, "
                "audit_id TEXT NOT NULL)"
            )
            yield con

    @staticmethod
    def _totals(con: sqlite3.Connection, tenant: str, retailer: str) -> tuple[float, int]:
        row = con.execute(
            "SELECT coalesce(sum(epsilon), 0.0), count(*) FROM spend "
            "WHERE tenant = ? AND retailer = ?",
            (tenant, retailer),
        ).fetchone()
        return float(row[0]), int(row[1])

    def status(self, tenant: str, retailer: str, budget: float) -> BudgetStatus:
        spent, n = (0.0, 0)
        if self.path.exists():
            with self._connect() as con:
                spent, n = self._totals(con, tenant, retailer)
        return BudgetStatus(
            tenant=tenant,
            retailer=retailer,
            budget=budget,
            spent=spent,
            remaining=max(budget - spent, 0.0),
            queries=n,
        )

    def check(self, tenant: str, retailer: str, epsilon: float, budget: float) -> None:
        """Refuse early, before any data is read, when the budget cannot cover `epsilon`."""
        spent = self.status(tenant, retailer, budget).spent
        self._refuse_if_over(spent, epsilon, budget, tenant, retailer)

    def charge(
        self, tenant: str, retailer: str, epsilon: float, budget: float, audit_id: str
    ) -> BudgetStatus:
        """Record `epsilon` against the budget, or refuse; atomic across processes."""
        with self._connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                spent, n = self._totals(con, tenant, retailer)
                self._refuse_if_over(spent, epsilon, budget, tenant, retailer)
                con.execute(
                    "INSERT INTO spend (ts, tenant, retailer, epsilon, audit_id) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (datetime.now(UTC).isoformat(), tenant, retailer, epsilon, audit_id),
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        spent += epsilon
        return BudgetStatus(
            tenant=tenant,
            retailer=retailer,
            budget=budget,
            spent=spent,
            remaining=max(budget - spent, 0.0),
            queries=n + 1,
        )

    @staticmethod
    def _refuse_if_over(
        spent: float, epsilon: float, budget: float, tenant: str, retailer: str
    ) -> None:
        if spent + epsilon > budget + _MAP_TOLERANCE:
            raise PrivacyBudgetExceededError(
                f"privacy budget exceeded for tenant '{tenant}' at '{retailer}': "
                f"spent {spent:g} + requested {epsilon:g} > budget {budget:g} "
                f"(remaining {max(budget - spent, 0.0):g})",
                tenant=tenant,
                retailer=retailer,
                spent=spent,
                requested=epsilon,
                budget=budget,
            )
