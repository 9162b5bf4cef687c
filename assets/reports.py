"""The HTML report, redrawn from the published snapshot after every refresh of the marts."""

import time
from pathlib import Path

import dagster as dg

from retrostride.assets.marts import published_warehouse
from retrostride.assets.resources import Storage
from retrostride.warehouse.access import Reading


@dg.asset(deps=[published_warehouse], group_name="reports", kinds={"html", "altair"})
def athlete_reports(storage: Storage) -> dg.MaterializeResult:
    """Every athlete's weeks, backward running, body and outcomes, activities and data quality as one
    HTML file that opens offline (`retrostride report` writes the same for a chosen athlete or period)."""
    return dg.MaterializeResult(metadata=draw_report(storage))


def draw_report(storage: Storage) -> dict:
    """Write `reports/report.html` from the readers' snapshot (the work of `athlete_reports`): its metadata.
    The report's modules (Altair, Jinja2) are imported here, when it is drawn: a run process loads
    them after the snapshot readers wait for, not before its first step.  Each athlete's drawn part is
    kept under the home: only the athletes whose rows changed since the last redraw are drawn again."""
    from retrostride.warehouse.report import bundle_cache, default_report_path, section_cache, write_report

    started = time.perf_counter()
    home = Path(storage.home)
    summary = write_report(
        Reading(storage.warehouse.catalog),
        default_report_path(home),
        cache=bundle_cache(home),
        sections=section_cache(home),
    )
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "path": dg.MetadataValue.path(str(summary.path)),
        "athletes": len(summary.athletes),
        "redrawn_athletes": len(summary.redrawn),
        "charts": summary.charts,
        "bytes": summary.bytes,
        "preview": dg.MetadataValue.md(summary.markdown()),
    }
