"""Secondary suppression (`tools.cleanroom.disclosure`): on random tables of one to four
dimensions, no withheld cell under k is determined by the released cells and every total of
the table that covers k or more events, checked by exact linear algebra."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from tools.cleanroom.disclosure import DisclosureError, protect, protect_linked


def random_table(rng: np.random.Generator, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct cells with skewed counts (many under k, a few large); in one and two
    dimensions some combinations are missing (more often leave a cell exposed by the totals
    alone in three and four, see the test of that below)."""
    sizes = rng.integers(2, 5 if dims == 4 else 6, size=dims)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in sizes], indexing="ij"), -1)
    codes = grid.reshape(-1, dims)
    keep = rng.random(len(codes)) < (1.0 if dims > 2 else rng.uniform(0.7, 1.0))
    codes = codes[keep]
    counts = np.maximum(1, np.round(rng.lognormal(3.0, 1.2, size=len(codes)))).astype(np.int64)
    return codes, counts


def known_rows(codes: np.ndarray, counts: np.ndarray, k: int, released: np.ndarray) -> np.ndarray:
    """Indicator rows of everything an attacker knows: each released cell and each total over
    any set of dimensions (any coarser query) that covers k or more events."""
    m = codes.shape[1]
    rows = [np.eye(len(codes))[released]]
    for size in range(m):
        for keep in combinations(range(m), size):
            _, group = np.unique(codes[:, list(keep)], axis=0, return_inverse=True)
            group = group.ravel()
            totals = np.bincount(group, weights=counts)
            members = group[None, :] == np.arange(totals.size)[:, None]
            rows.append(members[totals >= k].astype(float))
    return np.vstack(rows)


_PRIME = 2_147_483_647  # 2^31 - 1: products of two residues fit in int64


def determined_cells(a: np.ndarray, cells: np.ndarray) -> list[int]:
    """Cells whose indicator lies in the row space of the 0/1 matrix `a`, by exact row
    reduction over the integers modulo a large prime (no floating point, no BLAS): in the
    reduced form, e_i is in the row space exactly when column i holds a pivot whose row is
    zero everywhere else."""
    m = np.asarray(a, dtype=np.int64) % _PRIME
    rows, cols = m.shape
    pivot_row: dict[int, int] = {}
    r = 0
    for c in range(cols):
        nz = np.flatnonzero(m[r:, c]) + r if r < rows else np.array([], dtype=np.int64)
        if nz.size == 0:
            continue
        m[[r, nz[0]]] = m[[nz[0], r]]
        m[r] = m[r] * pow(int(m[r, c]), _PRIME - 2, _PRIME) % _PRIME
        factor = m[:, c].copy()
        factor[r] = 0
        m = (m - factor[:, None] * m[r][None, :]) % _PRIME
        pivot_row[c] = r
        r += 1
    out = []
    for i in cells:
        row = pivot_row.get(int(i))
        if row is not None and np.count_nonzero(m[row]) == 1:
            out.append(int(i))
    return out


@pytest.mark.parametrize("dims", [1, 2, 3, 4])
def test_no_withheld_cell_follows_from_released_cells_and_totals(dims: int) -> None:
    rng = np.random.default_rng(100 + dims)
    checked = secondary = exposed = primary = 0
    for _ in range(30):
        codes, counts = random_table(rng, dims)
        k = int(rng.integers(10, 60))
        pattern = protect(codes, counts, k)
        assert (pattern.withheld[counts < k]).all()
        assert not pattern.primary[counts >= k].any()
        a = known_rows(codes, counts, k, ~pattern.withheld)
        proven = np.flatnonzero(pattern.primary & ~pattern.exposed)
        assert determined_cells(a, proven) == []
        checked += 1
        secondary += int(pattern.secondary.sum())
        exposed += int(pattern.exposed.sum())
        primary += int(pattern.primary.sum())
    assert checked == 30 and secondary > 0
    # The fallback is the exception: tables with missing cells that no hypercube fits.
    assert exposed <= 0.05 * primary, (exposed, primary)


def test_a_table_whose_totals_give_a_cell_away_falls_back_and_says_so() -> None:
    """A missing cell can make a small cell follow from totals alone: (0,0) = column 0's
    total minus row 1's, row 1 holding only (1,0). No hypercube exists; the cell is withheld
    with a partner on each line and reported as exposed (protected by rule, not proof)."""
    codes = np.array([[0, 0], [0, 1], [1, 0]])
    counts = np.array([5, 60, 60])
    assert determined_cells(known_rows(codes, counts, 50, counts < 0), np.array([0])) == [0]
    pattern = protect(codes, counts, 50)
    assert pattern.exposed.tolist() == [True, False, False]
    assert pattern.withheld.tolist() == [True, True, True]


