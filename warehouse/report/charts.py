"""The report's charts: Vega-Lite specifications built with Altair from the report's frames.

Each function takes rows already computed by SQL (warehouse/report/data.py) and only maps columns
to marks; none adds up or derives a figure.
"""

from __future__ import annotations

import altair as alt
import polars as pl

WIDTH = 640
LABELLED_WEEKS = 30  # up to this many weeks, each bar is labelled with its sessions
# Weeks as bands (one bar a week), labelled by their Monday.
WEEK = alt.X(
    "week_start:O",
    timeUnit="yearmonthdate",
    title="week (Monday)",
    axis=alt.Axis(format="%d %b %y", formatType="time", labelAngle=0, labelOverlap=True),
)

# direction · gait: backward in oranges, forward in blues, unknown in greys.
PARTS = [
    "forward · run",
    "forward · walk",
    "forward · unknown",
    "backward · run",
    "backward · walk",
    "backward · unknown",
    "unknown · run",
    "unknown · walk",
    "unknown · unknown",
]
PART_COLOURS = ["#2f6fb0", "#8db7e0", "#c5d9ee", "#e0671b", "#f3a35f", "#f8cfa6", "#8a8a8a", "#b5b5b5", "#dcdcdc"]
DIRECTIONS = ["forward", "backward", "unknown"]
DIRECTION_COLOURS = ["#8db7e0", "#e0671b", "#d0d0d0"]


def weekly_distance(parts: pl.DataFrame, weekly: pl.DataFrame) -> alt.TopLevelMixin:
    """Weekly distance stacked by direction and gait, net kcal on the right-hand axis."""
    bars = (
        alt.Chart(parts)
        .mark_bar()
        .encode(
            x=WEEK,
            y=alt.Y("distance_km:Q", title="distance (km)", stack="zero"),
            color=alt.Color("part:N", title="direction · gait", scale=alt.Scale(domain=PARTS, range=PART_COLOURS)),
            tooltip=[
                alt.Tooltip("week_start:T", title="week"),
                "part:N",
                alt.Tooltip("distance_km:Q", format=".1f"),
                alt.Tooltip("kcal_net:Q", format=".0f"),
            ],
        )
    )
    kcal = (
        alt.Chart(weekly)
        .mark_line(point=True, color="#333333", strokeDash=[4, 2])
        .encode(
            x=WEEK,
            y=alt.Y("kcal_net:Q", title="net kcal (dashed line)", axis=alt.Axis(orient="right")),
            tooltip=[
                alt.Tooltip("week_start:T", title="week"),
                alt.Tooltip("kcal_net:Q", format=".0f", title="net kcal"),
            ],
        )
    )
    return alt.layer(bars, kcal).resolve_scale(y="independent").properties(width=WIDTH, height=240)


def rolling_distance(rolling: pl.DataFrame) -> alt.TopLevelMixin:
    """Distance over the 28 days ending on each day, all of it and backward."""
    long = rolling.unpivot(
        index=["athlete_id", "day"], on=["distance_km_28d", "backward_km_28d"], variable_name="measure", value_name="km"
    )
    return (
        alt.Chart(long)
        .mark_line()
        .encode(
            x=alt.X("day:T", title="day"),
            y=alt.Y("km:Q", title="km in the last 28 days"),
            color=alt.Color(
                "measure:N",
                title=None,
                scale=alt.Scale(domain=["distance_km_28d", "backward_km_28d"], range=["#2f6fb0", "#e0671b"]),
            ),
            tooltip=["day:T", "measure:N", alt.Tooltip("km:Q", format=".1f")],
        )
        .properties(width=WIDTH, height=160)
    )


def backward_weeks(weekly: pl.DataFrame) -> alt.TopLevelMixin:
    """Backward minutes per week, labelled with the week's backward sessions out of all sessions."""
    labelled = weekly.with_columns(
        (pl.col("backward_sessions").cast(pl.String) + "/" + pl.col("sessions").cast(pl.String)).alias("label")
    )
    base = alt.Chart(labelled).encode(x=WEEK)
    bars = base.mark_bar(color="#e0671b").encode(
        y=alt.Y("backward_minutes:Q", title="backward minutes"),
        tooltip=[
            alt.Tooltip("week_start:T", title="week"),
            alt.Tooltip("backward_minutes:Q", format=".1f"),
            "backward_sessions:Q",
            "sessions:Q",
        ],
    )
    if weekly.height > LABELLED_WEEKS:  # labels would overlap: the sessions stay in the tooltip
        return bars.properties(width=WIDTH, height=180, title="backward minutes a week")
    text = base.mark_text(dy=-6, fontSize=10, color="#444444").encode(y="backward_minutes:Q", text="label:N")
    return alt.layer(bars, text).properties(
        width=WIDTH, height=180, title="backward minutes a week (label: backward sessions / sessions)"
    )


