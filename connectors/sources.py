"""Where files come from: paths and inbox folders, each file assigned to an athlete."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ATHLETE = "default"


@dataclass(frozen=True)
class SourceFile:
    """A file to import and the athlete it belongs to."""

    path: Path
    athlete_id: str


def list_source_files(paths: Iterable[Path], athlete_id: str | None = None) -> Iterator[SourceFile]:
    """Every file under `paths` in a stable order, with its athlete.

    A folder is read like the inbox: files in `<folder>/<athlete>/...` belong to that athlete, files
    directly in the folder to the default athlete.  `athlete_id` assigns everything to one athlete.
    Hidden files and folders (".name") are skipped.
    """
    for root in paths:
        root = Path(root)
        if root.is_file():
            yield SourceFile(root, athlete_id or DEFAULT_ATHLETE)
            continue
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            relative = path.relative_to(root)
            if any(part.startswith(".") for part in relative.parts):
                continue
            owner = athlete_id or (relative.parts[0] if len(relative.parts) > 1 else DEFAULT_ATHLETE)
            yield SourceFile(path, owner)
