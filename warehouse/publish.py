"""Publish decoded files from the lake into the warehouse tables readers query.

Day ranges are replaced whole (delete what the days held, insert what the lake says they hold) in
one transaction, so re-running a range gives the same tables and readers never see half of it.
DuckDB reads the lake's Parquet files itself (streaming, on all cores): rows pass through Python
only for athletes with privacy zones, so a ten-year range publishes in seconds and bounded memory.
Ingest notes the days it imported in `pending_days`; `mark_published` clears them once the whole
publish run (tables, detection, energy) has succeeded, so a run killed half-way is published again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import duckdb
import polars as pl

from retrostride.warehouse.catalog import ALIAS, PUBLISHED
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.packs import IMPORTED, current_packs, pack_files
from retrostride.warehouse.privacy import mask_positions
from retrostride.warehouse.schema import PRIVACY_ZONES, conform, empty
from retrostride.warehouse.store import Warehouse, insert, of_athletes


def publish_days(
    warehouse: Warehouse,
    lake: Lake,
    first: date,
    last: date,
    privacy_zones: pl.DataFrame | None = None,
    duplicates: DuplicatePolicy | None = None,
    athletes: list[str] | None = None,
) -> dict[str, int]:
    """Replace the activities, records, laps and developer fields of activities that started on days
    first..last (UTC), of `athletes` only (None: every athlete's) in one transaction: one athlete's
    rows are files of their own (the tables are partitioned by athlete), so publishes for different
    athletes never touch the same file and commit side by side; record positions inside
    `privacy_zones` are published as null; duplicates are linked by `duplicates`."""
    zones = conform(privacy_zones, PRIVACY_ZONES) if privacy_zones is not None else empty(PRIVACY_ZONES)
    zones = pl.concat([zones, imported_privacy_zones(warehouse, lake)])
    in_range = f"start_day BETWEEN $first AND $last AND {of_athletes(athletes)}"
    days = {"first": first, "last": last}

    def replace(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
        # the ledger as this transaction sees it: a retry after a conflict publishes what the other writer added
        packs = current_packs(
            warehouse, f"first_day <= ? AND last_day >= ? AND {of_athletes(athletes)}", [last, first], connection
        )
        # rows go in as the scan yields them: less CPU, and readers never relied on the order
        # (a filtered read interleaves files anyway; scoring sorts what is not in time order)
        connection.execute("SET preserve_insertion_order = false")
        for table in _BY_ACTIVITY:  # by athlete first: only their partitions' files are read
            connection.execute(
                f"DELETE FROM {table} WHERE {of_athletes(athletes)}"
                f" AND activity_id IN (SELECT activity_id FROM activities WHERE {in_range})",
                days,
            )
        connection.execute(f"DELETE FROM activities WHERE {in_range}", days)
        counts = {
            "activities": _insert_from_lake(
                connection, "activities", pack_files(lake, packs, "activities"), in_range, days
            )
        }
        for table in ("laps", "developer_fields"):
            counts[table] = _insert_from_lake(connection, table, pack_files(lake, packs, table), in_range, days)
        counts["records"] = _publish_records(connection, pack_files(lake, packs, "records"), in_range, days, zones)
        link_duplicates(connection, first, last, duplicates or DuplicatePolicy(), athletes)
        return counts

    return warehouse.write(replace)


#: Files whose records are read into Python at a time when records are masked (bounds memory).
FILES_PER_CHUNK = 200


def _publish_records(
    connection: duckdb.DuckDBPyConnection, files: pl.DataFrame, in_range: str, days: dict, zones: pl.DataFrame
) -> int:
    """Records of the range straight from the lake; through `mask_positions`, a few packs at a time,
    when some athlete has privacy zones."""
    if zones.is_empty():
        return _insert_from_lake(connection, "records", files, in_range, days)
    count = 0
    for chunk in _chunks(files, FILES_PER_CHUNK):
        with _registered(connection, chunk):
            rows = connection.execute(
                _lake_rows("records", in_range), {**days, "paths": _paths(chunk)}
            ).to_arrow_table()
        count += insert(connection, "records", mask_positions(pl.from_arrow(rows), zones))
    return count


def _chunks(files: pl.DataFrame, size: int) -> Iterator[pl.DataFrame]:
    """`files` (path, sha256) in chunks of about `size` files, never splitting a pack's Parquet file."""
    chunk: list[str] = []
    held = 0
    for path, count in files.group_by("path", maintain_order=True).len().iter_rows():
        chunk.append(path)
        held += count
        if held >= size:
            yield files.filter(pl.col("path").is_in(chunk))
            chunk, held = [], 0
    if chunk:
        yield files.filter(pl.col("path").is_in(chunk))


def imported_privacy_zones(warehouse: Warehouse, lake: Lake) -> pl.DataFrame:
    """The privacy zones that came with platform exports (Strava's privacy_zones.csv), as PRIVACY_ZONES."""
    packs = current_packs(warehouse, "format = 'strava_privacy_zones'")
    frames = [lake.read_file(sha, pack).get("privacy_zones") for sha, pack in packs.items()]
    frames = [frame for frame in frames if frame is not None]
    if not frames:
        return empty(PRIVACY_ZONES)
    frame = pl.concat(frames, how="diagonal_relaxed")
    located = frame.filter(pl.col("lat_deg").is_not_null() & pl.col("lon_deg").is_not_null() & (pl.col("radius_m") > 0))
    return conform(located.with_columns(pl.lit("strava").alias("source")), PRIVACY_ZONES)


#: What each name in `DuplicatePolicy.prefer` ranks first (SQL over `activities`; a fixed list, never user text).
PREFERENCES = {
    "richest": "records DESC NULLS LAST",  # the most samples
    "fit": "(source = 'fit') DESC",
    "tcx": "(source = 'tcx') DESC",
    "gpx": "(source = 'gpx') DESC",
    "strava": "(platform = 'strava') DESC",  # from a Strava export
    "garmin": "(platform = 'garmin') DESC",  # from a Garmin Connect export
    "file": "(platform IS NULL) DESC",  # from a watch, a folder or the inbox
}
#: After the configured preferences: the richest, then FIT > TCX > GPX, then the id (a total order).
TIE_BREAK = f"{PREFERENCES['richest']}, coalesce(list_position(['fit', 'tcx', 'gpx'], source), 99), activity_id"


@dataclass(frozen=True)
class DuplicatePolicy:
    """When two activities are one run, and which is canonical (`[duplicates]` in retrostride.toml)."""

    prefer: tuple[str, ...] = ("richest",)  # names of PREFERENCES, strongest first
    start_tolerance_s: float = 180.0  # one athlete's activities starting this close, with overlapping spans ...
    distance_tolerance: float = 0.15  # ... and distances within this share of the longer one

    def __post_init__(self) -> None:
        unknown = [name for name in self.prefer if name not in PREFERENCES]
        if unknown:
            raise ValueError(f"prefer has unknown entries {unknown}; known: {sorted(PREFERENCES)}")
        if self.start_tolerance_s < 0 or not 0 <= self.distance_tolerance < 1:
            raise ValueError("start_tolerance_s must be ≥ 0 and distance_tolerance in [0, 1)")

    @property
    def ranking(self) -> str:
        """ORDER BY terms: the canonical activity of a set of duplicates ranks first."""
        return ", ".join([*(PREFERENCES[name] for name in self.prefer), TIE_BREAK])


def link_duplicates(
    connection, first: date, last: date, policy: DuplicatePolicy = DuplicatePolicy(), athletes: list[str] | None = None
) -> None:
    """Mark activities of `athletes` (None: all) that started on days first..last and repeat another
    activity of theirs (the same run from the watch and from a platform export): `duplicate_of` names
    the canonical one, the first by `policy.ranking`.  Nothing is deleted; marts count canonical rows."""
    mine, mine_qualified = of_athletes(athletes), of_athletes(athletes, "activities.athlete_id")
    connection.execute(
        f"UPDATE activities SET duplicate_of = NULL WHERE start_day BETWEEN ? AND ? AND {mine}", [first, last]
    )
    connection.execute(
        f"""
        WITH ranked AS (
            SELECT activity_id, athlete_id, start_ts, coalesce(end_ts, start_ts) AS end_ts, distance_m,
                   row_number() OVER (ORDER BY {policy.ranking}) AS rank
            FROM activities
            WHERE start_day BETWEEN $first - INTERVAL 1 DAY AND $last + INTERVAL 1 DAY AND {mine}),
        pairs AS (
            SELECT d.activity_id, arg_min(c.activity_id, c.rank) AS canonical
            FROM ranked d JOIN ranked c
              ON c.athlete_id = d.athlete_id AND c.rank < d.rank
             AND abs(epoch(c.start_ts) - epoch(d.start_ts)) <= $tolerance
             AND c.start_ts <= d.end_ts AND d.start_ts <= c.end_ts
             AND (c.distance_m IS NULL OR d.distance_m IS NULL
                  OR abs(c.distance_m - d.distance_m) <= $share * greatest(c.distance_m, d.distance_m))
            GROUP BY d.activity_id)
        UPDATE activities SET duplicate_of = pairs.canonical FROM pairs
        WHERE activities.activity_id = pairs.activity_id AND activities.start_day BETWEEN $first AND $last
          AND {mine_qualified}
        """,
        {"first": first, "last": last, "tolerance": policy.start_tolerance_s, "share": policy.distance_tolerance},
    )
    connection.execute(_UNION_OF_COPIES.format(mine_qualified=mine_qualified), {"first": first, "last": last})


#: A canonical activity carries what its copies know, whatever the import order: a platform's name,
#: description and calories first (users edit them there), then its own, then a copy's; the platform
#: and its id from itself, else its first copy that has one.
_UNION_OF_COPIES = """
    WITH members AS (
        SELECT coalesce(duplicate_of, activity_id) AS canonical, activity_id, name, description, calories_kcal,
               platform, platform_activity_id, platform IS NULL AS from_file, duplicate_of IS NOT NULL AS is_copy
        FROM activities
        WHERE coalesce(duplicate_of, activity_id) IN (
            SELECT duplicate_of FROM activities WHERE duplicate_of IS NOT NULL AND start_day BETWEEN $first - INTERVAL 1 DAY AND $last + INTERVAL 1 DAY)),
    best AS (
        SELECT canonical,
               first(name ORDER BY from_file, is_copy, activity_id) FILTER (WHERE name IS NOT NULL) AS name,
               first(description ORDER BY from_file, is_copy, activity_id) FILTER (WHERE description IS NOT NULL) AS description,
               first(calories_kcal ORDER BY from_file, is_copy, activity_id) FILTER (WHERE calories_kcal IS NOT NULL) AS calories_kcal,
               first(platform ORDER BY is_copy, activity_id) FILTER (WHERE platform_activity_id IS NOT NULL) AS platform,
               first(platform_activity_id ORDER BY is_copy, activity_id) FILTER (WHERE platform_activity_id IS NOT NULL) AS platform_activity_id
        FROM members GROUP BY canonical)
    UPDATE activities SET name = best.name, description = best.description, calories_kcal = best.calories_kcal,
           platform = coalesce(best.platform, activities.platform), platform_activity_id = best.platform_activity_id
    FROM best WHERE activities.activity_id = best.canonical AND activities.start_day BETWEEN $first AND $last
      AND {mine_qualified}
"""


def cross_source_duplicates(warehouse: Warehouse, paths: list[str]) -> int:
    """How many activities repeat another from a different source where either is from the files at
    `paths` (ledger paths): the cross-source duplicates an import made."""
    if not paths:
        return 0
    return int(
        warehouse.query(
            "WITH files AS (SELECT sha256 FROM import_ledger WHERE list_contains(?, path)) "
            "SELECT count(*) FROM activities d JOIN activities c ON c.activity_id = d.duplicate_of "
            "WHERE d.source_sha256 IN (SELECT sha256 FROM files) OR c.source_sha256 IN (SELECT sha256 FROM files)",
            [paths],
        ).item()
    )


def mark_published(warehouse: Warehouse, first: date, last: date, athletes: list[str] | None = None) -> int:
    """Clear days first..last of `athletes` (None: all) from `pending_days` after a publish run over them succeeded."""
    return warehouse.write(
        lambda connection: connection.execute(
            f"DELETE FROM pending_days WHERE day BETWEEN ? AND ? AND {of_athletes(athletes)}", [first, last]
        ).fetchone()[0]
    )


def publish_snapshot(warehouse: Warehouse) -> tuple[int, int]:
    """Show readers everything committed so far, in one step: one commit marked PUBLISHED (a row in
    `publishes`) is the snapshot they attach at.  The same commit notes, in the ledger rows of the
    files it publishes (none of an athlete with a day still pending: their files are not all in), the
    snapshot their rows are in: the newest one it starts from.  Returns (that snapshot, files)."""
    unnoted = (
        f"published_snapshot IS NULL AND {IMPORTED} AND NOT EXISTS "
        "(SELECT 1 FROM pending_days p WHERE p.athlete_id IS NOT DISTINCT FROM import_ledger.athlete_id"
        " OR p.athlete_id IS NULL)"
    )

    def mark(connection: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        connection.execute(f"CALL {ALIAS}.set_commit_message('retrostride', '{PUBLISHED}')")
        snapshot = connection.execute(f"SELECT max(snapshot_id) FROM ducklake_snapshots('{ALIAS}')").fetchone()[0]
        files = connection.execute(
            f"UPDATE import_ledger SET published_snapshot = ? WHERE {unnoted}", [snapshot]
        ).fetchone()[0]
        connection.execute("INSERT INTO publishes VALUES (now(), ?)", [files])
        return snapshot, files

    return warehouse.write(mark)


def publish_body_measurements(warehouse: Warehouse, lake: Lake, athletes: list[str] | None = None) -> int:
    """Bring the `body_measurements` of `athletes` (None: all) in line with the imported files: rows
    of files no longer imported go, files not yet published come in (only those are read, so a daily
    import costs no more than its files).  Only the athletes' own: two runs for different athletes
    never add the same file's rows twice.  Returns the rows added."""
    imported = f"SELECT sha256 FROM import_ledger WHERE {IMPORTED} AND body_measurements > 0"
    mine = of_athletes(athletes)

    def replace(connection: duckdb.DuckDBPyConnection) -> int:
        packs = current_packs(
            warehouse,
            f"body_measurements > 0 AND {mine} AND sha256 NOT IN (SELECT source_sha256 FROM body_measurements)",
            connection=connection,
        )
        connection.execute(f"DELETE FROM body_measurements WHERE {mine} AND source_sha256 NOT IN ({imported})")
        return _insert_from_lake(connection, "body_measurements", pack_files(lake, packs, "body_measurements"))

    return warehouse.write(replace)


#: Frames whose rows say their activity rather than their file (`activity_id` is made from the file's sha256).
_BY_ACTIVITY = ("records", "laps", "developer_fields")
#: Of those, the frames whose athlete is their activity's (lake packs written before they carried it lack it).
_ATHLETE_FROM_ACTIVITY = ("laps", "developer_fields")


def _lake_rows(frame: str, where: str) -> str:
    """SQL for the current rows of `frame` in the Parquet files `$paths` that satisfy `where` (for
    records and laps: whose activity in `activities` does).  `lake_files` (path, sha256) says which
    file's rows each Parquet file holds currently."""
    scan = "SELECT f.* EXCLUDE (filename) FROM read_parquet($paths, union_by_name = true, filename = true) f"
    owners = (
        "SELECT l.path, a.activity_id AS owned, a.athlete_id AS owner FROM lake_files l JOIN activities a "
        f"ON a.source_sha256 = l.sha256 WHERE {where}"
    )
    if frame in _ATHLETE_FROM_ACTIVITY:  # packs from before these frames carried athlete_id have none
        return (
            "SELECT COLUMNS(c -> c NOT IN ('filename', 'athlete_id', 'path', 'owned', 'owner')), o.owner AS athlete_id"
            f" FROM read_parquet($paths, union_by_name = true, filename = true) f JOIN ({owners}) o"
            " ON f.filename = o.path AND f.activity_id = o.owned"
        )
    if frame in _BY_ACTIVITY:
        return f"{scan} SEMI JOIN ({owners}) o ON f.filename = o.path AND f.activity_id = o.owned"
    return f"{scan} SEMI JOIN lake_files o ON f.filename = o.path AND f.source_sha256 = o.sha256 WHERE {where}"


def _insert_from_lake(
    connection: duckdb.DuckDBPyConnection,
    table: str,
    files: pl.DataFrame,
    where: str = "true",
    parameters: dict | None = None,
) -> int:
    """Append the current rows of `files` (path, sha256: `warehouse.packs.pack_files`) that satisfy `where`; how many."""
    if files.is_empty():
        return 0
    with _registered(connection, files):
        found = connection.execute(
            f"INSERT INTO {table} BY NAME {_lake_rows(table, where)}", {**(parameters or {}), "paths": _paths(files)}
        ).fetchone()
    return int(found[0]) if found else 0


def _paths(files: pl.DataFrame) -> list[str]:
    return files["path"].unique(maintain_order=True).to_list()


@contextmanager
def _registered(connection: duckdb.DuckDBPyConnection, files: pl.DataFrame) -> Iterator[None]:
    connection.register("lake_files", files)
    try:
        yield
    finally:
        connection.unregister("lake_files")
