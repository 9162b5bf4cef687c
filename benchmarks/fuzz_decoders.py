"""Fuzz the decoders with seeded mutants of the corpus FIT, GPX and TCX files and print the outcomes.

    python benchmarks/fuzz_decoders.py [--mutants 3000] [--seed 1] [--timeout 60] [--max-kb 130]

Every FIT mutant goes through fitparse (`decode_fit`) and the columnar decoder, every GPX mutant
through `decode_gpx` (streamed, or gpxpy where it must), every TCX mutant through `decode_tcx`, each
in a watched child process (benchmarks/fuzzing.py).  A decoder may accept a mutant (ok/partial) or
reject it with a reason in words (failed); an exception other than DecodeError, a reason holding
Python exception text, a frame off the canonical schema, a hang or a dead interpreter is a bug: the
mutant is saved under --keep for replay and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.corpora import corpus_files
from benchmarks.fuzzing import ACCEPTED, run, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutants", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds one decode may take before it counts as a hang"
    )
    parser.add_argument(
        "--max-kb", type=int, default=130, help="mutate corpus files up to this size (fitparse is slow)"
    )
    parser.add_argument("--keep", type=Path, default=ROOT / "fuzz-findings")
    args = parser.parse_args()
    files = [
        f.path
        for f in corpus_files()
        if f.format in ("fit", "gpx", "tcx") and f.path.stat().st_size <= args.max_kb * 1024
    ]
    started = time.perf_counter()

    def progress(done: int, results) -> None:
        if done % 250 == 0:
            print(f"  {done} mutants, {time.perf_counter() - started:.0f} s: {dict(summary(results))}", flush=True)

    print(f"{args.mutants} mutants of {len(files)} corpus files (seed {args.seed}, timeout {args.timeout:.0f} s)")
    results = run(files, args.mutants, args.seed, args.timeout, progress)
    elapsed = time.perf_counter() - started
    for decoder, counts in summary(results).items():
        print(
            f"{decoder:9} {sum(counts.values()):6} decodes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )
    mutations = Counter(r.mutation for r in results if r.decoder != "columnar")
    print("mutations:", ", ".join(f"{k} {v}" for k, v in sorted(mutations.items())))
    bugs = [r for r in results if r.status not in ACCEPTED]
    print(f"{len(bugs)} bugs in {elapsed:.0f} s")
    if bugs:
        args.keep.mkdir(parents=True, exist_ok=True)
        for i, r in enumerate(bugs):
            name = f"{i:04d}-{r.decoder}-{r.status}-{r.mutation}-{r.source}"
            (args.keep / name).write_bytes(r.mutant)
            print(f"- {name}: {(r.reason or '').strip().splitlines()[-1] if r.reason else ''}")
        print(f"mutants kept in {args.keep}")
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
