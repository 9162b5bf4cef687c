"""Fit segment confidence (`calibration_*` of `DetectionConfig`) on generated data.

    python benchmarks/calibrate_confidence.py [--seeds 101 103 … 181] [--athletes 16] [--sessions 10] [--keep DIR]

The data: `--ambiguous` exports of the independent generator (`benchmarks/retro_generator.py`:
backward step ratios up to the forward/backward boundary, noisy and sparse cadence, GPS noise,
hills, short stretches), at seeds other than the ones `benchmarks/detection_accuracy.py` and
`tests/test_confidence_calibration.py` check the calibration on.  Segments are detected as the
pipeline detects them, with the whole history and as a cold start (each athlete's first 4
activities); each forward or backward segment is right when most of its time agrees with the truth.
Then, as `assets/transforms/confidence.py` applies them: a logistic regression per direction
(Newton's method, a small ridge penalty) over the confidence FEATURES gives the score weights, and an
isotonic regression of rightness on the score, over blocks of at least `MIN_BLOCK` segments, the
steps of the probability.  Printed: the lines to paste into `DetectionConfig` (and bump
`DETECTION_CODE_VERSION` when the code changed too).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's benchmarks package

from benchmarks.detection_accuracy import ambiguous_judged
from benchmarks.evaluation import calibration_table
from retrostride.assets.transforms.confidence import FEATURES
from retrostride.assets.transforms.model_config import DetectionConfig

#: Seeds of the `--ambiguous` exports the calibration is fitted on (checks use others).
CALIBRATION_SEEDS = (101, 103, 107, 109, 113, 127, 131, 139, 149, 151, 157, 163, 167, 173, 179, 181)
#: The fewest segments behind one knot of the isotonic map (fewer: the map follows noise).
MIN_BLOCK = 300


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


def isotonic_knots(score: np.ndarray, right: np.ndarray, min_block: int = MIN_BLOCK) -> tuple[list, list]:
    """A non-decreasing step fit of `right` on `score`: each block's highest score but the last's
    (the steps' upper edges) and every block's share right.  Pool-adjacent-violators, then blocks
    smaller than `min_block` pooled with a neighbour."""
    order = np.argsort(score, kind="stable")
    blocks: list[list[float]] = []  # [sum right, count, first index]
    for i, y in enumerate(right[order].astype(float)):
        blocks.append([y, 1, i])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            total, count, _ = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    pooled: list[list[float]] = []
    for block in blocks:
        if pooled and pooled[-1][1] < min_block:
            pooled[-1][0] += block[0]
            pooled[-1][1] += block[1]
        else:
            pooled.append(list(block))
    if len(pooled) > 1 and pooled[-1][1] < min_block:
        total, count, _ = pooled.pop()
        pooled[-1][0] += total
        pooled[-1][1] += count
    ranked = score[order]
    knots = [float(ranked[int(first + count) - 1]) for _, count, first in pooled[:-1]]
    shares = np.maximum.accumulate([total / count for total, count, _ in pooled])
    return knots, [float(p) for p in shares]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(CALIBRATION_SEEDS))
    parser.add_argument("--athletes", type=int, default=16)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="write the exports here instead of a temp folder")
    args = parser.parse_args(argv)
    config = DetectionConfig()
    with tempfile.TemporaryDirectory() as scratch:
        segments = ambiguous_judged(args.keep or Path(scratch), args.seeds, args.athletes, args.sessions, config)
    print(f"{segments.height} segments, {segments['correct'].mean():.3f} right; with the current calibration:")
    print(calibration_table(segments))
    score = np.zeros(segments.height)
    for direction in ("backward", "forward"):
        chosen = (segments["direction"] == direction).to_numpy()
        x = segments.filter(pl.col("direction") == direction).select(FEATURES).to_numpy()
        right = segments.filter(pl.col("direction") == direction)["correct"].cast(pl.Float64).to_numpy()
        weights = logistic_weights(x, right)
        score[chosen] = x @ weights
        rounded = ", ".join(f"{w:.3f}" for w in weights)
        print(
            f"calibration_{direction}: tuple[float, ...] = ({rounded})  # {chosen.sum()} segments, "
            f"{right.mean():.3f} right"
        )
    knots, shares = isotonic_knots(score, segments["correct"].to_numpy())
    print(f"calibration_scores: tuple[float, ...] = ({', '.join(f'{k:.3f}' for k in knots)})")
    print(f"calibration_probabilities: tuple[float, ...] = ({', '.join(f'{p:.3f}' for p in shares)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
