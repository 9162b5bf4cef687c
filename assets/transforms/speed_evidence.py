"""Speed as evidence of direction where gait cannot speak: faster than anyone has run backward.

An activity without cadence has no gait signature.  What it still shows is how fast it was: the
fastest backward mile reported is 5:30 (Aaron Yoder, 2019; the Guinness record is his 5:54.25 of
2015) and the fastest backward marathon 3:38:27 (Markus Jürgens, 2018), 4.88 and 3.22 m/s; the power
law through both gives 4.56 m/s sustained for ten minutes.  A stretch that covers more than
`speed_only_forward_mps` over a centred `speed_only_window_s` window was not run backward by anyone
on record: it is forward, with the moderate `speed_only_confidence` (device speed can be wrong, and
records move).  Speed never calls anything backward: recreational backward running (1.5–3 m/s)
overlaps every easy forward pace.
"""

from __future__ import annotations

import polars as pl

from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.assets.transforms.windows import centred_rolling, edge_aggs, edge_change, with_edges

_EDGES = ["_d", "_t"]


def speed_direction(samples: pl.DataFrame, config: DetectionConfig) -> pl.Series:
    """'forward' or null per row of `samples` (sorted by activity and time): forward inside any
    window (mostly recorded) over which an activity without any cadence covered more than
    `speed_only_forward_mps`."""
    no_cadence = ~(pl.col("cadence_spm") > 0).any().over("activity_id")
    rows = samples.select("activity_id", "ts", "distance_m", "cadence_spm").with_row_index("_row")
    chosen = rows.filter(no_cadence.fill_null(True))
    found = pl.repeat(None, samples.height, dtype=pl.String, eager=True).alias("speed_direction")
    if chosen.is_empty():
        return found
    inputs = with_edges(
        chosen.select(
            "_row",
            "activity_id",
            "ts",
            pl.col("distance_m").alias("_d"),
            (pl.col("ts").dt.epoch("us") / 1e6).alias("_t"),
        ),
        "sustained",
        pl.col("_d").is_not_null(),
        _EDGES,
        ["activity_id"],
    )
    rolled = centred_rolling(inputs, config.speed_only_window_s, ["activity_id"], edge_aggs("sustained", _EDGES))
    elapsed, covered = edge_change("sustained", "_t"), edge_change("sustained", "_d")
    fast = (elapsed >= 0.9 * config.speed_only_window_s) & (covered > config.speed_only_forward_mps * elapsed)
    centres = inputs.select("activity_id", "ts", rolled.select(fast.fill_null(False).alias("_fast")).to_series())
    inside = centred_rolling(centres, config.speed_only_window_s, ["activity_id"], [pl.col("_fast").max()])
    forward = inside.select(pl.when(pl.col("_fast")).then(pl.lit("forward"))).to_series()
    return found.scatter(inputs["_row"], forward)
