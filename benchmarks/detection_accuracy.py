"""Backward-detection accuracy on an independent generator and on the real corpus files.

    python benchmarks/detection_accuracy.py [--seeds 31 37] [--athletes 10] [--sessions 12] [--keep DIR]

Exports come from `benchmarks/retro_generator.py` (a gait model other than the product's sample
export, on which the tests run).  Reported: backward-time precision and recall with each athlete's
whole history (baselines fitted as the pipeline fits them), the same for a cold start (each
athlete's first 4 activities only: the prior blended with them), the calibration table of segment
confidence over both, the calibration table on `--ambiguous` exports (hard cases, at the seeds
given and those + 10, 16 athletes × 10 runs; the confidence was fitted on other seeds by
`benchmarks/calibrate_confidence.py`), and, on the real running files of
shared/corpora imported through the pipeline one athlete per source folder, backward seconds and the
share of running time classified forward (activities whose sport is running, a copy of another
activity counted once as the marts count it, pauses excluded; of all of them, and of those with
cadence and speed that gait can score).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's benchmarks package

from benchmarks.corpora import corpus_files
from benchmarks.device_totals import import_all
from benchmarks.evaluation import backward_time_scores, calibration_table, load_files, segment_correctness
from benchmarks.retro_generator import generate
from retrostride.assets.transforms.gait import fit_gait_baselines
from retrostride.assets.transforms.gait_prior import with_prior_baselines
from retrostride.assets.transforms.model_config import DetectionConfig
from retrostride.assets.transforms.segments import detect_segments

COLD_START_RUNS = 4


def detect_as_pipeline(frames, config: DetectionConfig, with_features: bool = False) -> pl.DataFrame:
    """Segments the way the pipeline makes them: baselines from the activities, the prior where none."""
    baselines = fit_gait_baselines(frames.records, frames.activities, frames.laps, config)
    baselines = with_prior_baselines(baselines, frames.activities, None, config)
    return detect_segments(frames.records, frames.activities, frames.laps, baselines, config, with_features)


def first_activities(frames, count: int):
    """Each athlete's first `count` activities, with their records and laps."""
    chosen = frames.activities.sort("start_ts").group_by("athlete_id", maintain_order=True).head(count)
    ids = chosen["activity_id"].implode()
    return type(frames)(
        frames.records.filter(pl.col("activity_id").is_in(ids)),
        chosen,
        frames.laps.filter(pl.col("activity_id").is_in(ids)),
    )


def export_segments(out_dir: Path, config: DetectionConfig, cold: int | None = None) -> pl.DataFrame:
    files = sorted(out_dir.rglob("*.fit"))
    frames = load_files(files, out_dir)
    if cold:
        frames = first_activities(frames, cold)
    segments = detect_as_pipeline(frames, config, with_features=True)
    return segments.with_columns(pl.col("activity_id").alias("file"))


def judged_modes(frames, truth: pl.DataFrame, config: DetectionConfig) -> pl.DataFrame:
    """Forward/backward segments of `frames` with the whole history and as a cold start, judged
    against `truth` (`segment_correctness`), with `cold` saying which."""
    judged = []
    for cold, chosen in ((False, frames), (True, first_activities(frames, COLD_START_RUNS))):
        segments = detect_as_pipeline(chosen, config, with_features=True).with_columns(
            pl.col("activity_id").alias("file")
        )
        judged.append(segment_correctness(segments, truth).with_columns(pl.lit(cold).alias("cold")))
    return pl.concat(judged)


def ambiguous_judged(
    base: Path, seeds: list[int], athletes: int, sessions: int, config: DetectionConfig
) -> pl.DataFrame:
    """`judged_modes` of `--ambiguous` exports of the independent generator (written under `base`)."""
    judged = []
    for seed in seeds:
        out_dir = base / f"ambiguous-{seed}-{athletes}x{sessions}"
        if not out_dir.exists():
            generate(out_dir, seed, athletes, sessions, ambiguous=True)
        truth = pl.read_parquet(out_dir.with_name(out_dir.name + ".truth.parquet"))
        frames = load_files(sorted(out_dir.rglob("*.fit")), out_dir)
        key = pl.concat_str(pl.lit(f"{seed}:"), "file").alias("file")
        judged.append(judged_modes(frames, truth, config).with_columns(key))
    return pl.concat(judged)


