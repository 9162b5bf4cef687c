"""Centred time windows over sorted samples, per group: Polars' rolling kernels, one call for all groups;
order statistics of many windows at once as sorted rows of a matrix."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl


def run_ids(columns: list[str]) -> pl.Expr:
    """A number per stretch of rows where `columns` keep their values (rows sorted; nulls compare
    equal), counting up in row order."""
    changed = pl.any_horizontal(*(pl.col(c).ne_missing(pl.col(c).shift(1)) for c in columns))
    return changed.cum_sum().cast(pl.Int64).set_sorted()  # flagged: grouping by it then takes its stretches as they are


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


#: Window values held at once when windows are sorted row by row (`window_statistic`): bounds the
#: memory of dense recordings, whose windows hold many samples.
SORTED_CELLS = 1 << 22
#: Windows are sorted in classes of similar length (up to this, then twice as long, ...), so one dense
#: activity does not widen every window's row.
NARROW_WINDOW = 64


def centred_window_rows(frame: pl.DataFrame, seconds: float, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The first and last row of each row's `centred_rolling` window (row numbers of `frame`)."""
    bounds = centred_rolling(
        frame.with_row_index("_row"), seconds, keys, [pl.col("_row").first().alias("_first"), pl.col("_row").last()]
    )
    return bounds["_first"].to_numpy().astype(np.int64), bounds["_row"].to_numpy().astype(np.int64)


def window_counts(mask: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """How many rows of each window (rows `first`..`last`) `mask` holds at."""
    running = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
    return running[last + 1] - running[first]


def window_statistic(
    values: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    statistic: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """`statistic(windows, counts)` of each window of `values` (rows `first`..`last`; NaN: missing),
    given the windows as rows of a matrix, each sorted with its `counts` values first and NaN after
    them: a rolling order statistic (a median, a median absolute deviation) of many windows at once,
    one value per window or a row of them."""
    values = values.astype(np.float64)
    counts = window_counts(~np.isnan(values), first, last)
    lengths = last - first + 1
    found = np.empty(0)
    size_class = np.ceil(np.log2(np.maximum(lengths, NARROW_WINDOW))).astype(np.int64)
    for size in range(int(size_class.min(initial=0)), int(size_class.max(initial=-1)) + 1):
        of_size = np.flatnonzero(size_class == size)
        if not len(of_size):
            continue
        width = int(lengths[of_size].max())
        starts = np.lib.stride_tricks.sliding_window_view(np.concatenate([values, np.full(width, np.nan)]), width)
        step = max(1, SORTED_CELLS // width)
        for start in range(0, len(of_size), step):
            chosen = of_size[start : start + step]
            windows = starts[first[chosen]]  # a copy: the `width` values from each window's first row
            shorter = np.flatnonzero(lengths[chosen] < width)
            windows[shorter] = np.where(np.arange(width) < lengths[chosen[shorter], None], windows[shorter], np.nan)
            windows.sort(axis=1)
            part = statistic(windows, counts[chosen])
            if not found.size:
                found = np.empty((len(first), *part.shape[1:]))
            found[chosen] = part
    return found


def sorted_medians(windows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The median of each row's first `counts` values (sorted), as Polars computes one: the middle
    value, or the lower middle one plus half the distance to the upper; NaN without values."""
    at = np.arange(len(windows)) * windows.shape[1]
    flat = windows.ravel()
    low = flat[at + np.maximum(counts - 1, 0) // 2]
    high = flat[at + np.minimum(counts // 2, windows.shape[1] - 1)]
    return np.where(counts % 2 == 1, low, low + (high - low) * 0.5)
