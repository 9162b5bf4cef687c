"""FIT files through fitparse, the reference decoder.

fitparse can emit one field name twice in a message (a native field and a component expansion), so
each message is read field by field, keeping the first non-null value, never through `get_values()`.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import fitparse
import polars as pl
from fitparse.utils import FitCRCError, FitEOFError, FitHeaderError, FitParseError

from connectors.fit_canonical import FIT_FIELDS, FitMessages, to_canonical
from connectors.schema import DecodedFile, DecodeError

DECODER = "fitparse"
DECODER_VERSION = version("fitparse")
#: A damaged file is recovered only when the part before the damage is a real activity (a minute at 1 Hz).
MIN_RECOVERED_RECORDS = 60


def decode_fit(path: Path, *, min_recovered_records: int = MIN_RECOVERED_RECORDS) -> DecodedFile:
    """Decode a FIT file; one truncated or corrupt after enough records is recovered up to the break.

    A CRC mismatch or an invalid header always rejects the file: its bytes cannot be trusted.
    """
    messages, damage = _read_messages(path)
    decoded = to_canonical(messages, decoder=DECODER, decoder_version=DECODER_VERSION)
    if damage is None:
        return decoded
    reason, recoverable = damage
    if not recoverable or len(decoded.records) < min_recovered_records:
        raise DecodeError(reason)
    return DecodedFile(
        **{**decoded.__dict__, "status": "partial", "reason": f"{reason}; kept the {len(decoded.records)} records before it"}
    )


def _read_messages(path: Path) -> tuple[FitMessages, tuple[str, bool] | None]:
    """The wanted fields of every message up to the end or the first damage, and that damage."""
    rows: dict[str, list[dict]] = {name: [] for name in FIT_FIELDS}
    damage = None
    try:
        fit = fitparse.FitFile(str(path), check_crc=True)
    except FitParseError as error:
        raise DecodeError(_reason(error, None)[0]) from None
    with fit:
        try:
            for message in fit.get_messages(name=list(FIT_FIELDS)):
                wanted = FIT_FIELDS[message.name]
                values: dict = {}
                for field in message.fields:
                    if field.name in wanted and values.get(field.name) is None:
                        values[field.name] = field.value
                rows[message.name].append(values)
        except FitParseError as error:
            damage = _reason(error, fit)
    messages = {name: _to_frame(found, FIT_FIELDS[name]) for name, found in rows.items() if found}
    return messages, damage


def _to_frame(rows: list[dict], columns: tuple[str, ...]) -> pl.DataFrame:
    data = {c: [row.get(c) for row in rows] for c in columns}
    return pl.DataFrame({c: pl.Series(c, v, strict=False) for c, v in data.items()})


def _reason(error: FitParseError, fit: fitparse.FitFile | None) -> tuple[str, bool]:
    """A specific, user-facing reason with the byte offset where decoding stopped; and whether
    the data before that point can be trusted."""
    where = _offset(fit) if fit is not None else None
    at = f" at byte {where}" if where is not None else ""
    if isinstance(error, FitHeaderError):
        return f"invalid FIT header{at}: {error}", False
    if isinstance(error, FitEOFError) and fit is None:
        return f"truncated FIT file: shorter than its header ({error})", False
    if isinstance(error, FitCRCError):
        return f"FIT CRC mismatch{at} ({error})", False
    if isinstance(error, FitEOFError):
        return f"truncated FIT file: unexpected end of data{at} ({error})", True
    return f"corrupt FIT data{at}: {error}", True


def _offset(fit: fitparse.FitFile) -> int | None:
    handle = getattr(fit, "_file", None)
    try:
        return handle.tell() if handle is not None else None
    except (OSError, ValueError):
        return None