#: Per athlete (source folder), of their running activities (sport `running`, copies of another
#: activity left out as the marts leave them out), seconds of segments other than pauses.
REAL_CORPUS_SQL = """
    WITH running AS (
        SELECT a.athlete_id, a.activity_id, d.detection_status
        FROM activities a JOIN activity_detection d USING (activity_id)
        WHERE a.sport = 'running' AND a.duplicate_of IS NULL),
    moving AS (
        SELECT r.*, s.direction, s.gait, s.duration_s
        FROM running r JOIN segments s USING (activity_id) WHERE s.evidence <> 'pause')
    SELECT athlete_id AS source,
           count(DISTINCT activity_id) AS running_activities,
           (SELECT count(*) FROM activities c WHERE c.athlete_id = m.athlete_id AND c.sport = 'running'
                AND c.duplicate_of IS NOT NULL) AS copies_left_out,
           sum(duration_s) AS running_s,
           coalesce(sum(duration_s) FILTER (direction = 'backward'), 0) AS backward_s,
           coalesce(sum(duration_s) FILTER (direction = 'forward'), 0) AS forward_s,
           coalesce(sum(duration_s) FILTER (detection_status LIKE 'scored%'), 0) AS scorable_s,
           coalesce(sum(duration_s) FILTER (detection_status LIKE 'scored%' AND direction = 'forward'), 0)
               AS scorable_forward_s,
           coalesce(sum(duration_s) FILTER (detection_status LIKE 'scored%' AND gait = 'run'), 0) AS run_gait_s,
           coalesce(sum(duration_s) FILTER (detection_status LIKE 'scored%' AND gait = 'run'
                AND direction = 'forward'), 0) AS run_gait_forward_s
    FROM moving m GROUP BY athlete_id ORDER BY athlete_id
"""
#: Per athlete, how many running activities (copies left out) have each detection status.
REAL_CORPUS_STATUSES_SQL = """
    SELECT a.athlete_id AS source, string_agg(d.detection_status || ':' || n, ', ' ORDER BY d.detection_status)
        AS statuses
    FROM (SELECT a.athlete_id, d.detection_status, count(*) AS n
          FROM activities a JOIN activity_detection d USING (activity_id)
          WHERE a.sport = 'running' AND a.duplicate_of IS NULL GROUP BY ALL) d
    JOIN (SELECT DISTINCT athlete_id FROM activities) a USING (athlete_id)
    GROUP BY a.athlete_id
"""


def real_corpus(home: Path) -> pl.DataFrame:
    """The real corpus files imported through the pipeline into a fresh home at `home`, one athlete
    per source folder: per athlete, their running time and its forward/backward seconds."""
    folders = sorted({f.path.parent for f in corpus_files(expect="ok") + corpus_files(expect="recoverable")})
    warehouse = None
    for folder in folders:
        paths = [f.path for f in corpus_files() if f.path.parent == folder and f.expect != "error"]
        warehouse = import_all(home, paths, athlete=folder.name)
    if warehouse is None:
        return pl.DataFrame()
    return warehouse.query(REAL_CORPUS_SQL).join(warehouse.query(REAL_CORPUS_STATUSES_SQL), on="source", how="left")


def export_arguments(
    argv: list[str] | None, description: str, seeds: list[int], athletes: int, length: tuple[str, int]
) -> argparse.Namespace:
    """--seeds, --athletes, --<length> (sessions or weeks) and --keep of a benchmark over generated exports."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seeds", type=int, nargs="+", default=seeds)
    parser.add_argument("--athletes", type=int, default=athletes)
    parser.add_argument(f"--{length[0]}", type=int, default=length[1])
    parser.add_argument("--keep", type=Path, help="write the exports here instead of a temp folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = export_arguments(argv, __doc__.splitlines()[0], [31, 37], 10, ("sessions", 12))
    ambiguous_seeds = args.seeds + [seed + 10 for seed in args.seeds]
    config = DetectionConfig()
    for option, value in (("tbl_rows", 50), ("tbl_cols", 20), ("tbl_width_chars", 160)):
        getattr(pl.Config, f"set_{option}")(value)
    judged = []
    with tempfile.TemporaryDirectory() as scratch:
        base = args.keep or Path(scratch)
        for mode, cold in (
            ("whole history", None),
            (f"cold start (first {COLD_START_RUNS} activities)", COLD_START_RUNS),
        ):
            all_segments, all_truth = [], []
            for seed in args.seeds:
                out_dir = base / f"retro-{seed}"
                if not out_dir.exists():
                    generate(out_dir, seed, args.athletes, args.sessions)
                truth = pl.read_parquet(out_dir.with_name(out_dir.name + ".truth.parquet"))
                segments = export_segments(out_dir, config, cold)
                key = pl.concat_str(pl.lit(f"{seed}:"), "file").alias("file")
                all_segments.append(segments.with_columns(key))
                all_truth.append(truth.with_columns(key))
            segments, truth = pl.concat(all_segments), pl.concat(all_truth)
            truth = truth.join(segments.select("file").unique(), on="file", how="semi")
            scores = backward_time_scores(segments, truth).row(0, named=True)
            unknown_s = segments.filter(pl.col("direction") == "unknown")["duration_s"].sum()
            print(
                f"{mode}: precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  "
                f"(detected {scores['detected_s'] / 60:.0f} min, true {scores['truth_s'] / 60:.0f} min; "
                f"{segments['file'].n_unique()} activities; unknown {unknown_s / segments['duration_s'].sum():.1%} of time)"
            )
            judged.append(segment_correctness(segments, truth))
        ambiguous = ambiguous_judged(base, ambiguous_seeds, 16, 10, config)
    print("\ncalibration of segment confidence on these exports (both modes):")
    print(calibration_table(pl.concat(judged)))
    print(f"\ncalibration on --ambiguous exports, seeds {ambiguous_seeds}, 16 athletes × 10 runs (both modes):")
    print(calibration_table(ambiguous))
    print("\nreal corpus files imported through the pipeline, one athlete per source (running activities):")
    with tempfile.TemporaryDirectory() as scratch:
        corpus = real_corpus(Path(scratch))
    print(corpus)
    total = corpus.select(pl.exclude("source", "statuses").sum()).row(0, named=True)
    print(
        f"backward {total['backward_s']:.0f} s; forward {total['forward_s'] / total['running_s']:.1%} of running time "
        f"(pauses excluded), {total['scorable_forward_s'] / total['scorable_s']:.1%} of the running time of "
        f"activities gait can score (status scored or scored_with_prior), "
        f"{total['run_gait_forward_s'] / total['run_gait_s']:.1%} of their time at a running gait"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
