"""Several decoded files stacked into one set of frames, so the per-file Polars steps run once per batch.

A Polars call has a fixed cost whatever its size, and checking a decoded file and making its
warehouse frames takes dozens of them: more than decoding the file.  Stacked, a batch of files
pays that once.  Every stacked row carries `FILE`, its file's position in the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from retrostride.warehouse.schema import DecodedFile

#: The column saying which file of the batch a row came from.
FILE = "_file"
#: The frames of a `DecodedFile`, in the order validation reads them.
FRAMES = ("records", "activities", "laps", "developer_fields", "body_measurements", "privacy_zones")


@dataclass(frozen=True)
class DecodedBatch:
    """Decoded files and their frames stacked, each row tagged with `FILE`."""

    files: tuple[DecodedFile, ...]
    frames: dict[str, pl.DataFrame]

    @classmethod
    def of(cls, files: list[DecodedFile]) -> DecodedBatch:
        return cls(tuple(files), {name: stack([getattr(f, name) for f in files]) for name in FRAMES})

    def with_frames(self, **frames: pl.DataFrame) -> DecodedBatch:
        return DecodedBatch(self.files, {**self.frames, **frames})

    def unstacked(self, frames: dict[str, pl.DataFrame] | None = None) -> list[dict[str, pl.DataFrame]]:
        """Per file, its rows of `frames` (default: this batch's own frames), without `FILE`."""
        split = {name: unstack(frame, len(self.files)) for name, frame in (frames or self.frames).items()}
        return [{name: parts[i] for name, parts in split.items()} for i in range(len(self.files))]


def stack(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """`frames` one under the other (columns matched by name, missing ones null), with `FILE`."""
    stacked = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    positions = np.repeat(np.arange(len(frames), dtype=np.int32), [f.height for f in frames])
    return stacked.with_columns(pl.Series(FILE, positions))


def unstack(frame: pl.DataFrame, files: int) -> list[pl.DataFrame]:
    """The rows of each of `files` files, in order (an empty frame for a file without rows)."""
    if files == 1:
        return [frame.drop(FILE)]
    parts = frame.partition_by(FILE, as_dict=True, include_key=False, maintain_order=True)
    nothing = frame.clear().drop(FILE)
    return [parts.get((i,), nothing) for i in range(files)]
