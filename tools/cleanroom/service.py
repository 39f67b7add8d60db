"""The clean room: aggregate-only, tenant-scoped, k-anonymous queries over harmonized RMIS
events, with optional differential privacy and an audit entry for every query."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tools.cleanroom.audit import AuditLog
from tools.cleanroom.dp import MECHANISM, BudgetStatus, PrivacyLedger, noisy_counts, noisy_sums
from tools.cleanroom.query import ID_PATTERN, CleanRoomQuery, Plan, check_query
from tools.cleanroom.rules import DIMENSIONS, METRICS, DataAccessRules, RulesProvider, policy_rules
from tools.errors import (
    InputDataError,
    QueryRefusedError,
    RMNError,
    UnknownBrandError,
    UnknownRetailerError,
)
from tools.rmis import EVENT_COLUMNS

# Metrics whose RMIS column is an integer; their noisy sums are rounded back to integers.
_INTEGER_METRICS = {m for m, col in METRICS.items() if col and EVENT_COLUMNS[col] == "BIGINT"}


class DPInfo(BaseModel):
    epsilon: float
    mechanism: str
    spent: float
    remaining: float
    budget: float
    noise_scale: dict[str, float]


class CleanRoomResult(BaseModel):
    retailer: str
    tenant: str
    k: int
    columns: list[str]
    rows: list[dict[str, Any]]
    cells_returned: int
    cells_suppressed: int
    dp: DPInfo | None
    audit_id: str


def _check_id(kind: str, value: str) -> None:
    if not re.match(ID_PATTERN, value):
        raise QueryRefusedError(f"malformed {kind} id {value!r}: use lower-case letters, digits, _")


class CleanRoom:
    """`CleanRoom(data_dir).query(CleanRoomQuery(...))`.

    Reads `<data_dir>/rmis/<retailer>/events.parquet`; keeps its audit log and privacy ledger
    in `<data_dir>/cleanroom/`. `rules_for(retailer)` supplies each retailer's rules."""

    def __init__(self, data_dir: Path, rules_for: RulesProvider = policy_rules) -> None:
        self.data_dir = Path(data_dir)
        self.rules_for = rules_for
        self.state_dir = self.data_dir / "cleanroom"
        self.audit = AuditLog(self.state_dir / "audit.jsonl")
        self.ledger = PrivacyLedger(self.state_dir / "privacy_ledger.sqlite")

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
        """Epsilon spent and remaining for `tenant` at `retailer`."""
        _check_id("tenant", tenant)
        self.events_path(retailer)
        rules = self.rules_for(retailer)
        return self.ledger.status(tenant, retailer, rules.tenant_epsilon_budget)

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
        epsilon = q.dp_epsilon or (rules.default_epsilon if rules.dp_required else None)
        if epsilon is not None:
            self.ledger.check(q.tenant, q.retailer, epsilon, rules.tenant_epsilon_budget)
        self._check_columns(path)

        import duckdb

        with duckdb.connect() as con:
            n_own = con.execute(
                "SELECT count(*) FROM read_parquet(?) WHERE brand_id = ?", [str(path), q.tenant]
            ).fetchone()[0]
            if n_own == 0:
                raise UnknownBrandError(
                    f"brand '{q.tenant}' has no campaigns in {q.retailer}'s clean room "
                    f"(no events with brand_id '{q.tenant}' in {path})",
                    tenant=q.tenant,
                    retailer=q.retailer,
                )
            suppressed, cells = self._aggregate(con, path, q, plan, rules, dp=epsilon is not None)

        dp_info = None
        if epsilon is not None:
            status = self.ledger.charge(
                q.tenant, q.retailer, epsilon, rules.tenant_epsilon_budget, audit_id
            )
            entry["epsilon_spent"] = epsilon
            scales = self._add_noise(cells, plan, rules, epsilon)
            dp_info = DPInfo(
                epsilon=epsilon,
                mechanism=MECHANISM,
                spent=status.spent,
                remaining=status.remaining,
                budget=status.budget,
                noise_scale=scales,
            )
        rows = [self._output_row(cell, plan) for cell in cells]
        entry["cells_returned"] = len(rows)
        entry["cells_suppressed"] = suppressed
        return CleanRoomResult(
            retailer=q.retailer,
            tenant=q.tenant,
            k=rules.min_cell_size,
            columns=plan.columns,
            rows=rows,
            cells_returned=len(rows),
            cells_suppressed=suppressed,
            dp=dp_info,
            audit_id=audit_id,
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
    def _aggregate(
        con: Any, path: Path, q: CleanRoomQuery, plan: Plan, rules: DataAccessRules, dp: bool
    ) -> tuple[int, list[dict[str, Any]]]:
        """Per-cell count and sums in DuckDB; returns (cells suppressed, cells kept)."""
        dims = [f'{DIMENSIONS[d]} AS "{d}"' for d in plan.dimensions]
        sums = []
        for m in plan.summed:
            col = METRICS[m]
            # Under DP each row's contribution is clamped so that the sum's sensitivity is bound.
            value = f"least(greatest({col}, 0), {float(rules.sum_clamp[m])!r})" if dp else col
            sums.append(f'sum({value}) AS "sum_{m}"')
        where = " AND ".join(["brand_id = ?", *plan.where])
        group = f"GROUP BY {', '.join(str(i + 1) for i in range(len(dims)))}" if dims else ""
        con.execute(
            f"CREATE TEMP TABLE cells AS SELECT {', '.join([*dims, 'count(*) AS _n', *sums])} "
            f"FROM read_parquet(?) WHERE {where} {group}",
            [str(path), q.tenant, *plan.params],
        )
        k = rules.min_cell_size
        # Without a GROUP BY an empty selection still gives one row with _n = 0.
        suppressed = con.execute(
            "SELECT count(*) FROM cells WHERE _n < ? AND _n > 0", [k]
        ).fetchone()[0]
        order = ", ".join(f'"{d}" NULLS LAST' for d in plan.dimensions)
        order = f"ORDER BY {order}" if order else ""
        limit = f"LIMIT {int(q.limit)}" if q.limit else ""
        cur = con.execute(f"SELECT * FROM cells WHERE _n >= ? {order} {limit}", [k])
        names = [d[0] for d in cur.description]
        return int(suppressed), [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    @staticmethod
    def _add_noise(
        cells: list[dict[str, Any]], plan: Plan, rules: DataAccessRules, epsilon: float
    ) -> dict[str, float]:
        """Replace exact counts and sums with noisy ones; returns the Laplace scale of each."""
        need_count = any(m.agg in ("count", "avg") for m in plan.metrics)
        releases = int(need_count) + len(plan.summed)
        eps_each = epsilon / releases
        scales: dict[str, float] = {}
        if need_count:
            noisy, scales["events"] = noisy_counts([c["_n"] for c in cells], eps_each)
            for c, v in zip(cells, noisy, strict=True):
                c["_n"] = max(int(v), 0)
        for m in plan.summed:
            key = f"sum_{m}"
            noisy, scales[m] = noisy_sums(
                [float(c[key]) for c in cells], rules.sum_clamp[m], eps_each
            )
            for c, v in zip(cells, noisy, strict=True):
                v = max(float(v), 0.0)  # the metrics are non-negative; clipping is free
                c[key] = round(v) if m in _INTEGER_METRICS else v
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
