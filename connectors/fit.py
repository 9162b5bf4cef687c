"""FIT files through fitparse, the reference decoder.

fitparse can emit one field name twice in a message (a native field and a component expansion), so
each message is read field by field, keeping the first non-null value, never through `get_values()`.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Literal

import fitparse
import polars as pl
from fitparse.utils import FitCRCError, FitEOFError, FitHeaderError, FitParseError

from retrostride.connectors.fit_canonical import FIT_FIELDS, FitMessages, to_canonical
from retrostride.warehouse.schema import DecodedFile, DecodeError

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
    return settle(decoded, damage, min_recovered_records)


def settle(decoded: DecodedFile, damage: tuple[str, bool] | None, min_recovered_records: int) -> DecodedFile:
    """The decoded file as it stands after `damage` (reason, recoverable): kept as partial or rejected.

    Shared by every FIT decoder, so they all keep and reject the same files.
    """
    if damage is None:
        return decoded
    reason, recoverable = damage
    if not recoverable or len(decoded.records) < min_recovered_records:
        raise DecodeError(reason)
    return DecodedFile(
        **{
            **decoded.__dict__,
            "status": "partial",
            "reason": f"{reason}; kept the {len(decoded.records)} records before it",
        }
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
        except (ArithmeticError, AttributeError, IndexError, KeyError, TypeError, ValueError, struct.error) as error:
            # fitparse meets bytes it does not expect (a bit flip in a field value, a field size its
            # type processors cannot read) with plain Python errors: damage all the same
            damage = damage_reason(
                "corrupt",
                _offset(fit),
                f"a value fitparse cannot read ({_PLAIN_ERRORS.get(type(error), 'damaged field')})",
            )
    messages = {name: _to_frame(found, FIT_FIELDS[name]).to_arrow() for name, found in rows.items() if found}
    return messages, damage


#: What fitparse's plain Python errors mean in a damaged file, for the ledger (no exception text there).
_PLAIN_ERRORS = {
    TypeError: "a field of the wrong type",
    KeyError: "an unknown field or message number",
    IndexError: "a field shorter than its type",
    struct.error: "a field shorter than its type",
    ValueError: "an impossible field value",
    ZeroDivisionError: "a scale of zero",
    OverflowError: "a field value out of range",
}


def _to_frame(rows: list[dict], columns: tuple[str, ...]) -> pl.DataFrame:
    data = {c: [row.get(c) for row in rows] for c in columns}
    return pl.DataFrame({c: _column(c, v) for c, v in data.items()})


def _column(name: str, values: list) -> pl.Series:
    """One field's values as a column, also when fitparse mixed types in it.

    A field whose size holds several values where the profile has one (damage, or a writer's bug)
    comes as a tuple: its first value is kept, as the columnar decoder would refuse to guess more.
    A `date_time` below 0x10000000 is device-relative and stays a number in fitparse, so a column can
    hold datetimes and numbers; they become µs since 1970 (the columnar decoder's convention).  Any
    other mixture (a damaged enum read as a number among names) becomes text.
    """
    series = _series(name, values)
    if series is not None and isinstance(series.dtype, pl.List):
        return series.list.first()
    if series is not None:
        return series
    if any(isinstance(v, (tuple, list)) for v in values):
        return _column(name, [_first(v) if isinstance(v, (tuple, list)) else v for v in values])
    if any(isinstance(v, datetime) for v in values):
        series = _series(name, [_unix_us(v) if isinstance(v, datetime) else v for v in values], pl.Int64)
        if series is not None:
            return series
    return pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String)


def _series(name: str, values: list, dtype: pl.DataType | None = None) -> pl.Series | None:
    """A Polars column of `values`, or None when they do not make one plain column."""
    try:
        series = pl.Series(name, values, dtype=dtype, strict=False)
    except (pl.exceptions.PolarsError, TypeError, ValueError, OverflowError):
        return None
    return None if series.dtype == pl.Object else series


def _first(values: tuple | list):
    return values[0] if len(values) else None


def _unix_us(moment: datetime) -> int:
    """A naive UTC (fitparse) or aware datetime as µs since 1970-01-01 UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return round((aware - _UNIX_EPOCH).total_seconds() * 1e6)


_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _reason(error: FitParseError, fit: fitparse.FitFile | None) -> tuple[str, bool]:
    """A specific, user-facing reason with the byte offset where decoding stopped; and whether
    the data before that point can be trusted."""
    where = _offset(fit) if fit is not None else None
    if isinstance(error, FitHeaderError):
        return damage_reason("header", where, str(error))
    if isinstance(error, FitEOFError) and fit is None:
        return damage_reason("short", None, str(error))
    if isinstance(error, FitCRCError):
        return damage_reason("crc", where, str(error))
    if isinstance(error, FitEOFError):
        return damage_reason("eof", where, str(error))
    return damage_reason("corrupt", where, str(error))


DamageKind = Literal["header", "short", "crc", "eof", "corrupt"]


def damage_reason(kind: DamageKind, offset: int | None, detail: str) -> tuple[str, bool]:
    """The ledger's reason for damage of `kind` found at byte `offset`, and whether the data before
    it can be trusted (a bad header or CRC means no byte can)."""
    at = f" at byte {offset}" if offset is not None else ""
    if kind == "header":
        return f"invalid FIT header{at}: {detail}", False
    if kind == "short":
        return f"truncated FIT file: shorter than its header ({detail})", False
    if kind == "crc":
        return f"FIT CRC mismatch{at} ({detail})", False
    if kind == "eof":
        return f"truncated FIT file: unexpected end of data{at} ({detail})", True
    return f"corrupt FIT data{at}: {detail}", True


def _offset(fit: fitparse.FitFile) -> int | None:
    handle = getattr(fit, "_file", None)
    try:
        return handle.tell() if handle is not None else None
    except (OSError, ValueError):
        return None
