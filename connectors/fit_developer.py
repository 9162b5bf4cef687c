"""FIT developer fields (Stryd, Connect IQ apps, running-dynamics pods): their values in records, kept.

A developer field is described inside the file (`developer_data_id` names the app, `field_description`
the field's name, units and type) and carried by data messages after the native fields.  Values are
read with fitparse, the reference, and only for files whose record definitions carry developer
fields (the framing walk says so without decoding): one row per record, field and number.
Each row's session is its record's (the decoded record at that time, else the last one before).
Values that are not numbers (strings, arrays) are left out.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import fitparse
import polars as pl
from fitparse.records import DevFieldDefinition

from retrostride.connectors.fit_profile import message_num
from retrostride.connectors.fit_scan import Walk
from retrostride.warehouse.schema import FILE_DEVELOPER_FIELDS, DecodedFile, conform, empty

_RECORD = message_num("record")


def carries_developer_fields(framing: Walk) -> bool:
    """Whether any record definition of the file has developer fields."""
    return any(d.global_num == _RECORD and d.dev_fields for d in framing.definitions)


def with_developer_fields(decoded: DecodedFile, path: Path, carried: bool) -> DecodedFile:
    """`decoded` with its developer-field values, when its records carry any (`carried`)."""
    if decoded.records.is_empty() or not carried:
        return decoded
    return replace(decoded, developer_fields=developer_fields(path, decoded.records))


def developer_fields(path: Path, records: pl.DataFrame) -> pl.DataFrame:
    """Every numeric developer-field value of the file's record messages (FILE_DEVELOPER_FIELDS), up to
    any damage; `records` (ts, session) places each value in its session."""
    rows, apps = [], {}
    try:
        for message in fitparse.FitFile(str(path), check_crc=False).get_messages(["developer_data_id", "record"]):
            if message.name == "developer_data_id":
                values = {f.name: f.value for f in message.fields}
                apps[values.get("developer_data_index")] = _app(values)
                continue
            ts = message.get_value("timestamp")
            if ts is None:
                continue
            for field in message.fields:
                if isinstance(field.field_def, DevFieldDefinition) and _is_number(field.value):
                    index = field.field_def.dev_data_index
                    rows.append((ts, apps.get(index) or f"developer {index}", field.name, field.units, field.value))
    except Exception:  # damage fitparse trips on (its errors vary): the values before it are kept, as records are
        pass
    if not rows:
        return empty(FILE_DEVELOPER_FIELDS)
    frame = pl.DataFrame(
        rows,
        schema={
            "ts": pl.Datetime("us"),
            "developer_app": pl.String,
            "field": pl.String,
            "units": pl.String,
            "value": pl.Float64,
        },
        orient="row",
    ).with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    sessions = records.select("ts", "session").drop_nulls("ts").unique("ts").sort("ts")
    placed = frame.sort("ts").join_asof(sessions, on="ts", strategy="backward")
    placed = placed.with_columns(pl.col("session").fill_null(sessions["session"].first()))
    return conform(placed, FILE_DEVELOPER_FIELDS)


def _app(values: dict) -> str | None:
    """The developer's app: its application_id as a UUID (unless all zero), else its manufacturer."""
    application = values.get("application_id")
    if isinstance(application, tuple | list) and len(application) == 16 and any(application):
        return str(uuid.UUID(bytes=bytes(b or 0 for b in application)))
    manufacturer = values.get("manufacturer_id")
    return str(manufacturer) if manufacturer is not None else None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
