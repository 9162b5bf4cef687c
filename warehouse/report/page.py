"""The report as one self-contained HTML page: Vega, Vega-Lite and vega-embed inlined, no request
of any kind when it opens (vl-convert bundles the JavaScript altair's specifications need)."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import altair as alt
import jinja2
import polars as pl
import vl_convert
from markupsafe import Markup

from . import charts
from .data import ReportData
from .sections import DrawnSection, SectionCache, section_key, write_atomically

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader(__package__, "."), autoescape=True, keep_trailing_newline=True
)
_PAGE, _ATHLETE = _TEMPLATES.get_template("page.html.j2"), _TEMPLATES.get_template("athlete.html.j2")


@functools.cache
def javascript_bundle(cache: Path | None = None) -> str:
    """Vega-Embed, Vega-Lite (the version altair writes) and Vega as one script (~0.9 MB).

    Bundling costs ~2 CPU-s, in every process that draws a report (each daemon run is one): with a
    `cache` folder the script is kept there, one file per vl-convert and Vega-Lite version.
    """
    vl_version = "_".join(alt.SCHEMA_VERSION.split(".")[:2])  # 'v6.4.1' -> 'v6_4', as vl-convert names it
    kept = cache / f"vega-embed-{vl_convert.__version__}-{vl_version}.js" if cache else None
    if kept and kept.exists():
        return kept.read_text(encoding="utf-8")
    bundle = vl_convert.javascript_bundle(vl_version=vl_version).replace("</script", "<\\/script")
    if kept:
        write_atomically(kept, bundle)
    return bundle


@dataclass
class _Charts:
    """Chart placeholders of one part of the page and the specifications vega-embed draws into them;
    `prefix` keeps each part's names apart (an athlete's part is drawn on its own, maybe in another run)."""

    prefix: str
    specs: dict[str, dict] = field(default_factory=dict)

    def add(self, chart: alt.TopLevelMixin) -> Markup:
        name = f"{self.prefix}-{len(self.specs) + 1}"
        with alt.data_transformers.disable_max_rows():  # years of days or samples: rows SQL has already bounded
            self.specs[name] = chart.to_dict()
        return Markup('<div class="chart" id="{}"></div>').format(name)  # an athlete id is any folder name: escaped


@dataclass(frozen=True)
class RenderedPage:
    """The page's HTML, how many charts it draws, and the athletes whose part was drawn (not kept)."""

    html: str
    charts: int
    redrawn: list[str]


def render_page(
    data: ReportData, source: str, cache: Path | None = None, sections: SectionCache | None = None
) -> RenderedPage:
    """The page (`cache`: where the JavaScript bundle is kept; `sections`: where each athlete's drawn
    part is kept, to draw only the athletes whose rows changed; None: draw every part)."""
    study_settings = data.study_settings.row(0, named=True)
    study = {
        **{k: f"{v:g}" for k, v in study_settings.items()},
        "summary": _rows(data.study_summary, digits=2),
        "has_windows": bool(data.study_summary["windows"].sum()),
    }
    drawn, redrawn = [], []
    for athlete in data.athletes:
        key = section_key(data, athlete) if sections else ""
        section = sections.get(athlete, key) if sections else None
        if section is None:
            section = _athlete_section(data, athlete, study)
            redrawn.append(athlete)
            if sections:
                sections.put(athlete, key, section)
        drawn.append(section)
    if sections:
        sections.keep_only(data.athletes)
    placed = _Charts("chart")
    page_charts = {
        "study": placed.add(charts.study(data.study_summary)) if study["has_windows"] else None,
        "imports": placed.add(charts.import_status(data.import_summary)) if data.import_summary.height else None,
    }
    quality = {
        "has_files": data.import_summary.height > 0,
        "summary": _rows(data.import_summary),
        "failed": _rows(data.failed_files),
        "duplicates": _rows(data.duplicates),
        "detection": _rows(data.detection_status) if data.detection_status is not None else None,
    }
    specs = {name: spec for section in drawn for name, spec in section.specs.items()} | placed.specs
    html = _PAGE.render(
        scope=data.scope.describe(),
        source=source,
        bundle=Markup(javascript_bundle(cache)),
        athletes=[Markup(section.html) for section in drawn],
        study=study,
        quality=quality,
        charts=page_charts,
        specs=Markup(json.dumps(specs, separators=(",", ":")).replace("</", "<\\/")),
    )
    return RenderedPage(html=html, charts=len(specs), redrawn=redrawn)


