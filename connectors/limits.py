"""How much an input may expand before it is refused: the defences against hostile files.

Every limit is enforced on the bytes actually read, never on sizes an archive declares.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class IntakeLimits:
    """Limits on one file, one archive (with everything nested in it) and its nesting."""

    max_file_bytes: int = 512 * MIB  # one file or archive member, after decompression
    max_archive_bytes: int = 8 * 1024 * MIB  # everything read out of one archive, nested ones included
    max_ratio: float = 100.0  # decompressed / compressed bytes of one member (zip bombs)
    ratio_floor_bytes: int = 1 * MIB  # the ratio is checked only once a member has produced this much
    max_depth: int = 3  # an archive inside an archive inside an archive, no deeper
    max_members: int = 200_000  # entries in one archive
