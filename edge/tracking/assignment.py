"""Minimum-cost assignment of a rectangular cost matrix (the Hungarian method, numpy only).

The edge install has no scipy, and a store camera sees a handful of people, so an O(n^3)
shortest-augmenting-path solver over the (tracks x detections) matrix costs microseconds.
"""

from __future__ import annotations

import numpy as np


def min_cost_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(rows, cols)`` of a minimum-total-cost matching, like scipy's
    ``linear_sum_assignment``: every row is matched when rows <= cols, else every column."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError("cost must be a 2-D matrix")
    if cost.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n_rows, n_cols = cost.shape
    # Potentials u (rows) and v (columns), 1-based with a virtual column 0 (e-maxx formulation).
    u = np.zeros(n_rows + 1)
    v = np.zeros(n_cols + 1)
    row_of_col = np.zeros(n_cols + 1, dtype=np.int64)  # 0 = column free
    way = np.zeros(n_cols + 1, dtype=np.int64)
    for row in range(1, n_rows + 1):
        row_of_col[0] = row
        col0 = 0
        min_reduced = np.full(n_cols + 1, np.inf)
        used = np.zeros(n_cols + 1, dtype=bool)
        while True:
            used[col0] = True
            r0 = row_of_col[col0]
            free = ~used[1:]
            reduced = cost[r0 - 1] - u[r0] - v[1:]
            better = free & (reduced < min_reduced[1:])
            min_reduced[1:][better] = reduced[better]
            way[1:][better] = col0
            candidates = np.where(free, min_reduced[1:], np.inf)
            col1 = int(np.argmin(candidates)) + 1
            delta = candidates[col1 - 1]
            u[row_of_col[used]] += delta
            v[used] -= delta
            min_reduced[1:][free] -= delta
            col0 = col1
            if row_of_col[col0] == 0:
                break
        while col0:  # flip the augmenting path
            col1 = way[col0]
            row_of_col[col0] = row_of_col[col1]
            col0 = col1
    cols = np.nonzero(row_of_col[1:])[0]
    rows = row_of_col[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


def match(cost: np.ndarray, max_cost: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Assign rows to columns, keeping only pairs with ``cost <= max_cost``.

    Returns ``(pairs, unmatched_rows, unmatched_cols)``. Pairs above the gate are set to a
    large cost before solving so that they never displace a feasible pair.
    """
    n_rows, n_cols = cost.shape
    if n_rows == 0 or n_cols == 0:
        return [], list(range(n_rows)), list(range(n_cols))
    gated = np.where(cost <= max_cost, cost, max_cost + 1e5)
    rows, cols = min_cost_assignment(gated)
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols) if cost[r, c] <= max_cost]
    matched_rows = {r for r, _ in pairs}
    matched_cols = {c for _, c in pairs}
    return (
        pairs,
        [r for r in range(n_rows) if r not in matched_rows],
        [c for c in range(n_cols) if c not in matched_cols],
    )
