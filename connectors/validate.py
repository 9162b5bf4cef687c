"""Absurd values out of every decoder's frames: one pure Polars step between decoding and the lake.

A value outside its plausible range (latitude 400°, heart rate 2000 bpm, 200 m/s, a negative
distance, NaN or infinity) is nulled, never clamped, and the ledger's `notes` say what and how
many.  A sample dated outside the calendar window is dropped when its activity has samples inside
the window (a stray: a sample without a usable time cannot be placed in its series); an activity wholly outside it (a watch reset to 1970) keeps its times and
stays in the lake, unplaced (`connectors.frames.placeable`).  Body measurements dated outside the
window are dropped: they are not placed anywhere else.

The ranges are declared once here; `retrostride.toml` may override them (`[plausible]`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from retrostride.connectors.batches import FILE, DecodedBatch
from retrostride.warehouse.schema import DecodedFile

Range = tuple[float, float]

#: Plausible ranges (inclusive) per canonical column; anything outside is nulled.
PLAUSIBLE: dict[str, Range] = {
    # records
    "lat_deg": (-90.0, 90.0),
    "lon_deg": (-180.0, 180.0),
    "altitude_m": (-500.0, 9_000.0),  # FIT's lowest altitude is -500 m; Everest 8,849 m
    "distance_m": (0.0, 2_000_000.0),  # cumulative, 2,000 km: a multi-day ultra still fits
    "speed_mps": (0.0, 50.0),  # 180 km/h: fast descents on a bike, GPS spikes of a car ride are cleaned
    "heart_rate_bpm": (25.0, 250.0),
    "cadence_spm": (0.0, 350.0),
    "power_w": (0.0, 3_000.0),
    "step_length_m": (0.0, 4.0),
    "stance_time_ms": (0.0, 2_000.0),
    "vertical_oscillation_mm": (0.0, 500.0),
    "facing_deg": (0.0, 360.0),
    "temperature_c": (-60.0, 70.0),
    # activities (the file's own totals)
    "total_elapsed_s": (0.0, 14 * 86_400.0),
    "total_timer_s": (0.0, 14 * 86_400.0),
    "total_distance_m": (0.0, 2_000_000.0),
    # body measurements
    "weight_kg": (10.0, 400.0),
    "body_fat_pct": (1.0, 75.0),
    "body_water_pct": (10.0, 90.0),
    "muscle_mass_kg": (1.0, 200.0),
    "bone_mass_kg": (0.1, 20.0),
    "bmi": (5.0, 100.0),
}

#: Columns nulled together: a latitude without its longitude is no position.
PAIRS = {"lat_deg": "lon_deg", "lon_deg": "lat_deg"}


def plausible_ranges(overrides: dict[str, list[float] | tuple[float, float]] | None = None) -> dict[str, Range]:
    """`PLAUSIBLE` with `overrides` ({column: [low, high]}); an unknown column or a bad range is an error."""
    ranges = dict(PLAUSIBLE)
    for column, bounds in (overrides or {}).items():
        if column not in PLAUSIBLE:
            raise ValueError(f"[plausible] {column}: not a checked column (one of {', '.join(PLAUSIBLE)})")
        low, high = (float(b) for b in bounds)
        if not low <= high:
            raise ValueError(f"[plausible] {column}: low {low} is above high {high}")
        ranges[column] = (low, high)
    return ranges


def validate(
    decoded: DecodedFile,
    ranges: dict[str, Range] = PLAUSIBLE,
    earliest: date = date(1990, 1, 1),
    latest: date | None = None,
) -> tuple[DecodedFile, list[str]]:
    """The decoded file with implausible values nulled, and one note per kind of cleaning."""
    batch, notes = validate_batch(DecodedBatch.of([decoded]), ranges, earliest, latest)
    return replace(decoded, **batch.unstacked()[0]), notes[0]


def validate_batch(
    batch: DecodedBatch,
    ranges: dict[str, Range] = PLAUSIBLE,
    earliest: date = date(1990, 1, 1),
    latest: date | None = None,
) -> tuple[DecodedBatch, list[list[str]]]:
    """`validate` for each file of a batch at once: the cleaned batch, and each file's notes."""
    latest = latest or date.today().replace(year=date.today().year + 1)
    notes: list[list[str]] = [[] for _ in batch.files]
    frames = batch.frames
    records = _null_outside(frames["records"], ranges, notes)
    records = _null_stray_times(records, earliest, latest, notes)
    records, forward = _clean_time_order(records, notes)
    records = _drop_clock_glitches(records, notes, forward)
    if not forward:  # times that only go forward share none
        records = _merge_same_time(records, notes)
    activities = _null_outside(frames["activities"], ranges, notes)
    laps = _null_outside(frames["laps"], {"distance_m": ranges["distance_m"]}, notes, what="lap")
    body = _null_outside(frames["body_measurements"], ranges, notes, what="body measurement")
    if body.height:
        outside = ~_in_window(pl.col("ts"), earliest, latest) | pl.col("ts").is_null()
        for file, dropped in _counts(body, outside.sum().alias("dropped")):
            notes[file].append(f"body measurements: {dropped['dropped']} dated outside {earliest}..{latest} dropped")
        body = body.filter(~outside)
    return batch.with_frames(records=records, activities=activities, laps=laps, body_measurements=body), notes


