"""Backward-detection accuracy on generated exports: backward-time precision and recall per seed.

    python benchmarks/detection_accuracy.py [--seeds 7 11 23] [--athletes 6] [--weeks 16] [--keep DIR]

Generates an export per seed (pipelines.sample_export), decodes every activity file, fits the gait
baselines on the whole history, detects segments and scores them against the export's truth.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's benchmarks package

from benchmarks.evaluation import backward_time_scores, load_files, missed_labelled
from retrostride.assets.transforms.gait import fit_gait_baselines
from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.assets.transforms.segments import detect_segments


def evaluate_export(out_dir: Path, truth_dir: Path, config: DetectionConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Segments (with `file`) and truth intervals for one generated export."""
    files = sorted(p for p in out_dir.rglob("*") if p.suffix in (".fit", ".gpx") and not p.name.startswith("weight-"))
    frames = load_files(files, out_dir)
    baselines = fit_gait_baselines(frames.records, frames.activities, frames.laps, config)
    segments = detect_segments(frames.records, frames.activities, frames.laps, baselines, config)
    truth = pl.read_parquet(truth_dir / "backward_intervals.parquet")
    return segments.with_columns(pl.col("activity_id").alias("file")), truth


def main(argv: list[str] | None = None) -> int:
    from retrostride.pipelines.sample_export import generate_export

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 11, 23])
    parser.add_argument("--athletes", type=int, default=6)
    parser.add_argument("--weeks", type=int, default=16)
    parser.add_argument("--keep", type=Path, help="write the exports here instead of a temp folder")
    args = parser.parse_args(argv)
    config = DetectionConfig()
    pl.Config.set_tbl_rows(50)
    pl.Config.set_tbl_cols(20)
    pl.Config.set_tbl_width_chars(160)
    all_segments, all_truth = [], []
    with tempfile.TemporaryDirectory() as scratch:
        base = args.keep or Path(scratch)
        for seed in args.seeds:
            out_dir = base / f"export-{seed}"
            started = time.perf_counter()
            if not (out_dir.exists() and (base / f"export-{seed}.truth").exists()):
                generate_export(out_dir, seed=seed, athletes=args.athletes, weeks=args.weeks)
            segments, truth = evaluate_export(out_dir, base / f"export-{seed}.truth", config)
            elapsed = time.perf_counter() - started
            scores = backward_time_scores(segments, truth)
            missed = missed_labelled(segments, truth)
            row = scores.row(0, named=True)
            print(
                f"seed {seed}: precision {row['precision']:.3f}  recall {row['recall']:.3f}  "
                f"(detected {row['detected_s'] / 60:.0f} min, true {row['truth_s'] / 60:.0f} min; "
                f"{missed.height} labelled intervals missed; {elapsed:.0f} s)"
            )
            all_segments.append(segments.with_columns(pl.lit(seed).alias("seed"), athlete_id=pl.col("athlete_id")))
            all_truth.append(truth.with_columns(pl.lit(seed).alias("seed")))
    segments, truth = pl.concat(all_segments), pl.concat(all_truth)
    segments = segments.with_columns(pl.concat_str(pl.col("seed").cast(pl.String), pl.lit(":"), "file").alias("file"))
    truth = truth.with_columns(pl.concat_str(pl.col("seed").cast(pl.String), pl.lit(":"), "file").alias("file"))
    print("\nper athlete (all seeds):")
    print(backward_time_scores(segments, truth, by=["athlete_id"]).sort("athlete_id"))
    overall = backward_time_scores(segments, truth).row(0, named=True)
    print(f"\noverall: precision {overall['precision']:.3f}  recall {overall['recall']:.3f}  "
          f"labelled intervals missed: {missed_labelled(segments, truth).height}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
