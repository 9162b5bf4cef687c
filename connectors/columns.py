"""NumPy columns with a validity mask, read from Arrow tables and written to Polars frames through Arrow buffers.

Mapping one file's messages to canonical frames is a few dozen small column operations; through
Polars expressions each costs tens of microseconds of planning, through NumPy a few.  Values are
copied only where a type changes; nulls are a separate mask, never NaN.  A type the fast paths do
not read (text as numbers, other time units) is cast by Polars, so values are Polars' casts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa


@dataclass(frozen=True)
class Column:
    """Values and which of them are present (the rest are null)."""

    values: np.ndarray
    valid: np.ndarray

    def __len__(self) -> int:
        return len(self.values)

    def or_else(self, other: Column) -> Column:
        """This column, with `other`'s value wherever this one is null (SQL coalesce)."""
        return Column(np.where(self.valid, self.values, other.values), self.valid | other.valid)


def nulls(n: int, dtype=np.float64) -> Column:
    return Column(np.zeros(n, dtype=dtype), np.zeros(n, dtype=bool))


def numbers(table: pa.Table, name: str) -> Column:
    """A column as float64, as Polars' `cast(pl.Float64, strict=False)` makes it; all null when absent."""
    array = column_of(table, name)
    if array is None:
        return nulls(table.num_rows)
    if pa.types.is_null(array.type):
        return nulls(len(array))
    if not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
        array = pl.from_arrow(array).cast(pl.Float64, strict=False).to_arrow()
    column = _from_arrow(array)
    return Column(column.values.astype(np.float64, copy=False), column.valid)


def micros(table: pa.Table, name: str) -> Column:
    """A time column as int64 microseconds since 1970 (integers are taken as microseconds, as Polars
    casts them); all null when absent."""
    array = column_of(table, name)
    if array is None:
        return nulls(table.num_rows, np.int64)
    if pa.types.is_null(array.type):
        return nulls(len(array), np.int64)
    if array.type not in (_NAIVE_US, pa.int64()):  # anything else as Polars casts it
        array = pl.from_arrow(array).cast(pl.Datetime("us")).to_arrow()
    return _from_arrow(array)


def texts(table: pa.Table, name: str) -> pa.Array:
    """A column as strings (numbers written out, as Polars writes them); all null when absent."""
    array = column_of(table, name)
    if array is None:
        return pa.nulls(table.num_rows, pa.large_string())
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), pa.large_string())
    if pa.types.is_large_string(array.type):
        return array
    if pa.types.is_string(array.type):
        return array.cast(pa.large_string())
    return pl.from_arrow(array).cast(pl.String).to_arrow()


def series(table: pa.Table, name: str, dtype: pl.DataType, strict: bool = True) -> pl.Series:
    """A column cast to `dtype` as Polars casts it; all null when absent."""
    array = column_of(table, name)
    if array is None:
        return pl.repeat(None, table.num_rows, dtype=dtype, eager=True)
    return pl.from_arrow(array).cast(dtype, strict=strict)


_NAIVE_US = pa.timestamp("us")


def column_of(table: pa.Table, name: str) -> pa.Array | None:
    """A column as one Arrow array (None when absent); without `Table.column_names`, which builds a list."""
    index = table.schema.get_field_index(name)
    if index < 0:
        return None
    column = table.column(index)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _from_arrow(array: pa.Array) -> Column:
    n = len(array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count == n:
        return nulls(
            n, np.int64 if pa.types.is_integer(array.type) or pa.types.is_timestamp(array.type) else np.float64
        )
    validity, data = array.buffers()[:2]
    dtype = np.int64 if pa.types.is_timestamp(array.type) else array.type.to_pandas_dtype()
    values = np.frombuffer(data, dtype=dtype, count=n + array.offset)[array.offset :]
    if validity is None or array.null_count == 0:
        return Column(values, np.ones(n, dtype=bool))
    bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), count=n + array.offset, bitorder="little")
    return Column(values, bits[array.offset :].astype(bool))


def to_arrow(column: Column, arrow_type: pa.DataType) -> pa.Array:
    """An Arrow array of `arrow_type` (NumPy values must already have its width)."""
    values = np.ascontiguousarray(column.values)
    bitmap = None if column.valid.all() else pa.py_buffer(np.packbits(column.valid, bitorder="little"))
    return pa.Array.from_buffers(arrow_type, len(values), [bitmap, pa.py_buffer(values)])


def frame(n: int, columns: dict[str, pa.Array], schema: pl.Schema) -> pl.DataFrame:
    """A Polars frame of exactly `schema`: the Arrow arrays given, null for the rest."""
    return pl.DataFrame(
        [
            pl.Series(name, columns[name] if name in columns else pa.nulls(n, arrow_type(dtype)))
            for name, dtype in schema.items()
        ]
    )


def arrow_type(dtype: pl.DataType) -> pa.DataType:
    if isinstance(dtype, pl.Datetime):
        return pa.timestamp(dtype.time_unit, dtype.time_zone)
    return {pl.Float64: pa.float64(), pl.Int32: pa.int32(), pl.Int64: pa.int64(), pl.String: pa.large_string()}[
        dtype.base_type()
    ]
