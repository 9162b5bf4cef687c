"""Window statistics, altitude cleaning and gap markers, columnar, against the Polars formulations they replaced."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from retrostride.assets.transforms.gait import _running_cadence
from retrostride.assets.transforms.segments import _DETECTION_COLUMNS, record_intervals, timed_records, with_intervals
from retrostride.warehouse import rolling
from retrostride.warehouse.motion import (
    ALTITUDE_SMOOTHING_S,
    ALTITUDE_SPIKE_M,
    ALTITUDE_SPIKE_WINDOW_S,
    CLIMB_HYSTERESIS_M,
    _hysteresis,
    cleaned_altitude,
)
from retrostride.warehouse.rolling import (
    centred_rolling,
    centred_window_rows,
    run_ids,
    sorted_medians,
    window_statistic,
)

START = datetime(2024, 5, 1, tzinfo=UTC)


def samples(seed: int, groups: int = 12) -> pl.DataFrame:
    """Groups sampled every second, every few seconds and at 20 Hz (windows wider than
    `rolling.NARROW_WINDOW`), with ties on time; values with nulls and repeats."""
    rng = np.random.default_rng(seed)
    parts = []
    for group in range(groups):
        n = int(rng.integers(5, 400))
        step = [1.0, 3.0, 0.05][group % 3]
        offsets = np.cumsum(rng.choice([0.0, step, step, 1.5 * step], n))  # 0: a tie on time
        values = rng.choice(rng.normal(135, 25, 60), n)  # repeats; walking to running cadences, across 128
        values[rng.random(n) < 0.15] = np.nan
        parts.append(
            pl.DataFrame({"activity_id": f"a{group:02d}", "_us": (offsets * 1e6).astype(np.int64), "value": values})
        )
    return pl.concat(parts).select(
        "activity_id",
        (pl.lit(START) + pl.duration(microseconds=pl.col("_us"))).alias("ts"),
        pl.col("value").fill_nan(None),
        pl.col("value").fill_nan(None).alias("altitude_m"),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("seconds", [5.0, 10.0])
def test_window_medians_equal_polars_rolling_medians(seed, seconds, monkeypatch):
    monkeypatch.setattr(rolling, "SORTED_CELLS", 512)  # many chunks of windows
    frame = samples(seed, groups=90)  # enough even windows for a differently rounded midpoint to show
    first, last = centred_window_rows(frame, seconds, ["activity_id"])
    medians = window_statistic(frame["value"].to_numpy(), first, last, sorted_medians)
    expected = centred_rolling(frame, seconds, ["activity_id"], [pl.col("value").median()]).to_series()
    assert pl.Series(medians).fill_nan(None).equals(expected, check_names=False, null_equal=True)
    assert (last - first + 1).max() > rolling.NARROW_WINDOW  # the dense group's windows were sorted apart


@pytest.mark.parametrize("seed", [4, 5])
def test_cadence_spread_equals_the_window_by_window_deviation(seed):
    """Where it may exceed the limit, the spread is the median absolute deviation over the median
    Polars computes window by window; elsewhere that one is within the limit."""
    frame = samples(seed)
    most = 0.02
    first, last = centred_window_rows(frame, 10.0, ["activity_id"])
    found = window_statistic(frame["value"].to_numpy(), first, last, lambda w, c: _running_cadence(w, c, most))
    median = pl.col("value").median()
    expected = (
        frame.with_columns(pl.col("value").alias("v"))
        .rolling("ts", period="10s", offset="-5s", group_by="activity_id")
        .agg(median.alias("median"), ((pl.col("v") - median).abs().median() / median).alias("spread"))
    )
    assert pl.Series(found[:, 0]).fill_nan(None).equals(expected["median"], check_names=False, null_equal=True)
    computed = ~np.isnan(found[:, 1])
    assert np.array_equal(found[computed, 1], expected["spread"].to_numpy()[computed])
    assert (expected["spread"].filter(pl.Series(~computed)).drop_nulls() <= most).all()
    assert computed.any() and not computed.all()


def cleaned_altitude_rolling_every_activity(records: pl.DataFrame) -> pl.Series:
    """`cleaned_altitude` as it was (commit f992f36): the minute's median rolled over every activity."""
    frame = records.select("activity_id", "ts", "altitude_m").with_row_index("_row")
    keys = ["activity_id"]
    median = centred_rolling(frame, ALTITUDE_SPIKE_WINDOW_S, keys, [pl.col("altitude_m").median()]).to_series()
    kept = frame.with_columns(
        pl.when((pl.col("altitude_m") - median).abs() <= ALTITUDE_SPIKE_M)
        .then(pl.col("altitude_m"))
        .alias("altitude_m")
    )
    smooth = centred_rolling(kept, ALTITUDE_SMOOTHING_S, keys, [pl.col("altitude_m").median()]).to_series()
    smooth = pl.when(kept["altitude_m"].is_not_null()).then(smooth).otherwise(None)
    smoothed = kept.select(smooth.alias("altitude_m"), run_ids(keys).alias("_activity"))
    banded = _hysteresis(smoothed["altitude_m"].to_numpy(), smoothed["_activity"].to_numpy(), CLIMB_HYSTERESIS_M)
    return pl.Series("altitude_m", banded).fill_nan(None)