def test_linked_tables_never_release_what_a_coarser_table_withholds() -> None:
    """A sparse 3-D table (many lines of one cell, as a brand's SKUs x placements x weeks)
    and every coarser grouping, each as its own query releases it: (1) no primary cell of a
    table lies in the span of its own released cells and those its coarser tables release,
    but for those the fallback protects; (2) no table releases a cell whose population is a
    cell a coarser table withholds. What this does not cover: a finer or sibling table whose
    released cells cover most of a withheld cell's parts (see the README)."""
    rng = np.random.default_rng(7)
    inherited = 0
    for _ in range(12):
        codes, counts = random_table(rng, 3)
        keep = rng.random(len(codes)) < 0.45
        codes, counts = codes[keep], counts[keep]
        k = int(rng.integers(10, 60))
        frame = pd.DataFrame(codes, columns=["a", "b", "c"]).assign(_n=counts)
        cache: dict = {}
        protect_linked(frame, ["a", "b", "c"], k, cache)
        released, members = {}, {}
        for dims, pattern in cache.items():
            group = frame.groupby(list(dims), sort=True).ngroup().to_numpy() if dims else (
                np.zeros(len(frame), dtype=np.int64)
            )  # fmt: skip
            members[dims] = group[None, :] == np.arange(pattern.withheld.size)[:, None]
            released[dims] = members[dims][~pattern.withheld].astype(float)
        for dims, pattern in cache.items():
            coarser = [d for d in released if set(d) < set(dims)]
            known = np.vstack([released[d] for d in [dims, *coarser]])
            rank = _rank(known)
            for row in members[dims][pattern.primary & ~pattern.exposed].astype(float):
                assert _rank(np.vstack([known, row])) > rank, f"{dims}: {np.flatnonzero(row)}"
            for finer, fine in cache.items():
                if set(dims) < set(finer):
                    same = (members[finer][:, None, :] == members[dims][None, :, :]).all(axis=2)
                    clash = same[~fine.withheld][:, pattern.withheld]
                    assert not clash.any(), f"{finer} releases a cell {dims} withholds"
                    inherited += int(same[:, pattern.withheld].any(axis=0).sum())
    assert inherited > 0  # the data has such cells


def _rank(m: np.ndarray) -> int:
    """Rank over the integers modulo a large prime (see `determined_cells`)."""
    m = np.asarray(m, dtype=np.int64) % _PRIME
    rank = 0
    for c in range(m.shape[1]):
        nz = np.flatnonzero(m[rank:, c]) + rank if rank < m.shape[0] else np.array([], dtype=int)
        if nz.size == 0:
            continue
        m[[rank, nz[0]]] = m[[nz[0], rank]]
        m[rank] = m[rank] * pow(int(m[rank, c]), _PRIME - 2, _PRIME) % _PRIME
        factor = m[:, c].copy()
        factor[rank] = 0
        m = (m - factor[:, None] * m[rank][None, :]) % _PRIME
        rank += 1
    return rank


def test_k_anonymity_alone_leaves_cells_determined() -> None:
    """The check above can fail: without secondary suppression a lone small cell follows
    from the total."""
    codes = np.array([[0], [1], [2]])
    counts = np.array([50, 49, 51])
    released = counts >= 50
    a = known_rows(codes, counts, 50, released)
    assert determined_cells(a, np.array([1])) == [1]
    pattern = protect(codes, counts, 50)
    assert pattern.withheld.tolist() == [True, True, False]  # the smallest partner goes too
    assert determined_cells(known_rows(codes, counts, 50, ~pattern.withheld), np.array([1])) == []


def test_small_tables_and_limits() -> None:
    nothing = protect(np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=np.int64), 5)
    assert nothing.withheld.size == 0
    tiny = protect(np.array([[0], [1]]), np.array([2, 2]), 5)  # even the total is under k
    assert tiny.withheld.all()
    with pytest.raises(DisclosureError, match="up to 4 dimensions"):
        protect(np.array([[0, 0, 0, 0, 0], [1, 0, 0, 0, 0]]), np.array([1, 100]), 5)
