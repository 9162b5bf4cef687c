"""Backward-running detection (DESIGN §5): every activity split into forward/backward/unknown stretches.

Evidence per sample, strongest first: facing vs GPS course, a lap labelled backward, the gait ratio
against the athlete's forward baseline (with hysteresis), and, for activities without cadence,
speeds no backward runner has sustained (forward only).  Samples become segments by run-length ids:
short gaps between same-direction stretches are merged, stretches shorter than the minimum say
'unknown', and each direction stretch is split where the gait (run/walk) changes for long enough.
"""

from __future__ import annotations

import itertools
import math

import polars as pl

from retrostride.assets.transforms.confidence import confidence_features, segment_confidence
from retrostride.assets.transforms.gait import facing_direction, facing_evidence, forward_step_m, gait_features
from retrostride.assets.transforms.gait_prior import threshold_widening
from retrostride.assets.transforms.label_evidence import labelled_activities, labelled_laps, with_lap_labels
from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.assets.transforms.speed_evidence import speed_direction
from retrostride.assets.transforms.windows import run_ids
from retrostride.warehouse.schema import RECORDS, SEGMENTS, conform, in_time_order

_ACTIVITY = ["activity_id"]
#: The direction of a pause while segments are formed (it leaves as 'unknown', evidence 'pause').
PAUSE = "pause"


#: The record columns detection reads.
_DETECTION_COLUMNS = [
    "activity_id",
    "athlete_id",
    "ts",
    "lat_deg",
    "lon_deg",
    "distance_m",
    "speed_mps",
    "cadence_spm",
    "facing_deg",
]


