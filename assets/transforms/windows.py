"""Centred time windows over sorted samples, kept to plain aggregations so Polars' rolling kernels do the work.

A filtered aggregation inside a rolling window (`x.filter(ok).last()`) makes Polars evaluate an
expression per window; a plain one (`x.median()`, `x.last()`) runs a kernel over the whole column.
So masks are applied to columns before rolling (nulls are skipped by the kernels), and "the first and
last masked value of a window" is read from fills: the window's first row carries the next masked
value at or after it, its last row the previous one at or before it.
"""

from __future__ import annotations

import polars as pl

from retrostride.warehouse.rolling import centred_rolling, run_ids  # also read by warehouse.motion


def centred_rolling_at(
    frame: pl.DataFrame, seconds: float, keys: list[str], aggs: list[pl.Expr], at: pl.Series
) -> pl.DataFrame:
    """`centred_rolling` at the rows where the mask `at` holds, null elsewhere: only the rows inside
    their windows are rolled, which is cheap when they are few (a median that few rows need)."""
    period = int(seconds * 1e6)
    before, after = period // 2, period - period // 2  # the window of a row at t is (t − before, t + after]
    t, group = pl.col("ts").dt.epoch("us"), pl.col("_group")
    t_at, group_at = pl.when(pl.col("_at")).then(t), pl.when(pl.col("_at")).then(group)
    in_a_window = ((t_at.forward_fill() >= t - after) & (group_at.forward_fill() == group)) | (
        (t_at.backward_fill() < t + before) & (group_at.backward_fill() == group)
    )
    inputs = dict.fromkeys(name for agg in aggs for name in agg.meta.root_names())
    rows = (
        frame.select(run_ids(keys).alias("_group"), "ts", *inputs, at.alias("_at"))
        .with_row_index("_row")
        .filter(in_a_window.fill_null(False))
    )
    rolled = centred_rolling(rows, seconds, ["_group"], aggs).filter(rows["_at"])
    indices = rows["_row"].filter(rows["_at"])
    return pl.DataFrame(
        pl.repeat(None, frame.height, dtype=values.dtype, eager=True).alias(values.name).scatter(indices, values)
        for values in rolled
    )


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


def edge_change(name: str, column: str) -> pl.Expr:
    """Last minus first masked value of `column` in a rolled window.  Without a masked row in the
    window the "first" lies after the "last": gate on a column that only grows (time, cumulative
    distance), whose change is then ≤ 0, as it is with a single masked row."""
    return pl.col(_edge(name, "last", column)) - pl.col(_edge(name, "first", column))


def _edge(name: str, side: str, column: str) -> str:
    return f"_{name}_{side}{column}"