def _in_window(ts: pl.Expr, earliest: date, latest: date) -> pl.Expr:
    low = datetime(earliest.year, earliest.month, earliest.day, tzinfo=UTC)
    high = datetime(latest.year, latest.month, latest.day, tzinfo=UTC) + timedelta(days=1)
    return (ts >= low) & (ts < high)


def _counts(frame: pl.DataFrame, *counts: pl.Expr) -> list[tuple[int, dict[str, int]]]:
    """(file, {name: count}) for each file of a stacked frame with a nonzero count, in file order."""
    rows = frame.group_by(FILE).agg(*counts).sort(FILE).iter_rows(named=True)
    found = [(row.pop(FILE), row) for row in rows]
    return [(file, {name: n for name, n in row.items() if n}) for file, row in found if any(row.values())]


def _null_outside(
    frame: pl.DataFrame, ranges: dict[str, Range], notes: list[list[str]], what: str = ""
) -> pl.DataFrame:
    """Null values outside their range (NaN and ±inf included); adds notes with counts per column."""
    columns = [c for c in frame.columns if c in ranges and frame.schema[c].is_numeric()]
    if not columns or frame.height == 0:
        return frame
    bad = {c: ~(pl.col(c).is_null() | pl.col(c).is_between(*ranges[c])) for c in columns}
    if not frame.select(pl.any_horizontal(bad[c].any() for c in columns)).item():
        return frame
    prefix = f"{what} " if what else ""
    for file, found in _counts(frame, *(bad[c].sum().alias(c) for c in columns)):
        notes[file] += [
            f"{prefix}{c}: {n} value(s) outside {_bound(ranges[c][0])}..{_bound(ranges[c][1])} nulled"
            + (f" (with their {PAIRS[c]})" if c in PAIRS and PAIRS[c] in bad else "")
            for c, n in found.items()
        ]
    drop = {c: bad[c] | (bad[PAIRS[c]] if PAIRS.get(c) in bad else pl.lit(False)) for c in columns}
    return frame.with_columns(pl.when(drop[c]).then(None).otherwise(pl.col(c)).alias(c) for c in columns)


