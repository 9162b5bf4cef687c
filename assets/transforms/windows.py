"""Centred time windows over sorted samples: Polars' rolling kernels for plain aggregations, each
window's first and last row for counts and edges, its sorted values for medians.

A filtered aggregation inside a rolling window (`x.filter(ok).last()`) makes Polars evaluate an
expression per window; a plain one (`x.median()`, `x.last()`) runs a kernel over the whole column.
So masks are applied to columns before rolling (nulls are skipped by the kernels), and "the first and
last masked value of a window" is read from fills: the window's first row carries the next masked
value at or after it, its last row the previous one at or before it.  An order statistic no kernel
has (a median absolute deviation), or medians of a few windows, come from `window_statistic`.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from retrostride.warehouse.rolling import (  # in warehouse, where motion reads them too
    centred_rolling,
    centred_window_rows,
    run_ids,
    sorted_medians,
    window_counts,
    window_statistic,
)

__all__ = [
    "centred_rolling",
    "centred_window_rows",
    "edge_aggs",
    "edge_change",
    "edge_rows",
    "nulled",
    "run_ids",
    "sorted_medians",
    "window_counts",
    "window_medians_at",
    "window_statistic",
    "with_edges",
]


def window_medians_at(values: pl.Series, first: np.ndarray, last: np.ndarray, at: np.ndarray) -> pl.Series:
    """The median of `values` over the windows (rows `first`..`last`, `centred_window_rows`) of the
    rows `at`, null at the others: cheap when few rows need one."""
    medians = window_statistic(values.to_numpy(), first[at], last[at], sorted_medians)
    return (
        pl.repeat(None, len(values), dtype=pl.Float64, eager=True).alias(values.name).scatter(at, nulled("", medians))
    )


def nulled(name: str, values: np.ndarray) -> pl.Series:
    """`values` as a Series, NaN (no value) as null."""
    return pl.Series(name, values, dtype=pl.Float64, nan_to_null=True)


def with_edges(frame: pl.DataFrame, name: str, mask: pl.Expr, columns: list[str], keys: list[str]) -> pl.DataFrame:
    """Adds, for each of `columns`, its value at the next `mask` row at or after each row and at the
    last one at or before it (within `keys`): what `edge_aggs` rolls into a window's edges."""
    masked = {column: pl.when(mask).then(pl.col(column)) for column in columns}
    return frame.with_columns(
        *(values.backward_fill().over(keys).alias(_edge(name, "first", c)) for c, values in masked.items()),
        *(values.forward_fill().over(keys).alias(_edge(name, "last", c)) for c, values in masked.items()),
    )


def edge_aggs(name: str, columns: list[str]) -> list[pl.Expr]:
    """Rolling aggregations giving each window's first and last masked values of `columns`."""
    return [
        *(pl.col(_edge(name, "first", c)).first() for c in columns),
        *(pl.col(_edge(name, "last", c)).last() for c in columns),
    ]


def edge_rows(name: str, columns: list[str], first: np.ndarray, last: np.ndarray) -> list[pl.Expr]:
    """`edge_aggs` read from each window's `first` and `last` rows (`centred_window_rows`)."""
    return [
        *(pl.col(_edge(name, "first", c)).gather(first) for c in columns),
        *(pl.col(_edge(name, "last", c)).gather(last) for c in columns),
    ]


def edge_change(name: str, column: str) -> pl.Expr:
    """Last minus first masked value of `column` in a rolled window.  Without a masked row in the
    window the "first" lies after the "last": gate on a column that only grows (time, cumulative
    distance), whose change is then ≤ 0, as it is with a single masked row."""
    return pl.col(_edge(name, "last", column)) - pl.col(_edge(name, "first", column))


def _edge(name: str, side: str, column: str) -> str:
    return f"_{name}_{side}{column}"
