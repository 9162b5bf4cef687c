"""An independent generator of backward-running histories, for checking detection on data it was not tuned on.

Its gait model differs from the product's sample export (`pipelines/sample_export`, which the tests
use): forward cadence is linear in speed (spm = c₀ + c₁·(v − 3), c₀ ~ N(166, 8), c₁ ~ U(4, 12)),
not a power law of step length; backward steps are r·L_fwd with r ~ U(0.70, 0.84) per athlete and
±0.02 per session; uphill shortens steps at the same speed (L × (1 − 0.6·grade)); sessions mix
forward running, backward intervals at 1.6–2.7 m/s, walking breaks, standing stops, timer stops
(also right after a backward stretch), cadence and GPS drop-outs, GPS noise of 1–5 m (speed from the
device with its own noise), 1-s or "smart" 1–5-s recording.  Files are FIT, written with the FIT SDK
encoder through the product's `CachingEncoder`.  Truth: each backward interval of recorded motion
(`file`, `start_ts`, `end_ts`), pauses excluded.

`--ambiguous` makes genuinely hard cases, so segment confidence spreads over its range: backward
step ratios up to the forward/backward boundary (0.68–0.94), a forward level that moves ±5 % from
day to day, backward stretches of 20–300 s, noisier and sparser cadence (up to 5 % noise, more
drop-outs, recording every 1–8 s), 1–12 m of GPS noise and hills up to 12 %.

    python -m benchmarks.retro_generator OUT_DIR [--seed 1] [--athletes 8] [--sessions 12] [--ambiguous]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from retrostride.pipelines.sample_export.fit_writer import MESG, SEMICIRCLES_PER_DEG, CachingEncoder, fit_time

START = datetime(2025, 3, 3, 6, 0, tzinfo=UTC)
EARTH_M_PER_DEG = 111_195.0


@dataclass(frozen=True)
class Runner:
    id: str
    cadence_at_3: float  # forward spm at 3 m/s
    cadence_slope: float  # spm per m/s
    backward_ratio: float
    easy_speed: float  # m/s
    backward_speed: float
    smart_recording: bool
    gps_noise_m: float
    cadence_noise: float  # relative, per sample
    hill_grade: float = 0.06  # largest grade of a session's hills
    day_level_sd: float = 0.0  # a session's forward step level moves by this share (sd)
    shortest_backward_s: float = 60.0
    cadence_dropouts: int = 3  # up to this many less one per session
    smart_max_s: int = 5  # "smart" recording: a sample every 1 to this many seconds


@dataclass(frozen=True)
class Spread:
    """The ranges runners are drawn from: `STANDARD`, or `AMBIGUOUS` (see `--ambiguous`)."""

    prefix: str
    cadence: tuple[float, float, float, float]  # mean, sd, lowest, highest spm at 3 m/s
    cadence_slope: tuple[float, float]
    backward_ratio: tuple[float, float]
    easy_speed: tuple[float, float]
    backward_speed: tuple[float, float]
    smart_share: float
    gps_noise_m: tuple[float, float]
    cadence_noise: tuple[float, float]
    hill_grade: tuple[float, float] | None = None  # None: every runner's hills reach 6 %
    day_level_sd: float = 0.0
    shortest_backward_s: float = 60.0
    cadence_dropouts: int = 3
    smart_max_s: int = 5


STANDARD = Spread("r", (166, 8, 148, 186), (4, 12), (0.70, 0.84), (2.4, 3.4), (1.6, 2.7), 0.3, (1, 5), (0.01, 0.03))
AMBIGUOUS = Spread(
    "a",
    (166, 10, 145, 190),
    (3, 14),
    (0.68, 0.94),
    (2.3, 3.6),
    (1.5, 2.9),
    0.4,
    (1, 12),
    (0.01, 0.05),
    hill_grade=(0.0, 0.12),
    day_level_sd=0.05,
    shortest_backward_s=20.0,
    cadence_dropouts=6,
    smart_max_s=8,
)


def runners(rng: np.random.Generator, count: int, spread: Spread = STANDARD) -> list[Runner]:
    mean, sd, lowest, highest = spread.cadence
    return [
        Runner(
            id=f"{spread.prefix}{i:02d}",
            cadence_at_3=float(np.clip(rng.normal(mean, sd), lowest, highest)),
            cadence_slope=float(rng.uniform(*spread.cadence_slope)),
            backward_ratio=float(rng.uniform(*spread.backward_ratio)),
            easy_speed=float(rng.uniform(*spread.easy_speed)),
            backward_speed=float(rng.uniform(*spread.backward_speed)),
            smart_recording=bool(rng.random() < spread.smart_share),
            gps_noise_m=float(rng.uniform(*spread.gps_noise_m)),
            cadence_noise=float(rng.uniform(*spread.cadence_noise)),
            hill_grade=float(rng.uniform(*spread.hill_grade)) if spread.hill_grade else 0.06,
            day_level_sd=spread.day_level_sd,
            shortest_backward_s=spread.shortest_backward_s,
            cadence_dropouts=spread.cadence_dropouts,
            smart_max_s=spread.smart_max_s,
        )
        for i in range(count)
    ]


def _plan(rng: np.random.Generator, runner: Runner) -> list[tuple[str, float, float]]:
    """(kind, seconds, speed) pieces: run, backward, walk, still, timer_stop."""
    pieces = [("run", rng.uniform(300, 900), runner.easy_speed * rng.uniform(0.9, 1.05))]
    for _ in range(int(rng.integers(0, 5))):
        pieces.append(
            ("backward", rng.uniform(runner.shortest_backward_s, 300), runner.backward_speed * rng.uniform(0.9, 1.1))
        )
        after = rng.random()
        if after < 0.2:
            pieces.append(("timer_stop", rng.uniform(20, 180), 0.0))
        elif after < 0.35:
            pieces.append(("still", rng.uniform(15, 90), 0.0))
        elif after < 0.5:
            pieces.append(("walk", rng.uniform(40, 120), rng.uniform(1.2, 1.6)))
        pieces.append(("run", rng.uniform(120, 600), runner.easy_speed * rng.uniform(0.85, 1.15)))
    if rng.random() < 0.4:
        pieces.append(("run", rng.uniform(30, 90), min(4.4, runner.easy_speed * 1.35)))  # strides
        pieces.append(("run", rng.uniform(200, 600), runner.easy_speed))
    if rng.random() < 0.3:
        pieces.insert(1, ("still", rng.uniform(15, 60), 0.0))
    return pieces


def simulate(rng: np.random.Generator, runner: Runner) -> tuple[pl.DataFrame, list[tuple[float, float]]]:
    """1-Hz samples (t_s, recorded, kind, lat, lon, altitude, distance, speed, cadence, hr) and backward truth."""
    pieces = _plan(rng, runner)
    kinds = np.concatenate([[k] * int(s) for k, s, _ in pieces])
    target = np.concatenate([[v] * int(s) for _, s, v in pieces])
    n = len(kinds)
    t = np.arange(n, dtype=float)
    hill = runner.hill_grade * rng.random() * np.sin(2 * np.pi * t / rng.uniform(300, 900) + rng.uniform(0, 6))
    moving = np.isin(kinds, ["run", "backward", "walk"])
    speed = np.where(moving, target * (1 - 2.5 * np.clip(hill, 0, None)) * (1 + 0.03 * _smooth(rng, n, 60)), 0.0)
    ratio = np.where(kinds == "backward", runner.backward_ratio + rng.uniform(-0.02, 0.02), 1.0)
    forward_spm = runner.cadence_at_3 + runner.cadence_slope * (speed - 3.0)
    day_level = rng.normal(1.0, runner.day_level_sd) if runner.day_level_sd else 1.0
    step = 60 * np.maximum(speed, 0.1) / forward_spm * ratio * day_level * (1 - 0.6 * np.clip(hill, 0, None))
    cadence = np.where(kinds == "walk", rng.uniform(108, 124), 60 * speed / step)
    cadence = np.where(moving, cadence * (1 + runner.cadence_noise * rng.standard_normal(n)), 0.0)
    dropout = _stretches(rng, n, count=int(rng.integers(0, runner.cadence_dropouts)), low=5, high=40)
    cadence = np.where(dropout, np.nan, cadence)
    heading = np.cumsum(0.02 * _smooth(rng, n, 120))
    distance = np.cumsum(speed)
    north, east = np.cumsum(speed * np.cos(heading)), np.cumsum(speed * np.sin(heading))
    gps_error = runner.gps_noise_m * np.stack([_smooth(rng, n, 30), _smooth(rng, n, 30)])
    lat = 47.0 + (north + gps_error[0]) / EARTH_M_PER_DEG
    lon = 8.0 + (east + gps_error[1]) / (EARTH_M_PER_DEG * math.cos(math.radians(47.0)))
    gps_lost = _stretches(rng, n, count=int(rng.random() < 0.3), low=10, high=60)
    lat, lon = np.where(gps_lost, np.nan, lat), np.where(gps_lost, np.nan, lon)
    reported = np.where(moving, speed * (1 + 0.04 * rng.standard_normal(n)), 0.0).clip(0)
    altitude = 400 + np.cumsum(hill * speed)
    hr = 120 + 15 * speed + 10 * (kinds == "backward") + 2 * rng.standard_normal(n)
    recorded = kinds != "timer_stop"
    if runner.smart_recording:
        keep = np.zeros(n, bool)
        at = 0
        while at < n:
            keep[at] = True
            at += int(rng.integers(1, runner.smart_max_s + 1))
        recorded &= keep
    frame = pl.DataFrame(
        {
            "t_s": t,
            "recorded": recorded,
            "kind": kinds,
            "lat_deg": lat,
            "lon_deg": lon,
            "altitude_m": altitude,
            "distance_m": distance,
            "speed_mps": reported,
            "cadence_spm": cadence,
            "heart_rate_bpm": hr,
        }
    ).with_columns(pl.col("lat_deg", "lon_deg", "cadence_spm").fill_nan(None))
    return frame, _backward_truth(kinds)


def _smooth(rng: np.random.Generator, n: int, scale_s: float) -> np.ndarray:
    """Unit-variance noise correlated over about `scale_s` seconds."""
    white = rng.standard_normal(n + int(4 * scale_s))
    kernel = np.exp(-0.5 * (np.arange(-2 * scale_s, 2 * scale_s + 1) / (scale_s / 2)) ** 2)
    smooth = np.convolve(white, kernel / np.sqrt((kernel**2).sum()), mode="same")
    return smooth[int(2 * scale_s) : int(2 * scale_s) + n]


def _stretches(rng: np.random.Generator, n: int, count: int, low: int, high: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for _ in range(count):
        start = int(rng.integers(0, max(1, n - high)))
        mask[start : start + int(rng.integers(low, high))] = True
    return mask


def _backward_truth(kinds: np.ndarray) -> list[tuple[float, float]]:
    """(start s, end s) of each backward piece."""
    intervals, start = [], None
    for i, kind in enumerate([*kinds, "end"]):
        if kind == "backward" and start is None:
            start = i
        elif kind != "backward" and start is not None:
            intervals.append((float(start), float(i)))
            start = None
    return intervals


def write_fit(path: Path, start: datetime, samples: pl.DataFrame) -> None:
    """A running activity: file_id, timer events around gaps, records, one lap, session, activity."""
    rows = samples.filter(pl.col("recorded"))
    base = fit_time(start)
    enc = CachingEncoder()
    enc.on_mesg(
        MESG["FILE_ID"],
        {"type": "activity", "manufacturer": "development", "product": 1, "serial_number": 4242, "time_created": base},
    )
    enc.on_mesg(MESG["EVENT"], _timer(base, "start"))
    previous = None
    for row in rows.iter_rows(named=True):
        stamp = base + int(row["t_s"])
        if previous is not None and row["t_s"] - previous > 10:  # a timer stop
            enc.on_mesg(MESG["EVENT"], _timer(base + int(previous), "stop_all"))
            enc.on_mesg(MESG["EVENT"], _timer(stamp, "start"))
        previous = row["t_s"]
        record = {
            "timestamp": stamp,
            "distance": row["distance_m"],
            "enhanced_speed": row["speed_mps"],
            "enhanced_altitude": row["altitude_m"],
            "heart_rate": int(row["heart_rate_bpm"]),
        }
        if row["lat_deg"] is not None:
            record |= {
                "position_lat": round(row["lat_deg"] * SEMICIRCLES_PER_DEG),
                "position_long": round(row["lon_deg"] * SEMICIRCLES_PER_DEG),
            }
        if row["cadence_spm"] is not None:
            strides = round(row["cadence_spm"] / 2 * 128)
            record |= {"cadence": strides // 128, "fractional_cadence": (strides % 128) / 128}
        enc.on_mesg(MESG["RECORD"], record)
    end = base + int(rows["t_s"][-1])
    elapsed, distance = float(end - base), float(rows["distance_m"][-1])
    enc.on_mesg(MESG["EVENT"], _timer(end, "stop_all"))
    enc.on_mesg(
        MESG["LAP"],
        {
            "message_index": 0,
            "timestamp": end,
            "start_time": base,
            "event": "lap",
            "event_type": "stop",
            "total_elapsed_time": elapsed,
            "total_timer_time": elapsed,
            "total_distance": distance,
            "sport": "running",
        },
    )
    enc.on_mesg(
        MESG["SESSION"],
        {
            "message_index": 0,
            "timestamp": end,
            "start_time": base,
            "event": "session",
            "event_type": "stop",
            "sport": "running",
            "sub_sport": "generic",
            "total_elapsed_time": elapsed,
            "total_timer_time": elapsed,
            "total_distance": distance,
            "first_lap_index": 0,
            "num_laps": 1,
        },
    )
    enc.on_mesg(
        MESG["ACTIVITY"],
        {
            "timestamp": end,
            "total_timer_time": elapsed,
            "num_sessions": 1,
            "type": "manual",
            "event": "activity",
            "event_type": "stop",
        },
    )
    path.write_bytes(enc.close())


def _timer(stamp: int, event_type: str) -> dict:
    return {"timestamp": stamp, "event": "timer", "event_type": event_type, "event_group": 0}


def generate(out_dir: Path, seed: int, athletes: int, sessions: int, ambiguous: bool = False) -> pl.DataFrame:
    """Write `athletes` × `sessions` FIT runs under out_dir/<athlete>/; the truth frame (athlete_id,
    file, start_ts, end_ts, labelled) is returned and written beside it as `<out_dir>.truth.parquet`."""
    rng = np.random.default_rng(seed)
    truth = []
    for runner in runners(rng, athletes, AMBIGUOUS if ambiguous else STANDARD):
        folder = out_dir / runner.id
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(sessions):
            start = START + timedelta(days=2 * number, seconds=int(rng.integers(0, 12 * 3600)))  # FIT: whole seconds
            samples, backward = simulate(rng, runner)
            name = f"{runner.id}/run-{number:03d}.fit"
            write_fit(out_dir / name, start, samples)
            recorded = samples.filter(pl.col("recorded"))["t_s"].to_numpy()
            for begin, end in backward:
                for piece_start, piece_end in _recorded_pieces(recorded, begin, end):
                    truth.append(
                        {
                            "athlete_id": runner.id,
                            "file": name,
                            "labelled": False,
                            "start_ts": start + timedelta(seconds=piece_start),
                            "end_ts": start + timedelta(seconds=piece_end),
                        }
                    )
    frame = pl.DataFrame(
        truth,
        schema={
            "athlete_id": pl.String,
            "file": pl.String,
            "labelled": pl.Boolean,
            "start_ts": pl.Datetime("us", "UTC"),
            "end_ts": pl.Datetime("us", "UTC"),
        },
    )
    frame.write_parquet(out_dir.with_name(out_dir.name + ".truth.parquet"))
    return frame


def _recorded_pieces(recorded: np.ndarray, begin: float, end: float) -> list[tuple[float, float]]:
    """The parts of [begin, end) the watch recorded (a gap over 10 s between samples is a pause)."""
    inside = recorded[(recorded >= begin) & (recorded < end)]
    if not len(inside):
        return []
    breaks = np.flatnonzero(np.diff(inside) > 10)
    starts = np.concatenate([[inside[0]], inside[breaks + 1]])
    ends = np.concatenate([inside[breaks] + 1, [min(end, inside[-1] + 1)]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--athletes", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=12)
    parser.add_argument("--ambiguous", action="store_true", help="hard cases, for calibrating confidence")
    args = parser.parse_args(argv)
    truth = generate(args.out_dir, args.seed, args.athletes, args.sessions, args.ambiguous)
    print(f"{args.athletes * args.sessions} runs, {truth.height} backward intervals in {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
