"""The pipeline's report after an import redraws only the athletes whose rows changed: the page is
the one a full redraw writes, and the other athletes' kept parts are not drawn again."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import dagster as dg

from retrostride.pipelines.runs import import_paths
from retrostride.pipelines.sample_export import generate_export
from retrostride.warehouse.access import Reading
from retrostride.warehouse.report import bundle_cache, section_cache, write_report
from retrostride.warehouse.report.sections import DrawnSection
from tests.conftest import settings_for


def _comparable(html: str) -> str:
    """The page with its numbers to 9 significant digits and Altair's dataset names (hashes of the
    rows) blanked: DuckDB's parallel float sums differ in their last bits from one read to the next,
    so two full redraws of one snapshot already differ there."""
    html = re.sub(r'"data-[0-9a-f]{32}"', '"data"', html)
    return re.sub(r"-?\d+\.\d{7,}(?:e-?\d+)?", lambda number: f"{float(number.group()):.9g}", html)


def _report_metadata(instance: dg.DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey("athlete_reports"))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_an_import_for_one_athlete_redraws_only_their_part_of_the_same_page(tmp_path: Path):
    export = tmp_path / "export"
    generate_export(export, seed=11, athletes=3, weeks=3, start=date(2024, 3, 4))
    settings = settings_for(tmp_path)
    settings.athletes_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tmp_path / "export.truth" / "athletes.toml", settings.athletes_file)
    later = tmp_path / "later"
    changed = sorted(p.name for p in export.iterdir() if p.is_dir())[1]
    last_run = sorted((export / changed).glob("*.fit"))[-1]
    later.mkdir()
    shutil.move(last_run, later / last_run.name)
    kept = section_cache(settings.home)
    with dg.instance_for_test() as instance:
        import_paths(settings, [export], instance=instance)
        first = _report_metadata(instance)
        drawn = {path: path.read_bytes() for path in kept.folder.glob("*.json")}
        stamps = {path: path.stat().st_mtime_ns for path in drawn}

        import_paths(settings, [later / last_run.name], athlete=changed, instance=instance)
        second = _report_metadata(instance)

    assert (first["athletes"], first["redrawn_athletes"]) == (3, 3)
    assert (second["athletes"], second["redrawn_athletes"]) == (3, 1)
    rewritten = {path for path in drawn if path.read_bytes() != drawn[path] or path.stat().st_mtime_ns != stamps[path]}
    assert rewritten == {kept.file_of(changed)} and set(kept.folder.glob("*.json")) == set(drawn)

    pipeline_page = (settings.home / "reports" / "report.html").read_text(encoding="utf-8")
    full = write_report(Reading(settings.catalog), tmp_path / "full.html", cache=bundle_cache(settings.home))
    assert full.redrawn == full.athletes and len(full.athletes) == 3
    assert _comparable(pipeline_page) == _comparable(full.path.read_text(encoding="utf-8"))

    # an unreadable entry and one drawn from other rows (another athlete's part, under its key) are drawn again
    others = [athlete for athlete in full.athletes if athlete != changed]
    kept.file_of(others[0]).write_text("{not json", encoding="utf-8")
    kept.file_of(others[1]).write_bytes(kept.file_of(changed).read_bytes())
    kept.put("forgotten", "key", DrawnSection(html="<p>rows of an athlete no longer imported</p>", specs={}))
    again = write_report(
        Reading(settings.catalog), tmp_path / "again.html", cache=bundle_cache(settings.home), sections=kept
    )
    assert sorted(again.redrawn) == sorted(others)
    assert not kept.file_of("forgotten").exists()  # a forgotten athlete's rows do not outlive them in the cache
    assert _comparable(again.path.read_text(encoding="utf-8")) == _comparable(pipeline_page)


def test_a_chart_placeholder_escapes_the_athlete_id_in_its_name():
    """Chart names carry the athlete id (any folder name): it cannot break out of the attribute."""
    import altair as alt
    import polars as pl

    from retrostride.warehouse.report.page import _Charts

    placed = _Charts('x"><script>alert(1)</script>-chart')
    html = placed.add(alt.Chart(pl.DataFrame({"a": [1]})).mark_point().encode(x="a"))
    assert "<script>" not in html and html.startswith('<div class="chart" id="x&#34;&gt;&lt;script&gt;')
    assert list(placed.specs) == ['x"><script>alert(1)</script>-chart-1']  # the id getElementById looks up
