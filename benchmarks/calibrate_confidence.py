"""Fit the segment-confidence weights (`calibration_backward`, `calibration_forward`) on generated data.

    python benchmarks/calibrate_confidence.py [--seeds 101 103] [--athletes 6] [--weeks 6]

Exports come from the product's sample generator (`pipelines/sample_export`), the gait model the
tests use, never from the independent generator the weights are checked on
(`benchmarks/detection_accuracy.py`).  Segments are detected as the pipeline detects them, with the
whole history and as a cold start (each athlete's first 4 activities); each forward or backward
segment is right when most of its time agrees with the truth.  A logistic regression per direction
(Newton's method, a small ridge penalty) over the confidence FEATURES gives the weights, printed as
the lines to paste into `DetectionConfig` (or a `[detection]` table of model.toml).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's benchmarks package

from benchmarks.detection_accuracy import COLD_START_RUNS, detect_as_pipeline, export_arguments, first_activities
from benchmarks.evaluation import calibration_table, load_files, segment_correctness
from retrostride.assets.transforms.confidence import FEATURES
from retrostride.assets.transforms.model_config import DetectionConfig


def logistic_weights(x: np.ndarray, y: np.ndarray, ridge: float = 1.0, iterations: int = 50) -> np.ndarray:
    """Weights w maximising the log-likelihood of y ~ Bernoulli(1 / (1 + e^(−x·w))) less ridge·|w|²/2."""
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        gradient = x.T @ (y - p) - ridge * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + ridge * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w += step
        if np.abs(step).max() < 1e-8:
            break
    return w


def judged_segments(out_dir: Path, config: DetectionConfig) -> pl.DataFrame:
    """Forward/backward segments of one sample export (whole history and cold start), judged."""
    files = sorted(p for p in out_dir.rglob("*") if p.suffix in (".fit", ".gpx") and not p.name.startswith("weight-"))
    frames = load_files(files, out_dir)
    truth = pl.read_parquet(out_dir.with_name(out_dir.name + ".truth") / "backward_intervals.parquet")
    judged = []
    for chosen in (frames, first_activities(frames, COLD_START_RUNS)):
        segments = detect_as_pipeline(chosen, config, with_features=True).with_columns(
            pl.col("activity_id").alias("file")
        )
        judged.append(segment_correctness(segments, truth))
    return pl.concat(judged)


def main(argv: list[str] | None = None) -> int:
    from retrostride.pipelines.sample_export import generate_export

    args = export_arguments(argv, __doc__.splitlines()[0], [101, 103], 6, ("weeks", 6))
    config = DetectionConfig()
    judged = []
    with tempfile.TemporaryDirectory() as scratch:
        base = args.keep or Path(scratch)
        for seed in args.seeds:
            out_dir = base / f"export-{seed}"
            if not out_dir.exists():
                generate_export(out_dir, seed=seed, athletes=args.athletes, weeks=args.weeks)
            judged.append(judged_segments(out_dir, config))
    segments = pl.concat(judged)
    print(f"{segments.height} segments, {segments['correct'].mean():.3f} right with the current weights")
    print(calibration_table(segments))
    for direction in ("backward", "forward"):
        chosen = segments.filter(pl.col("direction") == direction)
        weights = logistic_weights(chosen.select(FEATURES).to_numpy(), chosen["correct"].cast(pl.Float64).to_numpy())
        rounded = ", ".join(f"{w:.3f}" for w in weights)
        print(
            f"calibration_{direction}: tuple[float, ...] = ({rounded})  # {chosen.height} segments, "
            f"{chosen['correct'].mean():.3f} right"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