@pytest.mark.parametrize("seed", [6, 7])
def test_altitude_is_cleaned_as_when_every_activity_was_rolled(seed):
    """Every other activity climbs (a random walk) and has spikes; the others stay within a few metres."""
    rng = np.random.default_rng(seed)
    frame = samples(seed)
    steps = rng.normal(0, 0.8, frame.height)
    spikes = np.where(rng.random(frame.height) < 0.02, rng.choice([-60.0, 45.0], frame.height), 0.0)
    hilly = pl.col("activity_id").rank("dense") % 2 == 0
    frame = frame.with_columns(pl.Series("_step", steps), pl.Series("_spike", spikes)).with_columns(
        pl.when(pl.col("altitude_m").is_not_null())
        .then(
            100.0
            + pl.when(hilly)
            .then(pl.col("_step").cum_sum().over("activity_id") + pl.col("_spike"))
            .when((pl.col("activity_id") == "a00") & pl.int_range(pl.len()).over("activity_id").is_between(3, 5))
            .then(27.0)  # a flat activity's spike, just above the limit
            .otherwise("_step")
        )
        .alias("altitude_m")
    )
    span = frame.group_by("activity_id").agg((pl.col("altitude_m").max() - pl.col("altitude_m").min()).alias("m"))
    assert (span["m"] > ALTITUDE_SPIKE_M).any() and (span["m"] <= ALTITUDE_SPIKE_M).any()
    assert cleaned_altitude(frame).equals(cleaned_altitude_rolling_every_activity(frame), null_equal=True)


def test_gap_markers_follow_their_samples_as_a_sort_would_put_them():
    frame = samples(8).with_columns(
        pl.lit("athlete").alias("athlete_id"),
        pl.col("value").alias("distance_m"),
        pl.col("value").alias("speed_mps"),
        pl.col("value").alias("cadence_spm"),
        *(pl.lit(None, pl.Float64).alias(c) for c in ("lat_deg", "lon_deg", "facing_deg")),
    )
    max_gap_s, hold_s = 2.0, 1.0
    found = record_intervals(frame, max_gap_s, hold_s)
    intervals = with_intervals(timed_records(frame, _DETECTION_COLUMNS), max_gap_s)
    pauses = intervals.filter(pl.col("interval_s") > max_gap_s)
    assert pauses.height > 10
    assert found.equals(found.sort("activity_id", "ts", maintain_order=True))  # where a stable sort puts them
    assert (
        found.filter(~pl.col("is_gap_marker")).select("activity_id", "ts").equals(intervals.select("activity_id", "ts"))
    )
    after = found.select(
        pl.col("is_gap_marker"),
        (pl.col("ts") - pl.col("ts").shift(1)).dt.total_microseconds().alias("_since_us"),
        pl.col("interval_s").shift(1).alias("_held_s"),
        (pl.col("interval_s").shift(1) + pl.col("interval_s")).alias("_gap_s"),
    ).filter("is_gap_marker")
    assert after.height == pauses.height
    assert (after["_since_us"] == hold_s * 1e6).all() and (after["_held_s"] == hold_s).all()
    assert after["_gap_s"].equals(pauses["interval_s"], check_names=False)
