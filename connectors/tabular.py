"""Reading the CSV tables platforms and spreadsheets export: localized headers, numbers and dates.

Everything is read as text first (Polars, quoted multi-line fields allowed), then converted with
expressions, so a bad cell becomes null instead of failing the whole file.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from retrostride.warehouse.schema import DecodeError

#: German month names and abbreviations → English abbreviations, so one format string reads both.
MONTHS_DE = {
    "Januar": "Jan",
    "Februar": "Feb",
    "März": "Mar",
    "April": "Apr",
    "Mai": "May",
    "Juni": "Jun",
    "Juli": "Jul",
    "August": "Aug",
    "September": "Sep",
    "Oktober": "Oct",
    "November": "Nov",
    "Dezember": "Dec",
    "Jan.": "Jan",
    "Feb.": "Feb",
    "Mär.": "Mar",
    "Apr.": "Apr",
    "Jun.": "Jun",
    "Jul.": "Jul",
    "Aug.": "Aug",
    "Sept.": "Sep",
    "Sep.": "Sep",
    "Okt.": "Oct",
    "Nov.": "Nov",
    "Dez.": "Dec",
    "Mrz.": "Mar",
}
#: Date formats tried in order (after German months are translated and "2." becomes "2").
DATE_FORMATS = (
    "%b %d, %Y, %I:%M:%S %p",  # Strava, English: "Jan 2, 2024, 7:30:00 AM"
    "%d %b %Y, %H:%M:%S",  # Strava, German: "2. Jan. 2024, 07:30:00"
    "%d.%m.%Y, %H:%M:%S",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
)
DAY_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d")


def read_text_table(path: Path, what: str) -> pl.DataFrame:
    """A CSV file as text columns; duplicated headers become `<name>_duplicated_<n>`."""
    data = Path(path).read_bytes().removeprefix(b"\xef\xbb\xbf")
    first_line = data.split(b"\n", 1)[0]
    separator = ";" if first_line.count(b";") > first_line.count(b",") else ","
    try:
        table = pl.read_csv(io.BytesIO(data), infer_schema=False, separator=separator, truncate_ragged_lines=True)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as error:
        raise DecodeError(f"{what} is not a readable CSV table: {str(error).splitlines()[0]}") from None
    return table.rename({c: c.strip() for c in table.columns})


def pick(columns: list[str], aliases: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """For each canonical name, the first column (in file order) whose header is one of its aliases."""
    lowered = [c.lower() for c in columns]
    found: dict[str, str] = {}
    for key, names in aliases.items():
        hits = [i for i, c in enumerate(lowered) if c in {n.lower() for n in names}]
        if hits:
            found[key] = columns[hits[0]]
    return found


def text(column: str | None) -> pl.Expr:
    """A trimmed text column; empty cells and missing columns are null."""
    if column is None:
        return pl.lit(None, dtype=pl.String)
    trimmed = pl.col(column).str.strip_chars()
    return pl.when(trimmed.str.len_chars() > 0).then(trimmed)


def number(column: str | None) -> pl.Expr:
    """A number written either way: "72.5", "72,5", "1,234.5"; anything else is null."""
    if column is None:
        return pl.lit(None, dtype=pl.Float64)
    raw = text(column)
    decimal_comma = raw.str.contains(",", literal=True) & ~raw.str.contains(".", literal=True)
    cleaned = (
        pl.when(decimal_comma)
        .then(raw.str.replace(",", ".", literal=True))
        .otherwise(raw.str.replace_all(",", "", literal=True))
    )
    return cleaned.str.replace_all(r"[^0-9.eE+\-]", "").cast(pl.Float64, strict=False)


def timestamp(column: str | None, time_zone: str = "UTC") -> pl.Expr:
    """A date-time in any of DATE_FORMATS (or a bare day), read in `time_zone`, as UTC."""
    if column is None:
        return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    raw = text(column).str.replace_many(list(MONTHS_DE), list(MONTHS_DE.values())).str.replace(r"^(\d{1,2})\. ", "$1 ")
    parsed = [raw.str.to_datetime(f, time_unit="us", strict=False) for f in DATE_FORMATS]
    parsed += [raw.str.to_date(f, strict=False).cast(pl.Datetime("us")) for f in DAY_FORMATS]
    return (
        pl.coalesce(parsed)
        .dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
