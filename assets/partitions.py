"""Activity-level assets are partitioned by the month of the activity's start date (UTC).

DESIGN.md asked for daily partitions.  Dagster records run-storage events per partition of a run, so
re-publishing a sparse ten-year history day by day spent most of its time on bookkeeping; by month it
is a small share (figures: README, "Partitions are monthly").
"""

import dagster as dg

from retrostride.connectors.ingest.batch import EARLIEST_DAY

monthly = dg.MonthlyPartitionsDefinition(start_date=EARLIEST_DAY.isoformat(), end_offset=1)
