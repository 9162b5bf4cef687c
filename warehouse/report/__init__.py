"""The HTML report: a runner's weeks, backward running, body and outcomes, activities and data
quality, drawn from the published warehouse into one file that opens offline.

    summary = write_report(Reading(catalog), Path("report.html"), ReportScope(athlete="alice"))

No Dagster in here: the `athlete_reports` asset and `retrostride report` both call `write_report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from retrostride.warehouse.access import Reading

from .data import ReportScope, read_report_data
from .page import render_page
from .sections import SectionCache, write_atomically

__all__ = [
    "ReportScope",
    "ReportSummary",
    "SectionCache",
    "bundle_cache",
    "default_report_path",
    "section_cache",
    "write_report",
]


def bundle_cache(home: Path) -> Path:
    """Where the charts' JavaScript bundle is kept: `<home>/reports/.cache`."""
    return home / "reports" / ".cache"


def section_cache(home: Path) -> SectionCache:
    """Where the pipeline's report keeps each athlete's drawn part: `<home>/reports/.cache/sections`."""
    return SectionCache(bundle_cache(home) / "sections")


def default_report_path(home: Path, athlete: str | None = None) -> Path:
    """Where reports go unless told: `<home>/reports/report.html` (all athletes) or `report-<athlete>.html`."""
    return home / "reports" / (f"report-{athlete}.html" if athlete else "report.html")


@dataclass(frozen=True)
class ReportSummary:
    """What was written: where, for whom, how many charts, whose part was drawn (the others were kept
    from an earlier redraw), and each athlete's headline figures."""

    path: Path
    athletes: list[str]
    redrawn: list[str]
    charts: int
    bytes: int
    headline: pl.DataFrame

    def markdown(self) -> str:
        """A short Markdown preview of the headline figures (the Dagster UI shows it)."""
        lines = [
            f"Report: `{self.path}` ({self.charts} charts, {self.bytes / 1e6:.1f} MB)",
            "",
            "| athlete | activities | km | backward km | backward min | longest streak (days) | study windows |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in self.headline.iter_rows(named=True):
            lines.append(
                f"| {row['athlete_id']} | {row['activities']} | {row['distance_km']:.1f} | {row['backward_km']:.2f} | "
                f"{row['backward_minutes']:.1f} | {row['longest_streak_days']} | {row['study_windows']} |"
            )
        return "\n".join(lines)


def write_report(
    published: Reading,
    output: Path,
    scope: ReportScope = ReportScope(),
    cache: Path | None = None,
    sections: SectionCache | None = None,
) -> ReportSummary:
    """Render the report of `scope` from the warehouse's published snapshot (read-only) to
    `output`, replacing it atomically; `cache` keeps the charts' JavaScript between processes,
    `sections` each athlete's drawn part (only athletes whose rows changed are drawn again)."""
    data = read_report_data(published, scope)
    page = render_page(data, source=str(published), cache=cache, sections=sections)
    write_atomically(output, page.html)
    return ReportSummary(
        path=output,
        athletes=data.athletes,
        redrawn=page.redrawn,
        charts=page.charts,
        bytes=output.stat().st_size,
        headline=data.headline,
    )
