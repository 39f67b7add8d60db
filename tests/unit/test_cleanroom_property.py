"""The clean room's property test: for random events, tenants, groupings, metrics and filters,
no returned cell covers fewer than k events, no blocked field comes back (a query naming one is
refused), no other brand's rows show, every number matches a reference computed directly
from the events, every cell is either returned or counted as withheld, and the cells released
do not depend on the order the query names its dimensions in (differencing protection:
tests/unit/test_cleanroom_differencing.py)."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cleanroom_support import (
    AUDIENCES,
    BRANDS,
    GEOS,
    PLACEMENTS,
    START,
    SUM_METRICS,
    brand_gtins,
    random_events,
    rules,
    week_start,
    write_events,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tools.cleanroom import (
    DEFAULT_BLOCKED_FIELDS,
    DIMENSIONS,
    METRICS,
    CleanRoom,
    CleanRoomQuery,
    CleanRoomResult,
    Filter,
)
from tools.cleanroom.disclosure import DisclosureError
from tools.errors import (
    QueryRefusedError,
    UnknownBrandError,
)


def reference_column(ev: dict[str, np.ndarray], dim: str) -> np.ndarray:
    if dim == "week":
        return week_start(ev["event_date"])
    return ev[DIMENSIONS[dim]]


def as_reference_value(dim: str, value: Any) -> Any:
    return np.datetime64(value, "D") if dim in ("date", "week") else value


def reference_mask(ev: dict[str, np.ndarray], tenant: str, filters: list[Filter]) -> np.ndarray:
    mask = ev["brand_id"] == tenant
    for f in filters:
        col = reference_column(ev, f.field)
        vals = f.value if isinstance(f.value, list) else [f.value]
        vals = [as_reference_value(f.field, v) for v in vals]
        if f.op == "in":
            mask &= np.isin(col, np.array(vals, dtype=col.dtype))
        elif f.op == "between":
            mask &= (col >= vals[0]) & (col <= vals[1])
        else:
            ops = {
                "=": np.equal,
                "!=": np.not_equal,
                "<": np.less,
                "<=": np.less_equal,
                ">": np.greater,
                ">=": np.greater_equal,
            }
            mask &= ops[f.op](col, vals[0])
    return mask


def iso(offset: int) -> str:
    return (START + timedelta(days=offset)).isoformat()


filter_strategy = st.one_of(
    st.builds(
        lambda op, d: Filter(field="date", op=op, value=iso(d)),
        st.sampled_from(["<", "<=", ">", ">=", "=", "!="]),
        st.integers(-2, 22),
    ),
    st.builds(
        lambda a, b: Filter(field="date", op="between", value=[iso(min(a, b)), iso(max(a, b))]),
        st.integers(0, 20),
        st.integers(0, 20),
    ),
    st.builds(
        lambda op, d: Filter(field="week", op=op, value=iso(d)),
        st.sampled_from([">=", "<", "="]),
        st.integers(-7, 21),
    ),
    st.builds(
        lambda op, p: Filter(field="placement", op=op, value=p),
        st.sampled_from(["=", "!="]),
        st.sampled_from(PLACEMENTS),
    ),
    st.builds(
        lambda ps: Filter(field="placement", op="in", value=ps),
        st.lists(st.sampled_from(PLACEMENTS), min_size=1, max_size=3, unique=True),
    ),
    st.builds(
        lambda gs: Filter(field="geo", op="in", value=gs),
        st.lists(st.sampled_from(GEOS), min_size=1, max_size=3, unique=True),
    ),
    st.builds(lambda a: Filter(field="audience", op="=", value=a), st.sampled_from(AUDIENCES)),
    # Other brands' campaigns and SKUs too: filtering on them must never reveal anything.
    st.builds(
        lambda b, i: Filter(field="campaign", op="=", value=f"{b}_c{i}"),
        st.sampled_from(BRANDS),
        st.integers(0, 2),
    ),
    st.builds(
        lambda b, i: Filter(field="sku", op="!=", value=brand_gtins(b)[i]),
        st.sampled_from(BRANDS),
        st.integers(0, 3),
    ),
)

metric_strategy = st.one_of(
    st.sampled_from(list(METRICS)),
    st.sampled_from([f"avg:{m}" for m in SUM_METRICS]),
)


@st.composite
def blocked_injection(draw: st.DrawFn) -> tuple[str, str] | None:
    if not draw(st.booleans()):
        return None
    name = draw(st.sampled_from(DEFAULT_BLOCKED_FIELDS))
    spelled = draw(st.sampled_from([name, name.upper(), name.replace("_", "-").title()]))
    return draw(st.sampled_from(["group_by", "metrics", "avg_metric", "filters"])), spelled


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(30, 600),
    k=st.integers(1, 60),
    tenant=st.sampled_from(BRANDS),
    group_by=st.lists(st.sampled_from(list(DIMENSIONS)), max_size=3, unique=True),
    metrics=st.lists(metric_strategy, min_size=1, max_size=4, unique=True),
    filters=st.lists(filter_strategy, max_size=2),
    blocked=blocked_injection(),
)
def test_no_cell_below_k_no_blocked_field_no_other_brand(
    seed: int,
    n: int,
    k: int,
    tenant: str,
    group_by: list[str],
    metrics: list[str],
    filters: list[Filter],
    blocked: tuple[str, str] | None,
) -> None:
    ev = random_events(seed, n)
    if blocked is not None:
        group_by, metrics, filters = inject_blocked(blocked, group_by, metrics, filters)
    query = CleanRoomQuery(
        tenant=tenant, retailer="alpha", group_by=group_by, metrics=metrics, filters=filters
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_events(Path(tmp), "alpha", ev)
        room = CleanRoom(Path(tmp), rules_for=rules(min_cell_size=k))
        if blocked is not None:
            with pytest.raises(QueryRefusedError) as refused:
                room.query(query)
            canonical = blocked[1].lower().replace("-", "_")
            assert f"field '{canonical}' is blocked" in refused.value.message
            assert "blocked_fields" in refused.value.message
            assert room.audit.tail(1)[0]["status"] == "refused"
            event("refused: blocked field")
            return
        if not (ev["brand_id"] == tenant).any():
            with pytest.raises(UnknownBrandError):
                room.query(query)
            return
        try:
            result = room.query(query)
        except DisclosureError:
            # A table whose totals alone would give a small cell away is refused.
            event("refused: disclosure risk")
            return
        if len(group_by) > 1:
            swapped = room.query(query.model_copy(update={"group_by": group_by[::-1]}))
            assert sorted(map(repr, swapped.rows)) == sorted(
                repr({d: r[d] for d in group_by[::-1]} | r) for r in result.rows
            )
    event(f"cells returned: {'some' if result.rows else 'none'}")
    event(f"cells suppressed: {'some' if result.cells_suppressed else 'none'}")

    blocked_names = set(DEFAULT_BLOCKED_FIELDS)
    assert not blocked_names & set(result.columns)
    assert all(not blocked_names & set(row) for row in result.rows)
    assert set(result.columns) <= set(DIMENSIONS) | set(METRICS) | {f"avg_{m}" for m in SUM_METRICS}

    mask = reference_mask(ev, tenant, filters)
    dims = list(dict.fromkeys(group_by))
    assert result.k == k
    check_rows_against_reference(result, ev, tenant, mask, dims, k)
    check_suppressed_cells(result, ev, mask, dims, k)


def inject_blocked(
    blocked: tuple[str, str], group_by: list[str], metrics: list[str], filters: list[Filter]
) -> tuple[list[str], list[str], list[Filter]]:
    """The query's fields with a blocked field named where `blocked` says."""
    where, name = blocked
    if where == "group_by":
        group_by = [*group_by, name]
    elif where == "metrics":
        metrics = [name, *metrics]
    elif where == "avg_metric":
        metrics = [*metrics, f"avg:{name}"]
    else:
        filters = [*filters, Filter(field=name, op="=", value="1")]
    return group_by, metrics, filters