def _null_stray_times(records: pl.DataFrame, earliest: date, latest: date, notes: list[list[str]]) -> pl.DataFrame:
    """Drop samples dated outside the window from activities that also have samples inside it."""
    if records.height == 0:
        return records
    inside = _in_window(pl.col("ts"), earliest, latest)
    outside = ~inside & pl.col("ts").is_not_null()
    if not records.select(outside.any()).item():  # nothing to look at activity by activity
        return records
    stray = outside & inside.any().over(FILE, "session")
    if not records.select(stray.any()).item():
        return records
    for file, found in _counts(records, stray.sum().alias("stray")):
        notes[file].append(f"ts: {found['stray']} sample(s) dated outside {earliest}..{latest} dropped")
    return records.filter(~stray)


#: Record columns a decoder may derive from the time step (no step: no value), left out when
#: deciding whether a sample repeats the one before.
RATES = ("speed_mps",)


def _clean_time_order(records: pl.DataFrame, notes: list[list[str]]) -> tuple[pl.DataFrame, bool]:
    """Drop samples without a readable time in an activity whose other samples have one (a date like
    2024-02-30, an offset of +25:00) and samples that repeat the sample before them exactly; count
    samples that share their time with the one before (2 Hz recorders with whole-second times) and
    steps back in time: both stay, in file order (clock glitches are the detector's concern).
    Also says whether every activity's times only go forward (no shared time, no step back): then
    each activity is timed throughout or not at all, in time order."""
    if records.height == 0:
        return records, True
    group = (FILE, "session")
    ts = pl.col("ts")
    previous = ts.forward_fill().shift(1).over(group)
    flags = records.select(
        (ts.is_null() & ts.is_not_null().any().over(group)).alias("untimed"),
        (ts == previous).fill_null(False).alias("same_time"),  # the first sample has no previous: null
        (ts < previous).fill_null(False).alias("backwards"),
        pl.col(FILE),
    )
    seen = flags.select(pl.col("untimed", "same_time", "backwards").any()).row(0, named=True)
    forward = not (seen["same_time"] or seen["backwards"])
    if not any(seen.values()):
        return records, forward
    duplicate = flags["same_time"]
    if seen["same_time"]:  # which of them repeat the sample before in every value (checked only then: costly)
        duplicate = (
            duplicate
            & records.select(
                pl.all_horizontal(
                    pl.col(c).eq_missing(pl.col(c).shift(1).over(group))
                    for c in records.columns
                    if c not in (FILE, *RATES)
                )
            ).to_series()
        )
    flags = flags.with_columns(duplicate.alias("duplicate")).with_columns(pl.col("same_time") & ~pl.col("duplicate"))
    said = {
        "untimed": "sample(s) without a readable time in a timed activity dropped",
        "duplicate": "sample(s) repeating the sample before exactly dropped",
        "same_time": "sample(s) with the time of the sample before (kept)",
        "backwards": "step(s) back in time (the samples stay in file order)",
    }
    for file, found in _counts(flags, *(pl.col(name).sum() for name in said)):
        notes[file] += [f"ts: {n} {said[name]}" for name, n in found.items()]
    return records.filter(~(flags["untimed"] | flags["duplicate"])), forward


def _bound(value: float) -> str:
    return f"{value:g}"


#: A jump in a session's clock this long or longer may split it (shorter: a pause).
CLOCK_JUMP_MIN_S = 3_600.0
#: Samples beyond a clock jump are a glitch when they are at most this share of the session's samples.
CLOCK_GLITCH_MAX_SHARE = 1 / 3


