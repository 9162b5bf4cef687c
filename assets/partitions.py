"""Activity-level assets are partitioned by the month of the activity's start date (UTC), and a run
of them may be for some athletes only (its ATHLETES_TAG; the warehouse tables are partitioned by athlete).

DESIGN.md asked for daily partitions.  Dagster records run-storage events per partition of a run, so
re-publishing a sparse ten-year history day by day spent most of its time on bookkeeping; by month it
is a small share (figures: README, "Partitions are monthly").
"""

import json

import dagster as dg

from retrostride.connectors.ingest.batch import EARLIEST_DAY

monthly = dg.MonthlyPartitionsDefinition(start_date=EARLIEST_DAY.isoformat(), end_offset=1)

#: Said in the UI under every monthly asset: the partition bar is mostly empty on a healthy install.
PARTITIONS_NOTE = (
    f" Partitioned by the month activities start in, from {EARLIEST_DAY:%B %Y} (the earliest date a file is"
    " believed), so any old file has a month to go to: months without activities are never"
    " materialized and show as missing. Only months with data fill; that is not a failure."
)

#: A run of the monthly assets for some athletes only (`retrostride backfill|reprocess --athlete`): their ids, as JSON.
ATHLETES_TAG = "retrostride/athletes"


def athletes_tags(athletes: list[str] | None) -> dict[str, str]:
    """The tags of a run for `athletes` (None: every athlete, no tag)."""
    return {} if athletes is None else {ATHLETES_TAG: json.dumps(sorted(athletes))}


def run_athletes(context: dg.AssetExecutionContext) -> list[str] | None:
    """The athletes the run is for (None: every athlete)."""
    tag = context.run.tags.get(ATHLETES_TAG)
    return None if tag is None else json.loads(tag)