def timed_records(records: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """`columns` of the records that have a time, sorted by activity and time (record columns cast
    to `RECORDS`, others taken as they are)."""
    extra = records.select(name for name in columns if name not in RECORDS.names()).get_columns()
    return in_time_order(
        conform(records, RECORDS).with_columns(extra).select(columns).filter(pl.col("ts").is_not_null())
    )


def with_intervals(ordered: pl.DataFrame, max_gap_s: float) -> pl.DataFrame:
    """Time-ordered records, each owning the interval up to the next sample: `interval_s`, and
    `interval_m`, the distance covered in it (from `distance_m`, else speed × time up to `max_gap_s`)."""
    has_next = pl.col("activity_id") == pl.col("activity_id").shift(-1)  # cheaper than a window over activities
    to_next = pl.when(has_next).then(pl.col("ts").shift(-1) - pl.col("ts")).dt.total_microseconds() / 1e6
    step = pl.when(has_next).then(pl.col("distance_m").shift(-1) - pl.col("distance_m"))
    return ordered.with_columns(to_next.fill_null(0.0).alias("interval_s")).with_columns(
        pl.coalesce(
            step,
            pl.when(pl.col("interval_s") <= max_gap_s).then(pl.col("speed_mps") * pl.col("interval_s")),
            pl.lit(0.0),
        )
        .clip(lower_bound=0.0)
        .alias("interval_m")
    )


def record_intervals(records: pl.DataFrame, max_gap_s: float, hold_s: float) -> pl.DataFrame:
    """The records detection reads, with a time, sorted by activity and time, with their intervals
    (`with_intervals`) and `is_gap_marker`.  Where the next sample is more than `max_gap_s` away (a
    pause), the sample holds for `hold_s` (at most `max_gap_s`) and a marker row with null measures,
    right after it, owns the rest of the gap.
    """
    hold_s = min(hold_s, max_gap_s)
    ordered = with_intervals(timed_records(records, _DETECTION_COLUMNS), max_gap_s).with_columns(
        pl.lit(False).alias("is_gap_marker")
    )
    gap = pl.col("interval_s") > max_gap_s
    paused = ordered.select(gap.arg_true()).to_series().to_list()
    if not paused:
        return ordered
    markers = pl.concat(
        [
            ordered.head(0),
            ordered[paused].select(
                "activity_id",
                "athlete_id",
                (pl.col("ts") + pl.duration(microseconds=int(hold_s * 1e6))).alias("ts"),
                (pl.col("interval_s") - hold_s).alias("interval_s"),
                pl.lit(0.0).alias("interval_m"),
                pl.lit(True).alias("is_gap_marker"),
            ),
        ],
        how="diagonal_relaxed",
    )
    ordered = ordered.with_columns(pl.when(gap).then(hold_s).otherwise(pl.col("interval_s")).alias("interval_s"))
    # The stretches between pauses, each followed by its marker: slices put together, no sort.
    cuts = [0, *(row + 1 for row in paused), ordered.height]
    stretches = [ordered.slice(start, end - start) for start, end in itertools.pairwise(cuts)]
    marker_rows = [markers.slice(k, 1) for k in range(markers.height)]
    return pl.concat([*itertools.chain.from_iterable(zip(stretches, marker_rows)), stretches[-1]]).rechunk()


def _activity_labels(activities: pl.DataFrame, laps: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """activity_id, activity_label: named backward and without a lap that says where."""
    with_lap_labels = labelled_laps(laps, config).select("activity_id").unique()
    return labelled_activities(activities, config).join(with_lap_labels, on="activity_id", how="anti")


def classify_samples(
    records: pl.DataFrame,
    activities: pl.DataFrame,
    laps: pl.DataFrame,
    baselines: pl.DataFrame,
    config: DetectionConfig,
) -> pl.DataFrame:
    """One row per record (plus gap markers) with its raw direction, gait, evidence and confidence."""
    samples = record_intervals(records, config.max_gap_s, config.record_hold_s)
    samples = with_lap_labels(samples, laps, config)
    samples = facing_evidence(gait_features(samples, config, within="label_block"), config)
    samples = samples.join(_activity_labels(activities, laps, config), on="activity_id", how="left").with_columns(
        pl.col("activity_label").fill_null(False)
    )
    fits = baselines.select("athlete_id", "intercept", "slope", "speed_min_mps", "speed_max_mps", "intercept_sd")
    samples = samples.join(fits, on="athlete_id", how="left")

    v = pl.col("gait_speed_mps")
    scored = (
        (pl.col("gait") == "run")
        & v.is_between(config.speed_min_mps, pl.col("speed_max_mps") + config.coverage_margin_mps)
        & pl.col("gait_step_m").is_not_null()
    )
    ratio = pl.when(scored.fill_null(False)).then(pl.col("gait_step_m") / forward_step_m(v, config.slow_step_exponent))
    # The day's own level: a run whose typical steps are shorter than the baseline's (tired legs
    # after a bike leg, a bad day) is read against that level, down to `activity_level_floor`.
    samples = samples.with_columns(ratio.alias("gait_ratio"))
    level = pl.col("gait_ratio").median().over(_ACTIVITY).clip(config.activity_level_floor, 1.0).fill_null(1.0)
    samples = samples.with_columns(pl.col("gait_ratio") / level)
    samples = samples.with_columns(_hysteresis(config).alias("_gait_state"))
    gait_direction = pl.col("_gait_state")
    samples = samples.with_columns(
        gait_direction.alias("gait_direction"),
        facing_direction(config).alias("facing_direction"),
        speed_direction(samples, config),
    )
    direction = pl.coalesce(
        pl.col("facing_direction"),
        pl.when(pl.col("lap_label")).then(pl.lit("backward")),
        pl.col("gait_direction"),
        pl.col("speed_direction"),
        pl.lit("unknown"),
    )
    samples = samples.with_columns(direction.alias("raw_direction"))
    return _with_support(samples, config).drop("_gait_state", "intercept", "slope", "label_block")


def _hysteresis(config: DetectionConfig) -> pl.Expr:
    """'backward' / 'forward' / null per sample from the gait ratio r, with hysteresis.

    With the athlete's own baseline: backward from r <= enter_ratio until r >= leave_ratio, forward
    from r >= leave_ratio until r <= enter_ratio.  A baseline resting on the prior moves each side's
    thresholds away from the other by exp(z · intercept_sd): backward needs r low enough for the
    shortest-striding plausible runner (z = `prior_z`), forward r high enough for a longer-striding
    one (`prior_z_forward`, smaller: a wrong forward call only costs recall); in between, a state
    that is not already held is unknown (a short-striding forward runner stays unknown, not backward).
    Samples without a ratio keep the state they find."""
    r, lower, higher = (
        pl.col("gait_ratio"),
        threshold_widening(config.prior_z),
        threshold_widening(config.prior_z_forward),
    )
    row = pl.int_range(pl.len(), dtype=pl.Int64)

    def last(condition: pl.Expr) -> pl.Expr:
        return pl.when(condition).then(row).forward_fill().over(_ACTIVITY)

    backward = last(r <= config.enter_ratio / lower) > last(r >= config.leave_ratio / lower).fill_null(-1)
    forward = last(r >= config.leave_ratio * higher) > last(r <= config.enter_ratio * higher).fill_null(-1)
    return (
        pl.when(r.is_null())
        .then(None)
        .when(backward.fill_null(False))
        .then(pl.lit("backward"))
        .when(forward.fill_null(False))
        .then(pl.lit("forward"))
    )


def _with_support(samples: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """Which evidence supports each sample's direction."""
    d = pl.col("raw_direction")
    by_facing = (pl.col("facing_direction") == d).fill_null(False)
    by_lap = pl.col("lap_label") & (d == "backward")
    by_gait = (pl.col("gait_direction") == d).fill_null(False)
    by_activity = pl.col("activity_label") & (d == "backward") & by_gait
    return samples.with_columns(
        by_facing.alias("by_facing"),
        (by_lap | by_activity).alias("by_label"),
        by_gait.alias("by_gait"),
        (pl.col("speed_direction") == d).fill_null(False).alias("by_speed"),
    )


def _runs(frame: pl.DataFrame, column: str, within: list[str], **extra: pl.Expr) -> pl.DataFrame:
    """`_run`: an id per stretch of `column` within `within`, with the stretch's duration `_run_s`,
    its neighbours' values `_prev` / `_next` (null at the edges of `within`) and `extra` aggregations."""
    frame = frame.with_columns(run_ids([*within, column]).alias("_run"))
    runs = (
        frame.group_by("_run", maintain_order=True)
        .agg(
            *(pl.col(c).first() for c in [*within, column]),
            pl.col("interval_s").sum().alias("_run_s"),
            *(agg.alias(name) for name, agg in extra.items()),
        )
        .with_columns(
            pl.col(column).shift(1).over(within).alias("_prev"),
            pl.col(column).shift(-1).over(within).alias("_next"),
        )
    )
    at_row = frame["_run"] - frame["_run"].min()  # runs are numbered consecutively, in row order
    spread = runs.select("_run_s", "_prev", "_next", *extra)[at_row]
    return frame.with_columns(spread.get_columns())


def _merge_gaps(frame: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """A stretch between two stretches of one direction takes that direction when it is a gap: up to
    `max_gap_s` long, or unknown with at most `max_gap_s` stopped and at most `max_dropout_s` moving
    but unscored (a cadence dropout, or the edges the 10-s gait windows blur around a stop)."""
    moving = pl.col("gait_moving_mps").is_between(config.speed_min_mps, config.speed_max_mps).fill_null(False)
    frame = _runs(frame, "direction", _ACTIVITY, _still_s=pl.col("interval_s").filter(~moving).sum())
    gap = (pl.col("_run_s") <= config.max_gap_s) | (
        (pl.col("direction") == "unknown")
        & (pl.col("_still_s") <= config.max_gap_s)
        & (pl.col("_run_s") - pl.col("_still_s") <= config.max_dropout_s)
    )
    bridged = (gap & (pl.col("_prev") == pl.col("_next")) & (pl.col("_prev") != "unknown")).fill_null(False)
    return frame.with_columns(pl.when(bridged).then(pl.col("_prev")).otherwise(pl.col("direction")).alias("direction"))


def _drop_short(frame: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """Forward or backward stretches shorter than `min_segment_s` say 'unknown'."""
    frame = _runs(frame, "direction", _ACTIVITY)
    short = pl.col("direction").is_in(["forward", "backward"]) & (pl.col("_run_s") < config.min_segment_s)
    return frame.with_columns(pl.when(short).then(pl.lit("unknown")).otherwise(pl.col("direction")).alias("direction"))


def _absorb_short_unknown(frame: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """Unknown stretches shorter than `min_segment_s` next to a forward stretch (a stop, a turn, a
    cadence dropout) join it; next to backward ones only, they stay unknown (precision first).  One of
    at most two gait windows between forward and backward is where the gait changed, blurred by the
    windows straddling it: it is split at its middle, each half joining its neighbour."""
    frame = _runs(frame, "direction", _ACTIVITY)
    unknown = (pl.col("direction") == "unknown") & (pl.col("_run_s") < config.min_segment_s)
    prev, following = pl.col("_prev"), pl.col("_next")
    between = ((prev == "backward") & (following == "forward")) | ((prev == "forward") & (following == "backward"))
    change = between.fill_null(False) & (pl.col("_run_s") <= 2 * config.gait_window_s)
    split = frame.select((unknown & change).fill_null(False)).to_series()
    # where each split stretch's middle is: a window over only its rows (over every stretch, it costs a group each)
    before_middle = (
        frame.filter(split)
        .select((pl.col("interval_s").cum_sum() - pl.col("interval_s")).over("_run") < pl.col("_run_s") / 2)
        .to_series()
    )
    first_half = pl.repeat(False, frame.height, eager=True).scatter(split.arg_true(), before_middle)
    joins = unknown & ((pl.col("_prev") == "forward") | (pl.col("_next") == "forward")).fill_null(False)
    return frame.with_columns(
        pl.when(pl.lit(split) & pl.lit(first_half))
        .then("_prev")
        .when(pl.lit(split))
        .then("_next")
        .when(joins)
        .then(pl.lit("forward"))
        .otherwise(pl.col("direction"))
        .alias("direction")
    )


def _unclear_forward(frame: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """A forward stretch that only gait supports, whose supporting samples' mean step ratio stays
    below `leave_ratio` (held forward by the hysteresis, never clearly forward), says 'unknown'."""
    stretch = run_ids([*_ACTIVITY, "direction"])
    gait_forward = pl.col("by_gait") & (pl.col("raw_direction") == "forward")
    other = (pl.col("by_facing") | pl.col("by_label") | pl.col("by_speed")) & (pl.col("raw_direction") == "forward")
    mean_ratio = pl.col("gait_ratio").filter(gait_forward).log().mean()
    unclear = (
        (pl.col("direction") == "forward")
        & (mean_ratio < math.log(config.leave_ratio)).over(stretch).fill_null(False)
        & ~other.any().over(stretch)
    )
    return frame.with_columns(pl.when(unclear).then(pl.lit("unknown")).otherwise("direction").alias("direction"))


def _smooth_gait(frame: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """Within each direction stretch, gait stretches shorter than `min_gait_s` take their
    predecessor's gait (or their successor's, at the start; or, when all are short, the gait the
    stretch spent most time in)."""
    frame = frame.with_columns(run_ids([*_ACTIVITY, "direction"]).alias("_direction_run"))
    within = ["_direction_run"]
    frame = _runs(frame.rename({"gait": "segment_gait"}), "segment_gait", within)
    kept = pl.when(pl.col("_run_s") >= config.min_gait_s).then(pl.col("segment_gait"))
    smoothed = frame.select(kept.forward_fill().backward_fill().over(within)).to_series()
    all_short = smoothed.is_null()  # a few direction stretches: only theirs are ranked by time in gait
    time_in_gait = pl.col("interval_s").sum().over(*within, "segment_gait")
    dominant = frame.filter(all_short).select(pl.col("segment_gait").sort_by(time_in_gait).last().over(within))
    smoothed = smoothed.scatter(all_short.arg_true(), dominant.to_series())
    return frame.with_columns(smoothed.alias("segment_gait")).drop("_direction_run")


def _evidence(flags: dict[str, pl.Expr]) -> pl.Expr:
    words = [pl.when(flag).then(pl.lit(name)) for name, flag in flags.items()]
    joined = pl.concat_list(words).list.drop_nulls().list.join("+")
    return pl.when(joined == "").then(pl.lit("none")).otherwise(joined)


def detect_segments(
    records: pl.DataFrame,
    activities: pl.DataFrame,
    laps: pl.DataFrame,
    baselines: pl.DataFrame,
    config: DetectionConfig,
    with_features: bool = False,
) -> pl.DataFrame:
    """Contiguous forward/backward/unknown × run/walk/unknown segments covering each activity (with
    `with_features`, also the confidence model's FEATURES, to calibrate it)."""
    samples = classify_samples(records, activities, laps, baselines, config)
    samples = samples.with_columns(
        pl.when(_paused(samples, config)).then(pl.lit(PAUSE)).otherwise("raw_direction").alias("direction")
    )
    samples = _merge_gaps(samples, config)
    samples = _drop_short(samples, config)
    samples = _merge_gaps(samples, config)
    samples = _absorb_short_unknown(samples, config)
    samples = _unclear_forward(samples, config)
    samples = _smooth_gait(samples, config).with_columns(
        pl.when(pl.col("direction") == PAUSE).then(pl.lit("unknown")).otherwise("segment_gait").alias("segment_gait")
    )
    samples = samples.with_columns(run_ids([*_ACTIVITY, "direction", "segment_gait"]).alias("_segment"))
    supports = pl.col("raw_direction") == pl.col("direction")
    segments = (
        samples.group_by("activity_id", "_segment")
        .agg(
            pl.col("athlete_id").drop_nulls().first(),
            pl.col("direction").first(),
            pl.col("segment_gait").first().alias("gait"),
            pl.col("ts").first().alias("start_ts"),
            pl.col("ts").last().alias("_last_ts"),
            pl.col("interval_m").sum().alias("distance_m"),
            pl.col("cadence_spm").filter(pl.col("cadence_spm") > 0).mean().alias("mean_cadence_spm"),
            (pl.col("by_facing") & supports).any().alias("_facing"),
            (pl.col("by_label") & supports).any().alias("_label"),
            (pl.col("by_gait") & supports).any().alias("_gait"),
            (pl.col("by_speed") & supports).any().alias("_speed"),
            pl.col("gait_ratio").filter(pl.col("by_gait") & supports).log().mean().alias("_log_ratio"),
            pl.col("intercept_sd").drop_nulls().first().alias("_intercept_sd"),
        )
        .sort("activity_id", "_segment")
    )
    segments = _spanning_activities(segments, activities, config)
    duration = (pl.col("end_ts") - pl.col("start_ts")).dt.total_microseconds() / 1e6
    unknown = pl.col("direction").is_in(["unknown", PAUSE])
    segments = segments.with_columns(
        (pl.col("start_ts").rank("ordinal").over(_ACTIVITY) - 1).cast(pl.Int32).alias("segment_index"),
        duration.alias("duration_s"),
    ).with_columns(
        pl.when(pl.col("duration_s") > 0).then(pl.col("distance_m") / pl.col("duration_s")).alias("mean_speed_mps"),
        pl.when(pl.col("direction") == PAUSE)
        .then(pl.lit(PAUSE))
        .when(unknown)
        .then(pl.lit("none"))
        .otherwise(
            _evidence(
                {
                    "facing": pl.col("_facing"),
                    "label": pl.col("_label"),
                    "gait": pl.col("_gait"),
                    "speed": pl.col("_speed"),
                }
            )
        )
        .alias("evidence"),
        pl.when(unknown)
        .then(0.0)
        .when(pl.col("_speed") & ~pl.col("_facing") & ~pl.col("_label") & ~pl.col("_gait"))
        .then(config.speed_only_confidence)
        .otherwise(segment_confidence(config))
        .alias("confidence"),
        pl.when(pl.col("direction") == PAUSE).then(pl.lit("unknown")).otherwise("direction").alias("direction"),
        pl.lit(config.model_version).alias("model_version"),
    )
    found = segments.select(SEGMENTS.names()).cast(SEGMENTS)
    if with_features:
        return found.with_columns(segments.select(confidence_features(config)).get_columns())
    return pl.concat([found, _empty_activities(activities, found, config)]).sort("activity_id", "segment_index")


def _paused(samples: pl.DataFrame, config: DetectionConfig) -> pl.Series:
    """Rows of a pause: a recording gap (timer stop) and the stillness around it, or standing still
    (smoothed speed below `still_speed_mps`) for longer than `max_gap_s`."""
    still = (pl.col("is_gap_marker") | (pl.col("gait_moving_mps") < config.still_speed_mps)).fill_null(False)
    stretch = run_ids([*_ACTIVITY, "_still"])
    long_enough = (pl.col("interval_s").sum() > config.max_gap_s) | pl.col("is_gap_marker").any()
    return samples.with_columns(still.alias("_still")).select(pl.col("_still") & long_enough.over(stretch)).to_series()


def _spanning_activities(segments: pl.DataFrame, activities: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """Segments that tile their activity's span: each ends where the next starts; the first starts at
    the activity's start and the last ends at its end, where the recording starts later or stops
    earlier by more than `max_gap_s` (the timer ran without samples), a pause segment covers it."""
    spans = activities.select("activity_id", pl.col("start_ts").alias("_act_start"), pl.col("end_ts").alias("_act_end"))
    segments = segments.join(spans, on="activity_id", how="left").with_columns(
        pl.col("start_ts").shift(-1).over(_ACTIVITY).alias("end_ts")
    )
    first = pl.col("_segment") == pl.col("_segment").min().over(_ACTIVITY)
    last = pl.col("_segment") == pl.col("_segment").max().over(_ACTIVITY)
    lead = ((pl.col("start_ts") - pl.col("_act_start")).dt.total_microseconds() / 1e6).fill_null(0.0)
    trail = ((pl.col("_act_end") - pl.col("_last_ts")).dt.total_microseconds() / 1e6).fill_null(0.0)
    long_edge = lambda gap: (gap > config.max_gap_s) & (pl.col("direction") != PAUSE)  # noqa: E731
    edges = pl.concat(
        [
            segments.filter(first & long_edge(lead)).select(
                "activity_id", "athlete_id", pl.col("_act_start").alias("start_ts"), pl.col("start_ts").alias("end_ts")
            ),
            segments.filter(last & long_edge(trail)).select(
                "activity_id", "athlete_id", pl.col("_last_ts").alias("start_ts"), pl.col("_act_end").alias("end_ts")
            ),
        ]
    ).with_columns(pl.lit(PAUSE).alias("direction"), pl.lit("unknown").alias("gait"), pl.lit(0.0).alias("distance_m"))
    segments = segments.with_columns(
        pl.when(first & ~long_edge(lead))
        .then(pl.min_horizontal("start_ts", "_act_start"))
        .otherwise("start_ts")
        .alias("start_ts"),
        pl.when(last & long_edge(trail))
        .then(pl.col("_last_ts"))
        .when(last)
        .then(pl.max_horizontal("_last_ts", "_act_end"))
        .otherwise("end_ts")
        .alias("end_ts"),
    )
    return pl.concat([segments, edges], how="diagonal_relaxed").sort("activity_id", "start_ts")


def _empty_activities(activities: pl.DataFrame, found: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """One 'unknown' segment spanning each activity that has no records."""
    missing = activities.join(found.select("activity_id").unique(), on="activity_id", how="anti").filter(
        pl.col("start_ts").is_not_null()
    )
    end = pl.coalesce("end_ts", "start_ts")
    return missing.select(
        "activity_id",
        "athlete_id",
        pl.lit(0, pl.Int32).alias("segment_index"),
        pl.lit("unknown").alias("direction"),
        pl.lit("unknown").alias("gait"),
        "start_ts",
        end.alias("end_ts"),
        ((end - pl.col("start_ts")).dt.total_microseconds() / 1e6).alias("duration_s"),
        pl.lit(None, pl.Float64).alias("distance_m"),
        pl.lit(None, pl.Float64).alias("mean_speed_mps"),
        pl.lit(None, pl.Float64).alias("mean_cadence_spm"),
        pl.lit("none").alias("evidence"),
        pl.lit(0.0).alias("confidence"),
        pl.lit(config.model_version).alias("model_version"),
    ).cast(SEGMENTS)


def backward_seconds(segments: pl.DataFrame) -> float:
    """Total backward time in a segments frame (for asset metadata and benchmarks)."""
    return float(segments.filter(pl.col("direction") == "backward")["duration_s"].sum())
