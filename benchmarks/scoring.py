"""Scoring's CPU over the ten-year export: `score_activities` on each batch `score_range` hands to its
workers, in this one process with one Polars thread (as a worker has).

    python benchmarks/scoring.py --home DIR [--every N] [--save DIR] [--compare DIR]

The home is imported from the cached export of `benchmarks/ten_years.py` once (kept: later runs, on
any branch, score the same warehouse).  Each batch is read as `score_range` reads it, then scored;
both timed with `time.process_time` (the reads with DuckDB's threads).  `--save` writes each batch's segments, activity_energy and
activity_detection as Parquet; `--compare` checks them against a saved run exactly (every value,
floats to the last bit), which is how a change to scoring shows it changes nothing.
"""

from __future__ import annotations

import os

os.environ["POLARS_MAX_THREADS"] = "1"  # before Polars is imported: as in a scoring worker

import argparse
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.decode_corpus import machine
from benchmarks.ten_years import FULL, export_for, run_import
from retrostride.assets.detection import BATCHES_PER_READ, SCORE_BATCH_RECORDS
from retrostride.assets.resources import Models, Storage
from retrostride.assets.settings import Settings
from retrostride.assets.transforms.scoring import RECORD_COLUMNS, Scores, score_activities
from retrostride.warehouse import scores
from retrostride.warehouse.profiles import profiles_frame


def batches(home: Path, every: int) -> tuple[dict, Iterator[dict[str, pl.DataFrame]]]:
    """The keyword arguments every batch shares, and every `every`-th batch's frames, read as needed."""
    os.environ.update({"RETROSTRIDE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")})
    settings = Settings.from_env()
    storage, models = Storage.from_settings(settings), Models.from_settings(settings)
    detection, energy = models.configs()
    warehouse = storage.warehouse
    common = {
        "baselines": scores.gait_baselines(warehouse),
        "body_measurements": scores.body_measurements(warehouse),
        "profiles": profiles_frame(storage.profiles()),
        "detection": detection,
        "energy": energy,
    }
    ranges = scores.month_batches(warehouse, date(1990, 1, 1), date(2100, 1, 1), SCORE_BATCH_RECORDS)
    read = scores.batches_started(warehouse, ranges, BATCHES_PER_READ, RECORD_COLUMNS)
    return common, (frames.as_dict() for n, (_, _, frames) in enumerate(read) if n % every == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a kept home (imported from the export if empty)")
    parser.add_argument("--every", type=int, default=1, help="score every N-th batch only")
    parser.add_argument("--save", type=Path, help="write each batch's score rows here")
    parser.add_argument("--compare", type=Path, help="compare each batch's score rows with a saved run's")
    args = parser.parse_args()
    if not (args.home / "catalog.sqlite").exists():
        print("Importing the ten-year export into the home (once) …", flush=True)
        run_import(args.home, [export_for(FULL)[0]], workers=os.cpu_count() or 1)
    common, frames = batches(args.home, args.every)
    cpu_s, read_s, samples, differing, n = 0.0, 0.0, 0, [], 0
    reading = time.process_time()
    for n, batch in enumerate(frames, 1):
        started = time.process_time()
        read_s += started - reading
        scored = score_activities(**batch, **common)
        cpu_s += time.process_time() - started
        samples += batch["records"].height
        differing += compared(scored, n, args.save, args.compare)
        reading = time.process_time()
    read_s += time.process_time() - reading
    print(f"Machine: {machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{n} batches, {samples:,} samples: {cpu_s:.2f} CPU-s scoring, "
        f"{cpu_s / max(samples, 1) * 1e6:.2f} CPU-µs per sample; "
        f"reading every batch from the warehouse (as `score_range` does, in the pipeline's process): {read_s:.2f} CPU-s"
    )
    if args.compare:
        print("score rows identical to the saved run" if not differing else "DIFFERENT: " + ", ".join(differing))


def compared(scored: Scores, batch: int, save: Path | None, compare: Path | None) -> list[str]:
    """Write and/or compare one batch's score tables: the names of those that differ."""
    differing = []
    for table in ("segments", "activity_energy", "activity_detection"):
        frame, name = getattr(scored, table), f"{batch:03d}-{table}.parquet"
        if save:
            save.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(save / name)
        if compare and not frame.equals(pl.read_parquet(compare / name), null_equal=True):
            differing.append(f"batch {batch} {table}")
    return differing


if __name__ == "__main__":
    main()
