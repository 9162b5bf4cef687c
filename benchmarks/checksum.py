"""Row counts and content checksums of the warehouse tables: "same result" made checkable.

Two imports that should agree (an interrupted one resumed, a repeated one, a clean one) are compared
table by table.  The checksum is order-independent (a sum of row hashes), so it compares contents,
not storage order; columns that record when or how fast something ran are left out, and floats are
rounded to 6 decimals (below any unit the tables use).
"""

from __future__ import annotations

import polars as pl

from retrostride.warehouse.store import Warehouse

#: Columns that differ between two runs of the same import by design (a lake pack's id is random, snapshot ids count commits).
VOLATILE = frozenset({"imported_at", "decode_s", "lake_pack", "published_snapshot"})
#: Floats are compared to this many decimals: Polars' parallel sums add in varying order, so two runs
#: of the same import can differ in the last bits (segments.elevation_gain_m: 49.72000000000010 vs …08).
FLOAT_DECIMALS = 6


#: Tables that log the pipeline's runs rather than hold contents: every import adds a row.
RUN_LOGS = frozenset({"publishes"})


def table_checksums(
    warehouse: Warehouse, exclude: frozenset[str] = VOLATILE, athlete: str | None = None
) -> dict[str, tuple[int, int]]:
    """{table: (rows, checksum)} for every base table of `warehouse` but the RUN_LOGS, without the
    `exclude` columns; of one `athlete`'s rows, in every table with an athlete column, when given."""
    parts = []
    for table, schema in warehouse.tables.items():
        if table in RUN_LOGS or (athlete is not None and "athlete_id" not in schema):
            continue
        mine = "" if athlete is None else " WHERE athlete_id = '" + athlete.replace("'", "''") + "'"
        columns = ", ".join(f'"{c}" := {_value(c, dtype)}' for c, dtype in schema.items() if c not in exclude)
        parts.append(
            f"SELECT '{table}' AS name, count(*) AS n, coalesce(sum(hash(struct_pack({columns}))::HUGEINT), 0)::VARCHAR AS checksum FROM {table}{mine}"
        )
    frame = warehouse.query(" UNION ALL ".join(parts))
    return {name: (n, int(checksum)) for name, n, checksum in frame.iter_rows()}


def _value(column: str, dtype: pl.DataType) -> str:
    return f'round("{column}", {FLOAT_DECIMALS})' if dtype.is_float() else f'"{column}"'


def differences(expected: dict[str, tuple[int, int]], actual: dict[str, tuple[int, int]]) -> list[str]:
    """What differs between two `table_checksums`, one line per table (empty when they agree)."""
    lines = []
    for table in sorted(set(expected) | set(actual)):
        want, got = expected.get(table), actual.get(table)
        if want != got:
            lines.append(
                f"{table}: expected {want[0] if want else 'no table'} rows, got {got[0] if got else 'no table'}"
                + (" (same count, different content)" if want and got and want[0] == got[0] else "")
            )
    return lines
