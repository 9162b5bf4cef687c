"""Mutants of the real corpus through every decoder: a reason or a result, never a crash or a hang.

A few hundred seeded mutants here (`RETROSTRIDE_FUZZ_MUTANTS` for more); thousands with
`python benchmarks/fuzz_decoders.py`.  Each decode runs in a watched child process (tests/fuzzing.py).
"""

import os

import pytest

from benchmarks.fuzzing import ACCEPTED, Harness, fit_layout, fit_mutant, refit, run, summary
from tests.conftest import CORPORA, corpus_files

MUTANTS = int(os.environ.get("RETROSTRIDE_FUZZ_MUTANTS", "300"))
SMALL = 60 * 1024  # fitparse decodes ~5,000 records/s: small files keep the quick run quick


@pytest.mark.slow
def test_mutated_corpus_files_are_decoded_or_rejected_with_a_reason():
    files = [f.path for f in corpus_files() if f.format in ("fit", "gpx", "tcx") and f.path.stat().st_size <= SMALL]
    if not files:
        pytest.skip(f"corpora not found at {CORPORA}")
    results = run(files, MUTANTS, seed=20261123, timeout_s=60)
    bugs = [
        f"{r.decoder} on a {r.mutation} mutant of {r.source}: {r.status}: {r.reason}"
        for r in results
        if r.status not in ACCEPTED
    ]
    assert bugs == []
    counts = summary(results)
    for decoder in ("fitparse", "columnar", "gpx"):  # the mutants reach every outcome, not only rejection
        assert {"ok", "failed"} <= set(counts[decoder]), (decoder, counts[decoder])
    assert counts["fitparse"]["partial"] > 0 and counts["columnar"]["partial"] > 0
    failed = [r for r in results if r.status == "failed"]
    assert all(r.reason and len(r.reason) > 10 for r in failed)


def test_the_harness_reports_a_hang_and_a_dead_decoder_instead_of_waiting():
    data = (CORPORA / "fit" / "python-fitparse" / "Activity.fit").read_bytes()
    with Harness(timeout_s=2) as harness:
        assert harness.decode("tests.faulty_decoders:decode", data, "-hang.fit")[0] == "hang"
        assert harness.decode("tests.faulty_decoders:decode", data, "-segfault.fit")[0] == "crash"
        assert harness.decode("fitparse", data, ".fit")[0] == "ok"  # a fresh child takes over


def test_a_refitted_file_is_the_original():
    """The mutator's framing walk and CRC are right: re-framing an intact file changes no byte."""
    data = (CORPORA / "fit" / "python-fitparse" / "garmin-fenix-5-run.fit").read_bytes()
    layout = fit_layout(data)
    end = layout.messages[-1][0] + layout.messages[-1][1]
    assert refit(data[layout.header_size : end], data[: layout.header_size]) == data
    import random

    kinds = {fit_mutant(data, random.Random(seed), data)[0].split("-")[0] for seed in range(200)}
    assert {"bitflip", "truncate", "splice", "field", "definition", "data", "compressed"} <= kinds
