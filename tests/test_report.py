"""The HTML report as a user opens it: written by the pipeline after an import, opened in a real
headless Chromium (Debian's `chromium` and `chromium-driver`, driven by selenium) with no network,
every chart drawn, the numbers shown equal to the marts', a screenshot of each section kept."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import pytest
from typer.testing import CliRunner

from retrostride.pipelines.cli import app
from retrostride.pipelines.runs import import_paths
from retrostride.pipelines.sample_export import generate_export
from retrostride.warehouse.access import Reading, read_only_query
from retrostride.warehouse.report import bundle_cache
from tests.conftest import CORPORA, settings_for

SCREENSHOTS = Path(__file__).resolve().parents[1] / "data" / "report-screenshots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
CORRUPT_FIT = CORPORA / "fit" / "python-fitparse" / "activity-filecrc.fit"


@dataclass
class ReportedHome:
    settings: object
    report: Path
    metadata: dict

    def sql(self, query: str) -> list[tuple]:
        return read_only_query(Reading(self.settings.catalog), query).rows()


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> ReportedHome:
    """Two athletes × 8 weeks (alice follows the study's protocol), one file twice, one corrupt file,
    imported through Dagster: the marts job draws the report."""
    root = tmp_path_factory.mktemp("report")
    export = root / "export"
    generate_export(export, seed=7, athletes=2, weeks=8, start=date(2024, 1, 1))
    first_run = sorted((export / "bruno").glob("2024-*.fit"))[0]
    shutil.copy(first_run, export / "bruno" / "copy-of-first-run.fit")
    shutil.copy(CORRUPT_FIT, export / "alice" / "damaged.fit")
    settings = settings_for(root)
    settings.athletes_file.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(root / "export.truth" / "athletes.toml", settings.athletes_file)
    with dg.instance_for_test() as instance:
        import_paths(settings, [export], instance=instance)
        event = instance.get_latest_materialization_event(dg.AssetKey("athlete_reports"))
    metadata = {k: v.value for k, v in event.asset_materialization.metadata.items()}
    return ReportedHome(settings, settings.home / "reports" / "report.html", metadata)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through chromedriver, both from the distribution (`make test` installs them)."""
    if not (CHROMIUM and CHROMEDRIVER):
        if os.geteuid() != 0:
            pytest.skip("chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)")
        pytest.fail("chromium or chromium-driver missing: `make test` installs them (.ci/system-packages.sh)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="retrostride-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1100,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class OpenedPage:
    charts: int
    drawn: int
    console: list[dict]
    requests: set[str]
    tiles: dict[tuple[str, str], str]
    metrics: dict[str, list[str]]


def open_report(driver, path: Path, screenshots: Path | None = None) -> OpenedPage:
    """Open `path`, wait for vega-embed to draw every chart, and collect what the page did."""
    from selenium.webdriver.common.by import By

    driver.get_log("browser"), driver.get_log("performance")  # drop what the browser did before
    driver.get(path.as_uri())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        charts = driver.find_elements(By.CSS_SELECTOR, "div.chart")
        drawn = driver.find_elements(By.CSS_SELECTOR, "div.chart svg.marks, div.chart canvas")
        if charts and len(drawn) >= len(charts):
            break
        time.sleep(0.25)
    requests = set()  # every request of the page, and any request anywhere that left the machine
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url, document = message["params"]["request"]["url"], message["params"].get("documentURL", "")
            if not document.startswith("chrome://") or urlparse(url).scheme not in ("chrome", "data"):
                requests.add(url)
    tiles = {
        (
            t.find_element(By.XPATH, "./ancestor::div[@data-athlete]").get_attribute("data-athlete"),
            t.get_attribute("data-metric"),
        ): t.text
        for t in driver.find_elements(By.CSS_SELECTOR, "div.tiles [data-metric]")
    }
    metrics: dict[str, list[str]] = {}
    for element in driver.find_elements(By.CSS_SELECTOR, "[data-metric]"):
        metrics.setdefault(element.get_attribute("data-metric"), []).append(element.text)
    if screenshots:
        screenshots.mkdir(parents=True, exist_ok=True)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1100, height + 200)  # every section inside the viewport
        for section in driver.find_elements(By.CSS_SELECTOR, "section.part"):
            section.screenshot(str(screenshots / f"{section.get_attribute('id')}.png"))
        driver.set_window_size(1100, 1000)
    return OpenedPage(len(charts), len(drawn), driver.get_log("browser"), requests, tiles, metrics)


def number(text: str) -> float:
    return float(text.replace(",", ""))


def test_the_pipeline_writes_the_report_after_an_import(reported):
    assert Path(reported.metadata["path"]) == reported.report and reported.report.exists()
    assert reported.metadata["athletes"] == 2 and reported.metadata["charts"] >= 18
    assert "| alice |" in reported.metadata["preview"] and "| bruno |" in reported.metadata["preview"]
    html = reported.report.read_text(encoding="utf-8")
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?https?:""", html)  # nothing fetched from a server
    [bundle] = bundle_cache(reported.settings.home).glob("vega-embed-*.js")  # kept for the next run's process
    assert bundle.read_text(encoding="utf-8") in html


@pytest.mark.slow
def test_the_report_opens_offline_draws_every_chart_and_shows_the_marts_numbers(reported, browser):
    page = open_report(browser, reported.report, SCREENSHOTS)
    print(f"\nreport: {reported.report}\nsection screenshots: {SCREENSHOTS}")

    assert [e for e in page.console if e["level"] in ("SEVERE", "WARNING")] == []
    assert page.requests == {reported.report.as_uri()}, "the report requested something besides itself"
    assert page.charts == reported.metadata["charts"] and page.drawn == page.charts
    sections = sorted(p.stem for p in SCREENSHOTS.glob("*.png"))
    assert {
        "alice-training",
        "alice-backward",
        "alice-body",
        "alice-activities",
        "study-comparison",
        "data-quality",
    } <= set(sections)
    assert all((SCREENSHOTS / f"{s}.png").stat().st_size > 5_000 for s in sections)

    for athlete, km, backward_minutes in reported.sql("""
            SELECT athlete_id, sum(distance_km), sum(moving_time_s) FILTER (WHERE direction = 'backward') / 60
            FROM mileage_daily GROUP BY 1"""):
        assert number(page.tiles[athlete, "distance_km"]) == round(km, 1)
        assert number(page.tiles[athlete, "backward_minutes"]) == round(backward_minutes, 1)
    for athlete, days in reported.sql("SELECT athlete_id, days FROM longest_backward_streak"):
        assert number(page.tiles[athlete, "longest_streak_days"]) == days
    [(study_windows,)] = reported.sql("SELECT count(*) FROM study_comparison WHERE athlete_id = 'alice'")
    assert study_windows >= 1 and number(page.tiles["alice", "study_windows"]) == study_windows
    [(windows, mean_change)] = reported.sql(
        "SELECT windows, mean_change FROM study_comparison_summary WHERE measure = 'body_fat_change_pct'"
    )
    assert page.metrics["study_windows_body_fat_change_pct"] == [str(windows)]
    assert f"{mean_change:.2f}" in browser.find_element("css selector", "table[data-table=study-summary]").text
    files = dict(reported.sql("SELECT status, count(*) FROM import_ledger GROUP BY 1"))
    assert files["failed"] == 1 and files["duplicate"] == 1
    for status, count in files.items():
        assert page.metrics[f"files_{status}"] == [f"{count:,}"]
    assert "CRC" in browser.find_element("css selector", "table[data-table=failed]").text


def test_the_report_command_writes_one_athletes_period(reported, monkeypatch, tmp_path):
    monkeypatch.setenv("RETROSTRIDE_HOME", str(reported.settings.home))
    output = tmp_path / "alice.html"
    result = CliRunner().invoke(
        app, ["report", "--athlete", "alice", "--from", "2024-01-15", "--to", "2024-02-11", "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    assert str(output) in result.output.replace("\n", "")
    html = output.read_text(encoding="utf-8")
    assert re.findall(r'data-athlete="([^"]+)"', html) == ["alice"]
    [(activities, km)] = reported.sql("""
        SELECT count(*), round(sum(distance_m) / 1000, 1) FROM activities
        WHERE athlete_id = 'alice' AND duplicate_of IS NULL AND local_day BETWEEN '2024-01-15' AND '2024-02-11'""")
    assert re.search(rf'data-metric="activities">{activities}<', html)
    assert re.search(rf'data-metric="distance_km">{km:,.1f}<', html)

    nobody = CliRunner().invoke(app, ["report", "--athlete", "nobody", "--output", str(tmp_path / "none.html")])
    assert nobody.exit_code == 0 and "No activities or weighings for athlete nobody" in nobody.output.replace("\n", " ")
    bad = CliRunner().invoke(app, ["report", "--from", "2024-02-30"])
    assert bad.exit_code == 2 and "dates are YYYY-MM-DD" in bad.output


def test_each_activitys_detection_status_is_shown_where_the_warehouse_has_one(reported, tmp_path):
    from retrostride.warehouse.publish import publish_snapshot
    from retrostride.warehouse.report import write_report
    from retrostride.warehouse.store import Warehouse

    home = tmp_path / "with-status"  # a copy of the home's warehouse: its catalog and data files
    home.mkdir()
    shutil.copy(reported.settings.catalog.sqlite_file, home / "catalog.sqlite")
    shutil.copytree(reported.settings.catalog.data, home / "warehouse")
    warehouse = Warehouse.embedded(home)
    with warehouse.transaction() as connection:
        connection.execute("ALTER TABLE activities ADD COLUMN detection_status VARCHAR")
        connection.execute(
            "UPDATE activities SET detection_status = CASE WHEN sport = 'walking' THEN 'not_on_foot' ELSE 'scored' END"
        )
        [(activities,)] = connection.execute("SELECT count(*) FROM activities WHERE duplicate_of IS NULL").fetchall()
    publish_snapshot(warehouse)
    html = write_report(Reading(warehouse.catalog), tmp_path / "report.html").path.read_text(encoding="utf-8")
    table = html[html.index('data-table="detection-status"') :]
    table = table[: table.index("</table>")]
    assert table.count("<tr>") == activities + 1 and "not_on_foot" in table
    assert "no detection_status column" not in html


@pytest.mark.slow
def test_the_report_of_the_real_corpus_files_draws_without_errors(imported_corpus, browser):
    """Years of real watch files (rides, swims, GPX without cadence, no weighings): every chart drawn."""
    report = imported_corpus.settings.home / "reports" / "report.html"
    page = open_report(browser, report)
    assert [e for e in page.console if e["level"] in ("SEVERE", "WARNING")] == []
    assert page.requests == {report.as_uri()}
    assert page.charts >= 6 and page.drawn == page.charts
    [(km,)] = read_only_query(
        Reading(imported_corpus.settings.catalog),
        "SELECT sum(distance_km) FROM mileage_daily WHERE athlete_id = 'corpus'",
    ).rows()
    assert number(page.tiles["corpus", "distance_km"]) == round(km, 1)
