"""Reading the CSV tables platforms and spreadsheets export: localized headers, numbers and dates.

Everything is read as text first (Polars, quoted multi-line fields allowed), then converted with
expressions, so a bad cell becomes null instead of failing the whole file.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from pathlib import Path

import polars as pl
from babel import Locale

from retrostride.warehouse.schema import DecodeError

#: Languages whose month names and AM/PM markers dates may be written in (CLDR, through Babel):
#: Strava's and Garmin's languages and their neighbours; none of their month names means two months.
LANGUAGES = (
    "en", "de", "fr", "es", "it", "nl", "pt", "pt_PT", "ru", "pl", "sv", "da", "nb", "fi", "cs", "tr",
    "uk", "ca", "hu", "el", "id", "ja", "zh", "ko",
)  # fmt: skip


def _month_names() -> dict[str, int]:
    names: dict[str, int] = {}
    for language in LANGUAGES:
        for context in ("format", "stand-alone"):
            for width in ("abbreviated", "wide"):
                for month, name in Locale.parse(language).months[context][width].items():
                    names[name.lower().strip(".").strip()] = month
    return names


def _day_periods(period: str) -> frozenset[str]:
    markers = set()
    for language in LANGUAGES:
        for width in ("abbreviated", "wide"):
            name = Locale.parse(language).day_periods["format"][width].get(period)
            if name:
                markers.add(re.sub(r"[\s.]", "", name.lower()))
    return frozenset(markers)


#: Month name (lower case, without a final dot) → month number, in every language of LANGUAGES.
MONTHS = _month_names()
_AM, _PM = _day_periods("am"), _day_periods("pm")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_CJK_MONTH = re.compile(r"(\d{1,2})\s*[月월]")
_WORD = re.compile(r"[^\W\d_]+\.?")
_NUMBER = re.compile(r"\d+")

#: Numeric date formats tried in order (dates with month names are read by `localized_datetime`).
DATE_FORMATS = (
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


def _localized_datetimes(values: pl.Series) -> pl.Series:
    parsed = {value: localized_datetime(value) for value in values.unique().drop_nulls().to_list()}
    return pl.Series(values.name, [parsed.get(v) for v in values.to_list()], dtype=pl.Datetime("us"))


def localized_datetime(value: str) -> datetime | None:
    """A date and time as platforms write it in their users' languages, or None.

    Month names in any language CLDR knows (`MONTHS`: "2. Jan. 2024", "9 mei 2026", "2 de jan. de
    2024", "Jan 2, 2024"), CJK months ("2024年1月2日"), numeric dates year first or day first, a time
    `H:MM[:SS]` with an AM/PM marker in any of those languages ("PM", "p. m.", "午後").
    """
    lowered = value.strip().lower()
    clock = _CLOCK.search(lowered)
    hour, minute, second = (int(g or 0) for g in clock.groups()) if clock else (0, 0, 0)
    rest = lowered[: clock.start()] + " " + lowered[clock.end() :] if clock else lowered
    month = None
    cjk = _CJK_MONTH.search(rest)
    if cjk:
        month, rest = int(cjk.group(1)), rest[: cjk.start()] + " " + rest[cjk.end() :]
    words = []
    for word in _WORD.findall(rest):
        if month is None and word.strip(".") in MONTHS:
            month = MONTHS[word.strip(".")]
        else:
            words.append(word)
    marker = "".join(_WORD.findall("".join(words).replace(" ", "").replace(".", "")))
    if marker in _PM and hour < 12:
        hour += 12
    elif marker in _AM and hour == 12:
        hour = 0
    numbers = _NUMBER.findall(rest)
    years = [n for n in numbers if len(n) == 4]
    if not years:
        return None
    others = [int(n) for n in numbers if len(n) <= 2]
    if month is not None and others:
        day = others[0]
    elif month is None and len(others) >= 2:
        month, day = (others[0], others[1]) if numbers[0] in years else (others[1], others[0])
    else:
        return None
    try:
        return datetime(int(years[0]), month, day, hour, minute, second)
    except ValueError:
        return None


def timestamp(column: str | None, time_zone: str = "UTC") -> pl.Expr:
    """A date-time in any of DATE_FORMATS (or a bare day), read in `time_zone`, as UTC."""
    if column is None:
        return pl.lit(None, dtype=pl.Datetime("us", "UTC"))
    raw = text(column)
    parsed = [raw.str.to_datetime(f, time_unit="us", strict=False) for f in DATE_FORMATS]
    parsed += [raw.str.to_date(f, strict=False).cast(pl.Datetime("us")) for f in DAY_FORMATS]
    parsed.append(raw.map_batches(_localized_datetimes, return_dtype=pl.Datetime("us")))
    return (
        pl.coalesce(parsed)
        .dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
