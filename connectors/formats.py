"""Which decoder reads a file: decided by its bytes, or by its role in a platform export."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

from retrostride.connectors import body_csv, garmin, strava
from retrostride.connectors.fit_columnar import decode_fit_columnar
from retrostride.connectors.gpx import decode_gpx
from retrostride.connectors.tcx import decode_tcx
from retrostride.warehouse.schema import DecodedFile, DecodeError

Decoder = Callable[[Path], DecodedFile]


def sniff(head: bytes) -> str:
    """The format of a file from its first bytes: fit, gpx, tcx, gzip, zip, body_csv or unknown."""
    if len(head) >= 12 and head[8:12] == b".FIT":
        return "fit"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<"):
        if b"<gpx" in text:
            return "gpx"
        if b"<trainingcenterdatabase" in text:
            return "tcx"
    if body_csv.looks_like_body_table(head):
        return "body_csv"
    return "unknown"


#: FIT goes through the columnar decoder, which hands what it cannot read to fitparse (the reference)
#: and says so: the ledger's `decoder` column names the decoder that produced the frames.
DECODERS: dict[str, Decoder] = {
    "fit": decode_fit_columnar,
    "gpx": decode_gpx,
    "tcx": decode_tcx,
    "body_csv": body_csv.decode_body_csv,
}

#: Decoders for files chosen by their role in a platform export (connectors/exports.py), not their bytes.
ROLE_DECODERS = {
    "strava_activities": strava.decode_activities,
    "strava_privacy_zones": strava.decode_privacy_zones,
    "garmin_biometrics": garmin.decode_biometrics,
}


#: XML root elements (local names, lower case) → format.
XML_ROOTS = {"gpx": "gpx", "trainingcenterdatabase": "tcx"}
#: How far into an XML file its root element is looked for, past declarations, comments and a DTD.
XML_ROOT_WITHIN = 1 << 20
_PROLOG_ITEM = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)", re.S)
_ELEMENT = re.compile(rb"\s*<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")


def xml_root(path: Path) -> str | None:
    """The local name (lower case) of an XML file's root element, found within its first
    XML_ROOT_WITHIN bytes; None when there is none there."""
    with open(path, "rb") as handle:
        data = handle.read(XML_ROOT_WITHIN).removeprefix(b"\xef\xbb\xbf")
    position = 0
    while (item := _PROLOG_ITEM.match(data, position)) and item.end() > position:
        position = item.end()
    element = _ELEMENT.match(data, position)
    return element.group(1).decode("ascii").lower() if element else None


def decoder_for(path: Path, kind: str | None = None, modified_at: datetime | None = None) -> tuple[str, Decoder]:
    """The format of `path` and the decoder for it, or a DecodeError saying why there is none.

    `kind` is the file's role in an export when it has one; `modified_at` dates what a file says
    without a date of its own (Strava's profile weight).
    """
    if kind == "strava_profile":
        return kind, partial(strava.decode_profile, recorded_at=modified_at)
    if kind in ROLE_DECODERS:
        return kind, ROLE_DECODERS[kind]
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if not head:
        raise DecodeError("empty file (0 bytes)")
    fmt = sniff(head)
    if fmt == "unknown" and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        fmt = XML_ROOTS.get(xml_root(path), "unknown")  # a root element after a long comment
    if fmt == "unknown" and strava.is_activities_table(path):
        return "strava_activities", strava.decode_activities
    if fmt in ("gzip", "zip"):
        raise DecodeError(f"unsupported format: {fmt} archive here (archives are expanded only when listed as sources)")
    if fmt not in DECODERS:
        raise DecodeError(
            f"unsupported format: not FIT, GPX, TCX or a body-measurement CSV ({path.suffix or 'no suffix'})"
        )
    return fmt, DECODERS[fmt]
