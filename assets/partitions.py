"""Activity-level assets are partitioned by the month of the activity's start date (UTC).

DESIGN.md asked for daily partitions.  Dagster records run-storage events per partition of a run, so
re-publishing a sparse ten-year history day by day spent most of its time on bookkeeping; by month it
is a small share (figures: README, "Partitions are monthly").
"""

import dagster as dg

from retrostride.connectors.ingest.batch import EARLIEST_DAY

monthly = dg.MonthlyPartitionsDefinition(start_date=EARLIEST_DAY.isoformat(), end_offset=1)

#: Said in the UI under every monthly asset: the partition bar is mostly empty on a healthy install.
PARTITIONS_NOTE = (
    f" Partitioned by the month activities start in, from {EARLIEST_DAY:%B %Y} (the earliest date a file is"
    " believed), so any old file has a month to go to: months without activities are never"
    " materialized and show as missing. Only months with data fill; that is not a failure."
)
