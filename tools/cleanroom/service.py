"""The clean room: aggregate-only, tenant-scoped, k-anonymous queries over harmonized RMIS
events, protected against differencing, with optional differential privacy and an audit
entry for every query.

A differentially private query is charged only once its noisy answer exists, in the same
transaction that stores the answer (`tools.cleanroom.ledger`): a query that fails (an OpenDP
error, an epsilon too small to release with) charges nothing, and the same query asked again
gets the stored answer back without spending more.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from tools.cleanroom.aggregate import aggregate
from tools.cleanroom.audit import AuditLog, audit_path
from tools.cleanroom.dp import MECHANISM, noisy_counts, noisy_sums
from tools.cleanroom.ledger import BudgetStatus, PrivacyLedger, ledger_path
from tools.cleanroom.query import ID_PATTERN, CleanRoomQuery, Plan, check_query
from tools.cleanroom.rules import RulesProvider, policy_rules
from tools.errors import (
    InputDataError,
    QueryRefusedError,
    RMNError,
    UnknownBrandError,
    UnknownRetailerError,
)
from tools.policy.data_access import METRICS, DataAccessRules
from tools.rmis import EVENT_COLUMNS

# Metrics whose RMIS column is an integer; their noisy sums are rounded back to integers.
_INTEGER_METRICS = {m for m, col in METRICS.items() if col and EVENT_COLUMNS[col] == "BIGINT"}
# Rules that change what a query releases (a changed budget does not).
_RELEASE_RULES = {"min_cell_size", "blocked_fields", "allowed_dimensions", "allowed_metrics",
                  "sum_clamp"}  # fmt: skip


class DPInfo(BaseModel):
    epsilon: float
    mechanism: str
    charged: float = Field(description="epsilon this call charged: 0 when answered from cache")
    cached: bool = Field(description="the answer released earlier for the same query")
    spent: float
    remaining: float
    budget: float
    budget_period: str
    noise_scale: dict[str, float]


class CleanRoomResult(BaseModel):
    retailer: str
    tenant: str
    k: int
    columns: list[str]
    rows: list[dict[str, Any]]
    cells_returned: int
    cells_suppressed: int
    secondary_suppressed: int = Field(
        0,
        description="of cells_suppressed, those of k or more events withheld so that no "
        "smaller cell can be computed from the others",
    )
    dp: DPInfo | None
    audit_id: str


def _check_id(kind: str, value: str) -> None:
    if not re.match(ID_PATTERN, value):
        raise QueryRefusedError(f"malformed {kind} id {value!r}: use lower-case letters, digits, _")


class CleanRoom:
    """`CleanRoom(data_dir).query(CleanRoomQuery(...))`.

    Reads `<data_dir>/rmis/<retailer>/events.parquet`; keeps its audit log and privacy ledger
    (with the released DP answers) in `<data_dir>/cleanroom/`, or in the database
    `RMN_DATABASE_URL` names. `rules_for(retailer)` supplies each retailer's rules; `clock`
    (UTC now) decides the current budget period."""

    def __init__(
        self,
        data_dir: Path,
        rules_for: RulesProvider = policy_rules,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.rules_for = rules_for
        self.state_dir = self.data_dir / "cleanroom"
        # Files under state_dir by default; tables in RMN_DATABASE_URL's database when it is set.
        self.audit = AuditLog(audit_path(self.data_dir))
        self.ledger = PrivacyLedger(ledger_path(self.data_dir), clock=clock)

    # --- public API -------------------------------------------------------------------------

    def query(self, q: CleanRoomQuery) -> CleanRoomResult:
        """Answer `q`, or raise an `RMNError` saying why not. Either way it is audited."""
        audit_id = uuid.uuid4().hex
        entry: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(),
            "audit_id": audit_id,
            "tenant": q.tenant,
            "retailer": q.retailer,
            "query": q.model_dump(mode="json"),
            "k": None,
            "cells_returned": 0,
            "cells_suppressed": 0,
            "epsilon_spent": 0.0,
        }
        try:
            result = self._answer(q, audit_id, entry)
        except RMNError as err:
            self.audit.append(
                {**entry, "status": "refused", "reason": err.message, "error_type": err.kind}
            )
            raise
        except Exception as err:
            self.audit.append(
                {**entry, "status": "error", "reason": repr(err), "error_type": type(err).__name__}
            )
            raise
        self.audit.append({**entry, "status": "ok", "reason": None, "error_type": None})
        return result

    def budget(self, tenant: str, retailer: str) -> BudgetStatus:
        """Epsilon spent and remaining for `tenant` at `retailer` in the current period."""
        _check_id("tenant", tenant)
        self.events_path(retailer)
        rules = self.rules_for(retailer)
        return self.ledger.status(
            tenant, retailer, rules.tenant_epsilon_budget, rules.budget_period
        )

    def epsilon_of(self, q: CleanRoomQuery) -> float | None:
        """The epsilon `q` releases with (the retailer's default where it requires DP), or
        None for an answer without noise."""
        rules = self.rules_for(q.retailer)
        return q.dp_epsilon or (rules.default_epsilon if rules.dp_required else None)

    def cost(self, q: CleanRoomQuery) -> float:
        """The epsilon answering `q` now would charge: 0 without noise or when the same query
        was released before (its stored answer comes back), else its epsilon."""
        epsilon = self.epsilon_of(q)
        if epsilon is None:
            return 0.0
        key = self._release_key(q, epsilon, self.events_path(q.retailer))
        return 0.0 if self.ledger.released(q.tenant, q.retailer, key) else epsilon

    def retailers(self) -> list[str]:
        """Retailers with harmonized events."""
        root = self.data_dir / "rmis"
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if (p / "events.parquet").is_file())

    def events_path(self, retailer: str) -> Path:
        _check_id("retailer", retailer)
        path = self.data_dir / "rmis" / retailer / "events.parquet"
        if not path.is_file():
            have = self.retailers()
            raise UnknownRetailerError(
                f"no harmonized data for retailer '{retailer}' ({path} not found); produce it "
                f"with `rmn harmonize --retailer {retailer} --in {self.data_dir / 'raw' / retailer}"
                f" --out {self.data_dir / 'rmis'}`"
                + (f"; retailers with data: {', '.join(have)}" if have else ""),
                retailer=retailer,
                available=have,
            )
        return path

    # --- the work ---------------------------------------------------------------------------

    def _answer(self, q: CleanRoomQuery, audit_id: str, entry: dict[str, Any]) -> CleanRoomResult:
        path = self.events_path(q.retailer)
        rules = self.rules_for(q.retailer)
        entry["k"] = rules.min_cell_size
        plan = check_query(q, rules)
        epsilon = self.epsilon_of(q)
        key = self._release_key(q, epsilon, path) if epsilon is not None else ""
        if epsilon is not None:
            stored = self.ledger.released(q.tenant, q.retailer, key)
            if stored is not None:
                return self._from_release(q, plan, rules, stored, audit_id, entry)
            self.ledger.check(
                q.tenant, q.retailer, epsilon, rules.tenant_epsilon_budget, rules.budget_period
            )
        self._check_columns(path)

        import duckdb

        with duckdb.connect() as con:
            found = aggregate(con, path, q.tenant, plan, rules, dp=epsilon is not None)
        if found.brand_events == 0:
            raise UnknownBrandError(
                f"brand '{q.tenant}' has no campaigns in {q.retailer}'s clean room "
                f"(no events with brand_id '{q.tenant}' in {path})",
                tenant=q.tenant,
                retailer=q.retailer,
            )
        cells = found.rows[: q.limit] if q.limit else found.rows
        entry["fallback_protected"] = found.exposed
        result = CleanRoomResult(
            retailer=q.retailer,
            tenant=q.tenant,
            k=rules.min_cell_size,
            columns=plan.columns,
            rows=[],
            cells_returned=len(cells),
            cells_suppressed=found.withheld,
            secondary_suppressed=found.withheld_secondary,
            dp=None,
            audit_id=audit_id,
        )
        if epsilon is not None:
            # Noise first: a release that fails here has charged nothing.
            scales = self._add_noise(cells, plan, rules, epsilon)
            rows = [self._output_row(cell, plan) for cell in cells]
            payload = result.model_copy(update={"rows": rows}).model_dump(mode="json")
            payload.update(noise_scale=scales, epsilon=epsilon)
            status, earlier = self.ledger.release(
                q.tenant,
                q.retailer,
                key,
                epsilon,
                rules.tenant_epsilon_budget,
                rules.budget_period,
                audit_id,
                payload,
            )
            if earlier is not None:  # another process released the same query meanwhile
                return self._from_release(q, plan, rules, earlier, audit_id, entry)
            entry["epsilon_spent"] = epsilon
            result.rows = rows
            result.dp = self._dp_info(epsilon, epsilon, False, status, scales)
        else:
            result.rows = [self._output_row(cell, plan) for cell in cells]
        entry["cells_returned"] = result.cells_returned
        entry["cells_suppressed"] = result.cells_suppressed
        return result

    def _release_key(self, q: CleanRoomQuery, epsilon: float, path: Path) -> str:
        """What identifies a release: the query (its tenant and retailer are kept apart), its
        epsilon, the events file (size and modification time) and the rules that shape the
        answer."""
        stat = path.stat()
        rules = self.rules_for(q.retailer)
        payload = {
            "query": q.model_dump(mode="json", exclude={"tenant", "retailer", "dp_epsilon"}),
            "epsilon": epsilon,
            "data": [stat.st_size, stat.st_mtime_ns],
            "rules": rules.model_dump(mode="json", include=_RELEASE_RULES),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def _from_release(
        self,
        q: CleanRoomQuery,
        plan: Plan,
        rules: DataAccessRules,
        stored: dict[str, Any],
        audit_id: str,
        entry: dict[str, Any],
    ) -> CleanRoomResult:
        """The stored answer of an earlier release: post-processing, free of charge."""
        rows = stored["rows"]
        for d in ("date", "week"):
            if d in plan.dimensions:
                for row in rows:
                    row[d] = date.fromisoformat(row[d]) if row[d] is not None else None
        status = self.ledger.status(
            q.tenant, q.retailer, rules.tenant_epsilon_budget, rules.budget_period
        )
        epsilon = float(stored["epsilon"])
        entry.update(
            cells_returned=stored["cells_returned"],
            cells_suppressed=stored["cells_suppressed"],
            cached=True,
        )
        return CleanRoomResult(
            retailer=q.retailer,
            tenant=q.tenant,
            k=stored["k"],
            columns=stored["columns"],
            rows=rows,
            cells_returned=stored["cells_returned"],
            cells_suppressed=stored["cells_suppressed"],
            secondary_suppressed=stored.get("secondary_suppressed", 0),
            dp=self._dp_info(epsilon, 0.0, True, status, stored["noise_scale"]),
            audit_id=audit_id,
        )

    @staticmethod
    def _dp_info(
        epsilon: float, charged: float, cached: bool, status: BudgetStatus, scales: dict
    ) -> DPInfo:
        return DPInfo(
            epsilon=epsilon,
            mechanism=MECHANISM,
            charged=charged,
            cached=cached,
            spent=status.spent,
            remaining=status.remaining,
            budget=status.budget,
            budget_period=status.period,
            noise_scale=scales,
        )

    @staticmethod
    def _check_columns(path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = set(pq.read_schema(path).names)
        except (OSError, pa.ArrowException) as err:
            raise InputDataError(f"cannot read {path}: {err}; re-run `rmn harmonize`") from None
        missing = [c for c in EVENT_COLUMNS if c not in names]
        if missing:
            raise InputDataError(
                f"{path} lacks RMIS column(s) {', '.join(missing)}; re-run `rmn harmonize`",
                missing=missing,
            )

    @staticmethod
    def _add_noise(
        cells: list[dict[str, Any]], plan: Plan, rules: DataAccessRules, epsilon: float
    ) -> dict[str, float]:
        """Replace exact counts and sums with noisy ones; returns the Laplace scale of each.
        Raises `DPReleaseError` (and leaves `cells` as they were) when OpenDP cannot."""
        need_count = any(m.agg in ("count", "avg") for m in plan.metrics)
        releases = int(need_count) + len(plan.summed)
        eps_each = epsilon / releases
        scales: dict[str, float] = {}
        updates: dict[str, list[Any]] = {}
        if need_count:
            noisy, scales["events"] = noisy_counts([c["_n"] for c in cells], eps_each)
            updates["_n"] = [max(int(v), 0) for v in noisy]
        for m in plan.summed:
            noisy, scales[m] = noisy_sums(
                [float(c[f"sum_{m}"]) for c in cells], rules.sum_clamp[m], eps_each
            )
            # The metrics are non-negative; clipping is free.
            values = [max(float(v), 0.0) for v in noisy]
            updates[f"sum_{m}"] = [round(v) for v in values] if m in _INTEGER_METRICS else values
        for name, values in updates.items():
            for c, v in zip(cells, values, strict=True):
                c[name] = v
        return scales

    @staticmethod
    def _output_row(cell: dict[str, Any], plan: Plan) -> dict[str, Any]:
        row = {d: cell[d] for d in plan.dimensions}
        for m in plan.metrics:
            if m.agg == "count":
                value: float | int = int(cell["_n"])
            elif m.agg == "sum":
                value = cell[f"sum_{m.base}"]
            else:
                value = float(cell[f"sum_{m.base}"]) / max(int(cell["_n"]), 1)
            # Drop float summation noise (1e-12 USD) that only clutters the output.
            row[m.output] = round(value, 6) if isinstance(value, float) else int(value)
        return row
