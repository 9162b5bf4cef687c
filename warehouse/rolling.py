"""Centred time windows over sorted samples, per group: Polars' rolling kernels, one call for all groups."""

from __future__ import annotations

import polars as pl


def run_ids(columns: list[str]) -> pl.Expr:
    """A number per stretch of rows where `columns` keep their values (rows sorted; nulls compare
    equal), counting up in row order."""
    changed = pl.any_horizontal(*(pl.col(c).ne_missing(pl.col(c).shift(1)) for c in columns))
    return changed.cum_sum().cast(pl.Int64)


def centred_rolling(frame: pl.DataFrame, seconds: float, keys: list[str], aggs: list[pl.Expr]) -> pl.DataFrame:
    """`aggs` over the centred window (t − s/2, t + s/2] of each row, within `keys`, in the row order
    of `frame` (which must be sorted by `keys` and `ts`).  Keep `aggs` plain: one column, no filter."""
    period = int(seconds * 1e6)
    inputs = dict.fromkeys(name for agg in aggs for name in agg.meta.root_names())  # one group key, only what is rolled
    grouped = frame.select(run_ids(keys).alias("_group"), "ts", *inputs)
    rolled = grouped.rolling("ts", period=f"{period}us", offset=f"-{period // 2}us", group_by="_group").agg(aggs)
    # `rolling` may emit the groups in another order (each in row order); rows tied on (group, ts) share a window.
    if not rolled["_group"].is_sorted():
        rolled = rolled.sort("_group", "ts", maintain_order=True)
    return rolled.drop("_group", "ts")
