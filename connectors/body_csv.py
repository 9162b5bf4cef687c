"""A generic body-measurement table (scales, spreadsheets): a date, a weight, optionally body fat.

Headers are matched by name in English or German; a weight header that says "lb" is in pounds.
Decimal commas and `;` separators (spreadsheets in German locales) are read too.  A date without a
time is taken as midnight UTC.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from retrostride.connectors.tabular import number, pick, read_text_table, timestamp
from retrostride.warehouse.schema import FILE_BODY_MEASUREMENTS, DecodedFile, DecodeError, conform

DECODER = "body-csv"
DECODER_VERSION = "1"
POUND_KG = 0.45359237

COLUMNS = {
    "date": ("date", "datetime", "time", "timestamp", "measured_at", "day", "datum", "zeit"),
    "weight_kg": ("weight", "weight_kg", "weight (kg)", "weight kg", "mass_kg", "gewicht", "gewicht (kg)"),
    "weight_lb": ("weight_lb", "weight (lb)", "weight (lbs)", "weight lb", "weight lbs"),
    "body_fat_pct": (
        "body_fat",
        "body fat",
        "body_fat_pct",
        "body fat (%)",
        "fat (%)",
        "fat_pct",
        "fat %",
        "körperfett",
        "körperfett (%)",
    ),
}


def looks_like_body_table(head: bytes) -> bool:
    """Whether a file's first line is a header with a date column and a weight column."""
    line = head.removeprefix(b"\xef\xbb\xbf").split(b"\n", 1)[0].decode("utf-8", errors="replace").lower()
    cells = {c.strip().strip('"') for c in line.replace(";", ",").split(",")}
    has = lambda key: bool(cells & set(COLUMNS[key]))  # noqa: E731
    return has("date") and (has("weight_kg") or has("weight_lb"))


def decode_body_csv(path: Path) -> DecodedFile:
    """Decode a body-measurement table into body measurements (source 'csv')."""
    table = read_text_table(path, "body-measurement CSV")
    found = pick(table.columns, COLUMNS)
    if "date" not in found or not ({"weight_kg", "weight_lb"} & set(found)):
        raise DecodeError(
            "body-measurement CSV needs a date and a weight column (headers: " + ", ".join(table.columns[:6]) + ")"
        )
    weight = number(found["weight_kg"]) if "weight_kg" in found else number(found["weight_lb"]) * POUND_KG
    frame = table.select(
        timestamp(found["date"]).alias("ts"),
        weight.alias("weight_kg"),
        number(found.get("body_fat_pct")).alias("body_fat_pct"),
    ).filter(pl.col("ts").is_not_null() & (pl.col("weight_kg") > 0))
    if table.height and not frame.height:
        raise DecodeError(f"body-measurement CSV: none of its {table.height} rows has a readable date and weight")
    skipped = table.height - frame.height
    return DecodedFile(
        format="csv",
        decoder=DECODER,
        decoder_version=DECODER_VERSION,
        body_measurements=conform(frame.sort("ts"), FILE_BODY_MEASUREMENTS),
        notes=f"{skipped} of {table.height} row(s) without a readable date and weight skipped" if skipped else None,
    )
