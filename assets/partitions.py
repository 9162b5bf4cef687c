"""Activity-level assets are partitioned by the activity's start date (UTC)."""

import dagster as dg

from warehouse.ingest import EARLIEST_DAY

daily = dg.DailyPartitionsDefinition(start_date=EARLIEST_DAY.isoformat(), end_offset=1)
