"""Which platform export a tree of files is, and what each file in it is for (names only, no I/O).

- Strava bulk export: `activities.csv` beside an `activities/` folder (possibly under one top folder).
- Garmin Connect data export: `DI_CONNECT/...`, FIT files in nested `UploadedFiles_*.zip` under
  `DI-Connect-Uploaded-Files` (older exports: under `DI-Connect-Fitness`).
Files of an export that hold no activities or weights (photos, settings, other JSON) are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

Role = Literal[
    "activity",  # an activity file (or an archive or .gz of them): sniffed and decoded
    "strava_activities",
    "strava_profile",
    "strava_privacy_zones",
    "garmin_summaries",  # names for the FIT files, matched by start time (no rows of its own)
    "garmin_biometrics",
    "ignore",
]
ACTIVITY_SUFFIXES = (".fit", ".gpx", ".tcx", ".gz", ".zip")


@dataclass(frozen=True)
class Layout:
    """An export's platform and the folder (inside the tree) that holds it."""

    platform: Literal["strava", "garmin"] | None
    root: str = ""  # "" or "top/" when the export sits in one folder of the archive

    def role(self, name: str) -> Role:
        """What the file `name` (a path in the tree) is for; any file of a tree that is not an export is an activity."""
        if self.platform is None:
            return "activity"
        if not name.startswith(self.root):
            return "ignore"
        relative = name[len(self.root) :]
        lower = relative.lower()
        if self.platform == "strava":
            if lower == "activities.csv":
                return "strava_activities"
            if lower == "profile.csv":
                return "strava_profile"
            if lower == "privacy_zones.csv":
                return "strava_privacy_zones"
            return "activity" if lower.startswith("activities/") else "ignore"
        base = PurePosixPath(lower).name
        if base.endswith("_summarizedactivities.json"):
            return "garmin_summaries"
        if ("userbiometrics" in base and base.endswith(".json")) or base == "user_biometrics.json":
            return "garmin_biometrics"
        folders = set(PurePosixPath(lower).parts[:-1])
        if folders & {"di-connect-uploaded-files", "di-connect-fitness"} and base.endswith(ACTIVITY_SUFFIXES):
            return "activity"
        return "ignore"

    def file_key(self, name: str) -> str:
        """A file's name as the export's own tables spell it (Strava's Filename: `activities/123.fit.gz`)."""
        return name[len(self.root) :] if name.startswith(self.root) else name


def detect_layout(names: list[str]) -> Layout:
    """The export layout of a tree whose files are `names` (posix paths relative to the tree)."""
    lowered = [n.lower() for n in names]
    for name, lower in zip(names, lowered):
        if lower == "activities.csv" or lower.endswith("/activities.csv"):
            root = name[: len(name) - len("activities.csv")]
            if any(other.startswith(root.lower() + "activities/") for other in lowered):
                return Layout("strava", root)
    if any(re.search(r"(^|/)di_connect/|(^|/)di-connect-(uploaded-files|fitness)/", n) for n in lowered):
        return Layout("garmin", "")
    return Layout(None)
