"""The real test files in shared/corpora (next to the clone) and their manifest."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
if not CORPORA.exists():  # a clone next to shared/, as CI has it
    CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    format: str
    expect: str
    reference_records: int | None
    notes: str


def corpus_files(fmt: str | None = None, expect: str | None = None) -> list[CorpusFile]:
    """Rows of shared/corpora/manifest.csv, filtered."""
    if not CORPORA.exists():
        return []
    with open(CORPORA / "manifest.csv", newline="") as handle:
        rows = [
            CorpusFile(
                CORPORA / r["path"],
                r["format"],
                r["expect"],
                int(r["reference_records"]) if r["reference_records"] else None,
                r["notes"],
            )
            for r in csv.DictReader(handle)
        ]
    return [r for r in rows if (fmt is None or r.format == fmt) and (expect is None or r.expect == expect)]