def _athlete_section(data: ReportData, athlete: str, study: dict) -> DrawnSection:
    """One athlete's part of the page, drawn."""
    placed = _Charts(f"{athlete}-chart")
    part = _athlete(data, athlete, placed, data.study_settings.row(0, named=True)["study_weeks"])
    return DrawnSection(html=_ATHLETE.render(a=part, study=study), specs=placed.specs)


def _athlete(data: ReportData, athlete: str, placed: _Charts, study_weeks: int) -> dict:
    """Everything of one athlete's part of the page."""
    [headline] = data.of("headline", athlete).rows(named=True)
    weekly, body, outcomes = data.of("weekly", athlete), data.of("body", athlete), data.of("outcomes", athlete)
    streaks = data.of("streaks", athlete)
    observed = outcomes.filter(pl.col("complete"))  # an unfinished window predicts from part of its kcal
    detail = data.of("detail_activity", athlete)
    detail_segments = data.of("detail_segments", athlete)
    figures = {
        "weekly": placed.add(charts.weekly_distance(data.of("weekly_parts", athlete), weekly)),
        "rolling": placed.add(charts.rolling_distance(data.of("rolling", athlete))),
        "backward": placed.add(charts.backward_weeks(weekly)),
        "streaks": placed.add(charts.streaks(streaks)) if streaks.height else None,
        "body": placed.add(charts.body(body)) if body.height else None,
        "outcomes": placed.add(charts.outcomes(observed)) if observed.height else None,
        "timeline": placed.add(charts.timeline(data.of("timeline", athlete))),
        "detail": placed.add(charts.activity_detail(data.of("detail_samples", athlete), detail_segments))
        if detail.height
        else None,
    }
    windows = outcomes.with_columns(
        (pl.col("window_start").cast(pl.String) + " – " + pl.col("window_end").cast(pl.String)).alias("window"),
        pl.when(pl.col("matches_study_protocol"))
        .then(pl.lit("yes"))
        .otherwise(pl.col("protocol_weeks_met").cast(pl.String) + f" of {study_weeks} weeks")
        .alias("protocol"),
    )
    study_windows = data.of("study_windows", athlete).with_columns(
        (pl.col("window_start").cast(pl.String) + " – " + pl.col("window_end").cast(pl.String)).alias("window"),
        (
            pl.col("body_fat_start_pct").round(1).cast(pl.String)
            + " → "
            + pl.col("body_fat_end_pct").round(1).cast(pl.String)
        ).alias("body_fat"),
        pl.col("study_body_fat_change_pct").alias("study"),
    )
    return {
        "id": athlete,
        "tiles": _tiles(headline),
        "charts": figures,
        "has_streaks": streaks.height > 0,
        "has_body": body.height > 0,
        "has_outcomes": observed.height > 0,
        "longest_streak": headline["longest_streak_days"],
        "streak_count": headline["streaks"],
        "windows": _rows(windows, digits=2),
        "study_windows": _rows(study_windows, digits=2),
        "detail": _rows(
            detail.with_columns(pl.col("local_start_ts").dt.strftime("%Y-%m-%d %H:%M").alias("local_start"))
        )[0]
        if detail.height
        else None,
        "detail_segments": _rows(detail_segments, digits=2),
    }


_TILES = [  # headline column, label, decimals
    ("activities", "activities", 0),
    ("distance_km", "km", 1),
    ("backward_km", "backward km", 2),
    ("backward_minutes", "backward minutes", 1),
    ("backward_sessions", "backward sessions", 0),
    ("kcal_net", "net kcal", 0),
    ("longest_streak_days", "longest backward streak (days)", 0),
    ("weighings", "weighings", 0),
    ("windows_with_weight_change", "6-week windows with a weight change", 0),
    ("study_windows", "windows following the study's protocol", 0),
]


def _tiles(headline: dict) -> list[dict]:
    return [{"key": key, "label": label, "value": _number(headline[key], digits)} for key, label, digits in _TILES]


def _rows(frame: pl.DataFrame, digits: int = 1) -> list[dict]:
    """Rows with numbers formatted for the page (rounding only)."""
    return [{k: _number(v, digits) for k, v in row.items()} for row in frame.iter_rows(named=True)]


def _number(value: object, digits: int = 1) -> str:
    """Text of a value: thousands separated, floats to `digits` decimals, null as an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
