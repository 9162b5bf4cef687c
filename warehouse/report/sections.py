"""Each athlete's drawn part of the report (its HTML and its charts' specifications), kept between
redraws under a key of everything it shows: a redraw draws only the athletes whose key changed.

The key is a hash of the athlete's rows in every per-athlete frame, the study settings the part
quotes, and the code that draws it; a missing, unreadable or stale entry is simply drawn again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import polars as pl
import polars.selectors as cs

from .data import ReportData

SIGNIFICANT_DIGITS = 9  # DuckDB's parallel sums differ in the last bits between reads: not a change


@dataclass(frozen=True)
class DrawnSection:
    """One athlete's part of the page: its HTML and the specifications of the charts it places."""

    html: str
    specs: dict[str, dict]


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    staging.write_text(text, encoding="utf-8")
    os.replace(staging, path)


@dataclass(frozen=True)
class SectionCache:
    """Drawn sections in `folder`, one file per athlete, each with the key it was drawn under."""

    folder: Path

    def get(self, athlete: str, key: str) -> DrawnSection | None:
        try:
            kept = json.loads(self.file_of(athlete).read_text(encoding="utf-8"))
            if kept["key"] == key and isinstance(kept["html"], str) and isinstance(kept["specs"], dict):
                return DrawnSection(html=kept["html"], specs=kept["specs"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # missing or unreadable: drawn again
        return None

    def put(self, athlete: str, key: str, section: DrawnSection) -> None:
        kept = {"key": key, "athlete": athlete, "html": section.html, "specs": section.specs}
        write_atomically(self.file_of(athlete), json.dumps(kept, separators=(",", ":")))

    def keep_only(self, athletes: list[str]) -> None:
        """Remove the sections of athletes no longer in the report: a forgotten athlete's rows do not
        outlive them here."""
        kept = {self.file_of(athlete).name for athlete in athletes}
        for path in self.folder.glob("*.json"):
            if path.name not in kept:
                path.unlink(missing_ok=True)

    def file_of(self, athlete: str) -> Path:
        """The file of `athlete`'s section (named by a hash: any athlete id makes a file name)."""
        return self.folder / f"{hashlib.sha256(athlete.encode()).hexdigest()[:24]}.json"


def section_key(data: ReportData, athlete: str) -> str:
    """A hash of what `athlete`'s part of the page shows: their rows, the study settings, the drawing code."""
    digest = hashlib.sha256(_drawing_code().encode())
    digest.update(athlete.encode())
    frames = {name: frame for name, frame in vars(data).items() if isinstance(frame, pl.DataFrame)}
    for name, frame in sorted(frames.items()):
        if "athlete_id" in frame.columns:
            frame = frame.filter(pl.col("athlete_id") == athlete)
        elif name != "study_settings":
            continue  # a part of the page about every athlete, drawn every time
        rounded = frame.with_columns(cs.float().round_sig_figs(SIGNIFICANT_DIGITS))
        digest.update(f"\n{name}\n".encode())
        digest.update(rounded.write_csv().encode())
    return digest.hexdigest()


@functools.cache
def _drawing_code() -> str:
    """The modules and template that turn rows into a section, and Altair's version."""
    here = Path(__file__).parent
    sources = (here / name for name in ("charts.py", "page.py", "athlete.html.j2"))
    return alt.__version__ + "".join(hashlib.sha256(path.read_bytes()).hexdigest() for path in sources)
