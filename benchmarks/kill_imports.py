"""Kill real imports at random moments and check that the next run ends where a clean import ends.

    python benchmarks/kill_imports.py [--trials 20] [--seed 1] [--keep DIR]

Each trial SIGKILLs `retrostride import` (and its decoder processes) at a random moment of its
working time, runs the import again, and compares row counts and content checksums of every
warehouse table, and the lake, with one clean import (benchmarks/crash_trials.py).  Prints one line per
trial and the totals; exit status 1 if any trial lost or changed anything.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.corpora import CORPORA
from benchmarks.crash_trials import build_export, clean_import, kill_moments, kill_trial, working_time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the homes of failed trials here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="retrostride-kill-"))
    try:
        export = build_export(folder, CORPORA)
        reference, clean = clean_import(folder, export)
        print(
            f"clean import: {clean.elapsed_s:.1f} s ({working_time(clean):.1f} s after the warehouse appears); "
            + ", ".join(f"{t} {n}" for t, (n, _) in reference.items())
        )
        survived = killed = 0
        started = time.perf_counter()
        for i, moment in enumerate(kill_moments(clean, args.trials, args.seed)):
            trial = kill_trial(folder / f"trial-{i}", export, reference, moment)
            survived += trial.survived
            killed += trial.killed
            verdict = "same result" if trial.survived else "DIFFERS: " + "; ".join(trial.differences + trial.problems)
            print(
                f"trial {i:3}: killed {'at' if trial.killed else 'after the end,'} {moment:5.2f} s: {verdict}",
                flush=True,
            )
            if not trial.survived and args.keep:
                shutil.copytree(folder / f"trial-{i}", args.keep / f"trial-{i}", dirs_exist_ok=True)
            shutil.rmtree(folder / f"trial-{i}", ignore_errors=True)
        print(
            f"{survived}/{args.trials} trials ended with the clean import's tables and lake "
            f"({killed} killed mid-import) in {time.perf_counter() - started:.0f} s"
        )
        return 0 if survived == args.trials else 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
