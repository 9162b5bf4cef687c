"""Recreate a damaged (or deleted) warehouse from the lake: the ledger from its copies in the lake
(`warehouse.ledger_copies`), then every day it covers marked for publishing, which fills the tables
again from the lake's packs.  The damaged catalog (and its data folder) is kept aside, never deleted."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from retrostride.warehouse.catalog import Catalog, forget_engines
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.ledger_copies import ledger_copies, replay_ledger
from retrostride.warehouse.store import Warehouse

#: The days a ledger row's activities may be on (first..last), for every file whose rows are in the lake.
_LEDGER_DAYS = """
    SELECT DISTINCT CAST(unnest(range(first_day, last_day + 1, INTERVAL 1 DAY)) AS DATE) AS day
    FROM import_ledger WHERE first_day IS NOT NULL AND last_day IS NOT NULL ORDER BY day"""


class NoLedgerCopies(Exception):
    """The lake holds no copy of the ledger (a home last imported into before copies were kept)."""


@dataclass(frozen=True)
class Rebuilt:
    ledger_rows: int
    days: list[date]
    kept_aside: Path | None


def rebuild_warehouse(warehouse: Warehouse, lake: Lake) -> Rebuilt:
    """Move the embedded catalog and its data folder aside and make a new warehouse holding the ledger
    kept in the lake, with every day it covers pending (publishing them fills the tables); raises
    NoLedgerCopies when the lake has none, leaving the warehouse where it is.  (A shared catalog is
    the PostgreSQL administrator's to restore: it is not moved.)"""
    if next(ledger_copies(lake), None) is None:
        raise NoLedgerCopies(
            f"the lake under {lake.home} holds no copy of the ledger ({lake.ledger_dir} is empty): "
            "the warehouse cannot be rebuilt from it"
        )
    aside = _move_aside(warehouse.catalog)
    warehouse.ensure_schema()
    with warehouse.transaction() as connection:
        rows = replay_ledger(connection, lake)
        connection.execute(f"INSERT INTO pending_days (day) {_LEDGER_DAYS}")
        days = [row[0] for row in connection.execute("SELECT day FROM pending_days ORDER BY day").fetchall()]
    return Rebuilt(rows, days, aside)


def _move_aside(catalog: Catalog) -> Path | None:
    """Rename the embedded catalog (and its SQLite side files) to `<name>.damaged-<UTC time>`, and its
    local data folder likewise; the catalog's new name, or None when there was none."""
    path = catalog.sqlite_file
    if path is None or not path.exists():
        return None
    forget_engines(catalog)  # this process's engine has the old catalog open
    stamp = f"damaged-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    aside = path.with_name(f"{path.name}.{stamp}")
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, aside.with_name(aside.name + suffix))
    data = Path(catalog.data)
    if "://" not in catalog.data and data.exists():
        os.replace(data, data.with_name(f"{data.name}.{stamp}"))
    return aside