def streaks(rows: pl.DataFrame) -> alt.TopLevelMixin:
    """Runs of consecutive days with backward running, as bars along time."""
    base = alt.Chart(rows).encode(x=alt.X("streak_start:T", title="day"), x2="streak_after:T")
    bars = base.mark_bar(color="#e0671b", height=18).encode(
        y=alt.value(14),
        tooltip=[
            "streak_start:T",
            "days:Q",
            alt.Tooltip("backward_km:Q", format=".2f"),
            alt.Tooltip("backward_minutes:Q", format=".1f"),
        ],
    )
    return bars.properties(width=WIDTH, height=28, title="backward streaks (consecutive days)")


def body(rows: pl.DataFrame) -> alt.TopLevelMixin:
    """Body weight and body fat over time, one panel each."""
    base = alt.Chart(rows).encode(x=alt.X("measured_at:T", title="measured"))
    weight = base.mark_line(point=True, color="#2f6fb0").encode(
        y=alt.Y("weight_kg:Q", title="weight (kg)", scale=alt.Scale(zero=False)),
        tooltip=["measured_at:T", "weight_kg:Q", "source:N"],
    )
    fat = base.mark_line(point=True, color="#9b4f96").encode(
        y=alt.Y("body_fat_pct:Q", title="body fat (%)", scale=alt.Scale(zero=False)),
        tooltip=["measured_at:T", "body_fat_pct:Q", "source:N"],
    )
    return alt.vconcat(weight.properties(width=WIDTH, height=140), fat.properties(width=WIDTH, height=120))


def outcomes(rows: pl.DataFrame) -> alt.TopLevelMixin:
    """Each 6-week window: observed weight change against the static and dynamic predictions."""
    long = (
        rows.select(
            "athlete_id",
            "window_start",
            "window_end",
            "matches_study_protocol",
            pl.col("weight_change_pct").alias("observed"),
            pl.col("predicted_weight_change_pct").alias("predicted (7700 kcal/kg, upper bound)"),
            pl.col("dynamic_weight_change_pct").alias("predicted (dynamic)"),
        )
        .unpivot(
            index=["athlete_id", "window_start", "window_end", "matches_study_protocol"],
            variable_name="measure",
            value_name="change_pct",
        )
        .drop_nulls("change_pct")
    )
    return (
        alt.Chart(long)
        .mark_point(size=70, filled=True)
        .encode(
            x=alt.X("window_start:T", title="window start", axis=alt.Axis(format="%d %b %Y")),
            y=alt.Y("change_pct:Q", title="weight change over the window (%)"),
            color=alt.Color(
                "measure:N",
                title=None,
                scale=alt.Scale(
                    domain=["observed", "predicted (7700 kcal/kg, upper bound)", "predicted (dynamic)"],
                    range=["#222222", "#e0671b", "#2f6fb0"],
                ),
            ),
            shape=alt.Shape(
                "matches_study_protocol:N",
                title="study protocol",
                scale=alt.Scale(domain=[True, False], range=["diamond", "circle"]),
            ),
            tooltip=[
                "window_start:T",
                "window_end:T",
                "measure:N",
                alt.Tooltip("change_pct:Q", format=".2f"),
                "matches_study_protocol:N",
            ],
        )
        .properties(width=WIDTH, height=200)
    )


def study(summary: pl.DataFrame) -> alt.TopLevelMixin:
    """Mean observed change of the windows that match the protocol (range: min to max), and the study's."""
    rows = summary.filter(pl.col("measure").str.starts_with("body_fat"))
    base = alt.Chart(rows).encode(y=alt.Y("measure:N", title=None))
    observed = base.mark_bar(color="#9b4f96", height=16).encode(
        x=alt.X("mean_change:Q", title="body fat change"),
        tooltip=["measure:N", "windows:Q", "athletes:Q", alt.Tooltip("mean_change:Q", format=".2f")],
    )
    spread = base.mark_rule(color="#333333").encode(x="min_change:Q", x2="max_change:Q")
    reported = base.mark_tick(color="#e0671b", thickness=3, size=26).encode(
        x="study_change:Q", tooltip=[alt.Tooltip("study_change:Q", title="Terblanche et al. 2005")]
    )
    return alt.layer(observed, spread, reported).properties(
        width=WIDTH - 140, height=80, title="mean of the athletes (bar), their range (line), the study (orange tick)"
    )


