"""Which decoder reads a file: decided by its bytes, not its name."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

from connectors.fit_columnar import decode_fit_columnar
from connectors.gpx import decode_gpx
from connectors.schema import DecodedFile, DecodeError

Decoder = Callable[[Path], DecodedFile]

#: Name suffixes a listing picks up; anything else in a source folder is reported as unsupported.
SUFFIXES = {".fit", ".gpx", ".tcx", ".gz"}


def sniff(head: bytes) -> str:
    """The format of a file from its first bytes: fit, gpx, tcx, gzip, zip or unknown."""
    if len(head) >= 12 and head[8:12] == b".FIT":
        return "fit"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] == b"PK\x03\x04":
        return "zip"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<"):
        if b"<gpx" in text:
            return "gpx"
        if b"<trainingcenterdatabase" in text:
            return "tcx"
    return "unknown"


#: FIT goes through the columnar decoder, which hands what it cannot read to fitparse (the reference)
#: and says so: the ledger's `decoder` column names the decoder that produced the frames.
DECODERS: dict[str, Decoder] = {"fit": decode_fit_columnar, "gpx": decode_gpx}


def decoder_for(path: Path) -> tuple[str, Decoder]:
    """The format of `path` and the decoder for it, or a DecodeError saying why there is none."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise DecodeError("empty file (0 bytes)")
    kind = sniff(head)
    if kind == "gzip":
        with gzip.open(path, "rb") as handle:
            inner = sniff(handle.read(4096))
        raise DecodeError(f"unsupported format: gzip-compressed {inner} (not yet supported)")
    if kind not in DECODERS:
        raise DecodeError(f"unsupported format: {kind if kind != 'unknown' else 'not FIT or GPX'} ({path.suffix or 'no suffix'})")
    return kind, DECODERS[kind]
