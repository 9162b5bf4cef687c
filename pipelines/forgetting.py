"""`retrostride forget`: take back a mistaken import — the file's ledger rows, raw copy and every row made from it.

The file's ledger rows go first; then the months its activities started in are published again
from the lake (a backfill: activities, records, laps, segments and energy of those months are
rebuilt from the files still imported, and a copy from another source that was folded into one
of its activities becomes the activity), body measurements follow the ledger, and the marts and
the snapshot are refreshed.  Forgetting again finds nothing and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from retrostride.assets.settings import Settings
from retrostride.pipelines.backfills import StageProgress, backfill_months
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.store import Warehouse

#: Shortest sha256 prefix taken as one: 8 hex characters, as `retrostride ledger` users copy them.
MIN_SHA_PREFIX = 8


@dataclass(frozen=True)
class Forgotten:
    paths: tuple[str, ...]  # ledger paths removed (every copy with the same content)
    activities: int
    body_measurements: int
    months: int  # months published again


def forget_file(settings: Settings, key: str, progress: StageProgress | None = None) -> Forgotten:
    """Forget the imported file whose ledger path is `key`, or whose sha256 starts with `key`."""
    from retrostride.pipelines.definitions import build_definitions
    from retrostride.pipelines.runs import QUIET, instance_for, process_tags
    from retrostride.warehouse.publish import publish_body_measurements

    warehouse = Warehouse(settings.catalog)
    shas = _matching(warehouse, key)
    if not shas:
        return Forgotten((), 0, 0, 0)
    found = warehouse.query(
        """
        SELECT (SELECT list(path ORDER BY path) FROM import_ledger WHERE sha256 IN (SELECT unnest($shas))) AS paths,
               (SELECT list(DISTINCT format) FROM import_ledger WHERE sha256 IN (SELECT unnest($shas))) AS formats,
               (SELECT count(*) FROM activities WHERE source_sha256 IN (SELECT unnest($shas))) AS activities,
               (SELECT count(*) FROM body_measurements WHERE source_sha256 IN (SELECT unnest($shas))) AS measurements,
               (SELECT min(start_day) FROM activities WHERE source_sha256 IN (SELECT unnest($shas))) AS first_day,
               (SELECT max(start_day) FROM activities WHERE source_sha256 IN (SELECT unnest($shas))) AS last_day""",
        {"shas": shas},
    ).row(0, named=True)
    with warehouse.transaction() as connection:
        connection.execute("DELETE FROM import_ledger WHERE sha256 IN (SELECT unnest(?::VARCHAR[]))", [shas])
    lake = Lake(settings.home)
    for sha in shas:
        for fmt in found["formats"] or []:
            if fmt and lake.raw_path(sha, fmt).exists():
                lake.raw_path(sha, fmt).unlink()
    publish_body_measurements(warehouse, lake)
    months = 0
    if found["first_day"] is not None:
        run = backfill_months(
            settings, found["first_day"], found["last_day"], progress=progress, tags={"retrostride/trigger": "forget"}
        )
        if not run.success:
            raise RuntimeError(
                f"publishing {run.first:%Y-%m}..{run.last:%Y-%m} again failed (run {run.run_id}): run `retrostride forget` again"
            )
        months = (run.last.year - run.first.year) * 12 + run.last.month - run.first.month + 1
    else:  # body measurements only: the marts and the snapshot still change
        build_definitions(settings).resolve_job_def("marts").execute_in_process(
            instance=instance_for(settings), run_config=QUIET, tags=process_tags()
        )
    return Forgotten(tuple(found["paths"] or ()), found["activities"], found["measurements"], months)


def _matching(warehouse: Warehouse, key: str) -> list[str]:
    """sha256 of the ledger rows `key` names: a path exactly, else a sha256 prefix naming one file."""
    by_path = warehouse.query("SELECT DISTINCT sha256 FROM import_ledger WHERE path = ?", [key])["sha256"].to_list()
    if by_path or not re.fullmatch(r"[0-9a-fA-F]+", key):
        return by_path
    if len(key) < MIN_SHA_PREFIX:
        raise ValueError(f"{key!r}: give at least {MIN_SHA_PREFIX} characters of the sha256, or the path")
    shas = warehouse.query("SELECT DISTINCT sha256 FROM import_ledger WHERE starts_with(sha256, ?)", [key.lower()])[
        "sha256"
    ].to_list()
    if len(shas) > 1:
        raise ValueError(f"{key!r} starts {len(shas)} files' sha256: give more of it")
    return shas