def timeline(rows: pl.DataFrame) -> alt.TopLevelMixin:
    """Recent activities as rows of segments, backward stretches in orange."""
    segments = rows.drop_nulls("start_min")
    order = rows.unique("activity_id").sort("local_start_ts", descending=True)["activity"].to_list()
    return (
        alt.Chart(segments)
        .mark_bar(height=14)
        .encode(
            y=alt.Y("activity:N", title=None, sort=order),
            x=alt.X("start_min:Q", title="minutes from the start"),
            x2="end_min:Q",
            color=alt.Color("direction:N", scale=alt.Scale(domain=DIRECTIONS, range=DIRECTION_COLOURS)),
            tooltip=[
                "activity:N",
                "direction:N",
                "gait:N",
                alt.Tooltip("start_min:Q", format=".1f"),
                alt.Tooltip("end_min:Q", format=".1f"),
                alt.Tooltip("segment_km:Q", format=".2f"),
            ],
        )
        .properties(width=WIDTH - 120, height=alt.Step(20))
    )


def activity_detail(samples: pl.DataFrame, segments: pl.DataFrame) -> alt.TopLevelMixin:
    """Speed, cadence and step length (against the forward baseline at that speed) along one
    activity, its backward segments shaded; a measure the activity did not record is left out."""
    backward = segments.filter(pl.col("direction") == "backward")
    shade = alt.Chart(backward).mark_rect(color="#e0671b", opacity=0.18).encode(x="start_min:Q", x2="end_min:Q")
    minute = alt.X("minute:Q", title="minutes from the start")

    def shaded(chart: alt.Chart, height: int) -> alt.TopLevelMixin:
        return (alt.layer(shade, chart) if backward.height else chart).properties(width=WIDTH, height=height)

    panels = [
        shaded(
            alt.Chart(samples.drop_nulls(column))
            .mark_line(color=colour, strokeWidth=1.2)
            .encode(x=minute, y=alt.Y(f"{column}:Q", title=title, scale=alt.Scale(zero=False))),
            110,
        )
        for column, title, colour in (
            ("speed_mps", "speed (m/s)", "#2f6fb0"),
            ("cadence_spm", "cadence (spm)", "#9b4f96"),
        )
        if samples[column].drop_nulls().len()
    ]
    steps = samples.unpivot(
        index=["minute"], on=["step_length_m", "baseline_step_length_m"], variable_name="measure", value_name="metres"
    ).drop_nulls("metres")
    if steps.height:
        panels.append(
            shaded(
                alt.Chart(steps)
                .mark_line(strokeWidth=1.2)
                .encode(
                    x=minute,
                    y=alt.Y("metres:Q", title="step length (m)", scale=alt.Scale(zero=False)),
                    color=alt.Color(
                        "measure:N",
                        title=None,
                        scale=alt.Scale(
                            domain=["step_length_m", "baseline_step_length_m"], range=["#222222", "#2f6fb0"]
                        ),
                    ),
                    strokeDash=alt.StrokeDash(
                        "measure:N",
                        legend=None,
                        scale=alt.Scale(domain=["step_length_m", "baseline_step_length_m"], range=[[1, 0], [4, 3]]),
                    ),
                ),
                130,
            )
        )
    return alt.vconcat(*panels).resolve_scale(color="independent")


def import_status(summary: pl.DataFrame) -> alt.TopLevelMixin:
    """Files in the ledger by status."""
    return (
        alt.Chart(summary)
        .mark_bar()
        .encode(
            y=alt.Y("status:N", title=None, sort=["ok", "partial", "duplicate", "failed"]),
            x=alt.X("files:Q", title="files"),
            color=alt.Color(
                "status:N",
                legend=None,
                scale=alt.Scale(
                    domain=["ok", "partial", "duplicate", "failed"], range=["#4c9a5b", "#e3b23c", "#8a8a8a", "#c0392b"]
                ),
            ),
            tooltip=["status:N", "files:Q", "records:Q"],
        )
        .properties(width=WIDTH - 200, height=alt.Step(22))
    )
