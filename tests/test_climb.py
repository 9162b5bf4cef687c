"""The climb's hysteresis band, columnar, against the sample-by-sample play operator it replaced."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from retrostride.connectors.fit_columnar import decode_fit_columnar
from retrostride.warehouse.motion import CLIMB_HYSTERESIS_M, _hysteresis
from tests.conftest import corpus_files


def stepwise_hysteresis(altitude: np.ndarray, group: np.ndarray, band_m: float) -> np.ndarray:
    """The loop `_hysteresis` was before it went columnar (commit dd2f97f), kept as the reference."""
    out = np.full(len(altitude), np.nan)
    level, current = None, None
    for i, (value, g) in enumerate(zip(altitude.tolist(), group.tolist(), strict=True)):
        if g != current:
            level, current = None, g
        if math.isnan(value):
            continue
        if level is None or value < level:
            level = value
        elif value > level + band_m:
            level = value - band_m
        out[i] = level
    return out


@pytest.mark.parametrize("seed", range(40))
def test_hysteresis_equals_the_stepwise_band_on_generated_altitudes(seed):
    """Random walks recorded in steps of 1, 0.2 or 0.1 m (differences of exactly the band included),
    with gaps and several activities, some of one sample."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4000))
    resolution = float(rng.choice([1.0, 0.2, 0.1]))
    altitude = np.round(np.cumsum(rng.normal(0, rng.choice([0.1, 0.6, 3.0]), n)) / resolution) * resolution + 250
    altitude[rng.random(n) < rng.choice([0.0, 0.05, 0.6])] = np.nan
    group = np.sort(rng.integers(0, int(rng.integers(1, 30)), n))
    expected = stepwise_hysteresis(altitude, group, CLIMB_HYSTERESIS_M)
    assert np.array_equal(_hysteresis(altitude, group, CLIMB_HYSTERESIS_M), expected, equal_nan=True)
    assert np.nanmax(np.abs(expected - altitude)) <= CLIMB_HYSTERESIS_M  # the reference does band the altitude


def test_hysteresis_equals_the_stepwise_band_on_the_corpus():
    """Every corpus FIT file's recorded altitudes, one group per file, raw and as a 5-sample median."""
    frames = []
    for number, corpus_file in enumerate(corpus_files("fit", "ok")):
        records = decode_fit_columnar(corpus_file.path).records
        frames.append(records.select(pl.col("altitude_m").cast(pl.Float64), pl.lit(number).alias("file")))
    if not frames:
        pytest.skip("corpora not found")
    recorded = pl.concat(frames)
    smoothed = recorded.select(pl.col("altitude_m").rolling_median(5, min_samples=1).over("file"), "file")
    for frame in (recorded, smoothed):
        altitude = frame["altitude_m"].fill_null(np.nan).to_numpy()
        group = frame["file"].to_numpy()
        assert np.isfinite(altitude).sum() > 10_000
        expected = stepwise_hysteresis(altitude, group, CLIMB_HYSTERESIS_M)
        assert np.array_equal(_hysteresis(altitude, group, CLIMB_HYSTERESIS_M), expected, equal_nan=True)