def check_rows_against_reference(
    result: CleanRoomResult,
    ev: dict[str, np.ndarray],
    tenant: str,
    mask: np.ndarray,
    dims: list[str],
    k: int,
) -> None:
    """Every returned cell covers at least k of the tenant's events, and its numbers are the
    reference's; campaigns and SKUs are the tenant's own."""
    own_campaigns = set(ev["campaign_id"][ev["brand_id"] == tenant])
    own_skus = set(ev["gtin"][ev["brand_id"] == tenant])
    for row in result.rows:
        cell = mask.copy()
        for d in dims:
            cell &= reference_column(ev, d) == as_reference_value(d, row[d])
        count = int(cell.sum())
        assert count >= k, f"cell {row} covers {count} < k={k} events"
        if "events" in row:
            assert row["events"] == count
        for m in SUM_METRICS:
            exact = float(ev[METRICS[m]][cell].sum())
            if m in row:
                assert row[m] == pytest.approx(exact, rel=1e-9, abs=1e-6)
            if f"avg_{m}" in row:
                assert row[f"avg_{m}"] == pytest.approx(exact / count, rel=1e-9, abs=1e-6)
        if "campaign" in row:
            assert row["campaign"] in own_campaigns
        if "sku" in row:
            assert row["sku"] in own_skus


def check_suppressed_cells(
    result: CleanRoomResult, ev: dict[str, np.ndarray], mask: np.ndarray, dims: list[str], k: int
) -> None:
    """Every reference cell is either returned or withheld, every cell under k is withheld
    (more may be, to protect those: secondary suppression), and the withheld are counted."""
    if dims:
        keys = [reference_column(ev, d)[mask] for d in dims]
        all_cells = {tuple(key) for key in zip(*keys, strict=True)}
        small = sum(
            1
            for key in all_cells
            if int(
                np.logical_and.reduce(
                    [mask] + [reference_column(ev, d) == v for d, v in zip(dims, key, strict=True)]
                ).sum()
            )
            < k
        )
        assert result.cells_returned + result.cells_suppressed == len(all_cells)
        assert result.cells_suppressed >= small
    else:
        total = int(mask.sum())
        assert result.cells_returned + result.cells_suppressed == (1 if total > 0 else 0)
        if 0 < total < k:
            assert result.cells_suppressed == 1