def _drop_clock_glitches(records: pl.DataFrame, notes: list[list[str]], forward: bool = False) -> pl.DataFrame:
    """Drop samples off their session's time line: beyond a clock jump longer than the rest of the
    session and an hour (a jump years ahead, a reset to the device epoch), when they are the smaller
    part; then samples dated before one recorded ahead of them (a clock stepping back).  `forward`:
    every session's times only go forward (`_clean_time_order`), so they are already sorted."""
    if records.height == 0:
        return records
    keys = [FILE, "session"]
    ts = pl.col("ts").dt.epoch("us")
    if forward:
        suspect_expr = ts.diff().max().over(keys) >= CLOCK_JUMP_MIN_S * 1e6
    else:
        back = (ts < ts.cum_max().shift(1)).over(keys)
        suspect_expr = back.any().over(keys) | (ts.sort().diff().max().over(keys) >= CLOCK_JUMP_MIN_S * 1e6)
    suspect = records.select(suspect_expr.fill_null(False)).to_series()
    if not suspect.any():
        return records
    frame = records.with_row_index("_row")
    flagged = frame.filter(suspect & pl.col("ts").is_not_null()).select("_row", FILE, "session", ts.alias("_us"))
    off, behind = [], []
    for (file, _), group in flagged.group_by(keys, maintain_order=True):
        far = _off_time_line(group["_us"].to_numpy())
        rest = group.filter(~pl.Series(far))
        earlier = rest.select(pl.col("_us") < pl.col("_us").cum_max().shift(1)).to_series().fill_null(False)
        off.append((file, group["_row"].filter(pl.Series(far))))
        behind.append((file, rest["_row"].filter(earlier)))
    dropped = pl.concat([rows for _, rows in off + behind])
    for what, found in (
        ("off the activity's time line (a clock jump)", off),
        ("dated before a sample recorded ahead of them", behind),
    ):
        per_file: dict[int, int] = {}
        for file, rows in found:
            per_file[file] = per_file.get(file, 0) + len(rows)
        for file, count in per_file.items():
            if count:
                notes[file].append(f"ts: {count} sample(s) {what} dropped")
    return frame.filter(~pl.col("_row").is_in(dropped.implode())).drop("_row")


def _off_time_line(micros: np.ndarray) -> np.ndarray:
    """Which samples (µs, one session) lie beyond clock jumps: repeatedly, at the largest gap of the
    sorted times, the smaller side goes when the gap is over an hour, longer than the larger side's
    span, and the smaller side holds at most a third of the samples."""
    order = np.argsort(micros, kind="stable")
    times = micros[order].astype(np.float64) / 1e6
    low, high = 0, len(times)  # the kept stretch, in sorted order
    while high - low > 1:
        gaps = np.diff(times[low:high])
        at = int(np.argmax(gaps)) + low  # the gap lies between at and at + 1
        left, right = at + 1 - low, high - at - 1
        larger_span = times[at] - times[low] if left >= right else times[high - 1] - times[at + 1]
        smaller = min(left, right)
        if gaps.max() < CLOCK_JUMP_MIN_S or gaps.max() <= larger_span or smaller > CLOCK_GLITCH_MAX_SHARE * len(times):
            break
        low, high = (low, at + 1) if left >= right else (at + 1, high)
    far = np.ones(len(times), dtype=bool)
    far[order[low:high]] = False
    return far


def _merge_same_time(records: pl.DataFrame, notes: list[list[str]]) -> pl.DataFrame:
    """Merge samples of a session that share a timestamp (Strava's Android app writes speed in one
    row and distance in the next): one sample, each value the first recorded."""
    keys = [FILE, "session", "ts"]
    shared = pl.col("ts").is_not_null() & pl.struct(keys).is_duplicated()
    if records.height == 0 or not records.select(shared.any()).item():
        return records
    for file, found in _counts(records, (shared & ~pl.struct(keys).is_first_distinct()).sum().alias("merged")):
        notes[file].append(f"ts: {found['merged']} sample(s) sharing a timestamp with an earlier one merged into it")
    frame = records.with_columns(shared.alias("_shared"))
    merged = (
        frame.filter("_shared")
        .group_by(keys, maintain_order=True)
        .agg(pl.all().exclude(keys).drop_nulls().first())
        .select(records.columns)
    )
    return pl.concat([frame.filter(~pl.col("_shared")).drop("_shared"), merged]).sort(
        FILE, "session", "ts", nulls_last=True, maintain_order=True
    )
