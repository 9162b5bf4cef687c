"""The `retrostride` command: import files now, run the demo, ask the warehouse, open the UI."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from retrostride.assets.settings import Settings
from retrostride.connectors.object_store import ObjectStoreError, is_object_url
from retrostride.connectors.sources import as_location, count_source_files

app = typer.Typer(help="Find the backward-running stretches in a runner's history.", no_args_is_help=True)
console = Console()
REPO = Path(__file__).resolve().parents[1]


@app.command("import")
def import_command(
    paths: list[str] = typer.Argument(None, help="FIT/GPX/TCX files, .gz, zips, Strava or Garmin exports, folders (athlete subfolders like the inbox) or s3://bucket/prefix (read like a folder). Default: the inbox."),
    athlete: str = typer.Option(None, "--athlete", help="Assign every file to this athlete."),
) -> None:
    """Import files now, in-process, with a progress bar and a summary."""
    settings = Settings.from_env()
    targets = [as_location(p) for p in paths] if paths else [settings.inbox]
    missing = [p for p in targets if not is_object_url(p) and not p.exists()]
    if missing:
        console.print(f"[red]No such file or folder: {', '.join(map(str, missing))}")
        raise typer.Exit(2)
    try:
        outcomes = _import_with_progress(settings, targets, athlete)
    except ObjectStoreError as error:  # listing or downloading failed before anything was imported
        console.print(f"[red]{escape(str(error))}")
        raise typer.Exit(2)
    _print_summary(outcomes)


@app.command()
def demo(
    athletes: int = typer.Option(3, help="How many athletes to generate."),
    weeks: int = typer.Option(8, help="How many weeks of history."),
    seed: int = typer.Option(7, help="Random seed (same seed, same files)."),
) -> None:
    """Generate a sample export, import it through Dagster, and show what was found."""
    from retrostride.pipelines.sample_export import generate_export

    settings = Settings.from_env()
    export = settings.home / "sample-export"
    if export.exists():
        shutil.rmtree(export)
    console.print(f"Generating {athletes} athletes × {weeks} weeks into {export} …")
    generate_export(export, seed=seed, athletes=athletes, weeks=weeks)
    profiles = export.with_name(export.name + ".truth") / "athletes.toml"
    if profiles.exists() and not settings.athletes_file.exists():
        settings.athletes_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(profiles, settings.athletes_file)
    outcomes = _import_with_progress(settings, [export], None)
    _print_summary(outcomes)
    _print_query(settings, "Activities per athlete", """
        SELECT athlete_id, count(*) AS activities, round(sum(distance_m) / 1000, 1) AS km,
               min(local_day) AS first_day, max(local_day) AS last_day
        FROM activities WHERE duplicate_of IS NULL GROUP BY athlete_id ORDER BY athlete_id""")
    _print_query(settings, "Backward running found, and what it cost", """
        SELECT s.athlete_id, count(DISTINCT s.activity_id) AS sessions, round(sum(s.duration_s) / 60, 1) AS minutes,
               round(sum(s.distance_m) / 1000, 2) AS km, round(sum(s.kcal_net)) AS kcal_net,
               round(avg(s.confidence), 2) AS confidence
        FROM segments s WHERE s.direction = 'backward' GROUP BY ALL ORDER BY 1""")
    _print_query(settings, "Weekly distance (last 6 weeks per athlete)", """
        WITH weeks AS (
            SELECT athlete_id, week_start, round(sum(distance_km), 1) AS distance_km,
                   round(coalesce(sum(distance_km) FILTER (WHERE direction = 'backward'), 0), 1) AS backward_km,
                   round(sum(kcal_net)) AS kcal_net
            FROM mileage_weekly GROUP BY athlete_id, week_start)
        SELECT * FROM weeks
        QUALIFY row_number() OVER (PARTITION BY athlete_id ORDER BY week_start DESC) <= 6
        ORDER BY athlete_id, week_start""")
    console.print(f"\nWarehouse (DuckLake, read it from the DuckDB CLI with docs/warehouse.md's ATTACH line): {settings.catalog.metadata}\n"
                  "Try: retrostride sql \"SELECT * FROM mileage_weekly LIMIT 10\", or `retrostride sql` for a prompt.")


@app.command()
def sql(
    query: str = typer.Argument(None, help="A read-only SQL query. None: an interactive prompt with history."),
    fmt: str = typer.Option(None, "--format", "-f", help="table, csv, json or parquet (default: from --output's suffix, else table)."),
    output: Path = typer.Option(None, "--output", "-o", help="Write the answer to this file instead of the terminal."),
    as_of: str = typer.Option(None, "--as-of", help="Query the warehouse as it was: a snapshot id (import_ledger.published_snapshot) or a timestamp."),
) -> None:
    """Answer SQL from the warehouse (read-only), or open a prompt when no query is given."""
    from retrostride.pipelines.sql_shell import OutputError, interactive, output_format, run_query

    settings = Settings.from_env()
    published = _reading(settings, as_of)
    try:
        chosen = output_format(fmt, output)
    except OutputError as error:
        console.print(f"[red]{escape(str(error))}")
        raise typer.Exit(2)
    if query is None:
        interactive(published, settings.home / ".sql_history", console)
        return
    if not run_query(published, query, chosen, console, output):
        raise typer.Exit(1)


@app.command()
def backfill(
    start: str = typer.Option(..., "--start", help="First day (YYYY-MM-DD); its whole month is redone."),
    end: str = typer.Option(..., "--end", help="Last day (YYYY-MM-DD); its whole month is redone."),
    assets: list[str] = typer.Option(None, "--assets", help="Only these assets of the publish job (repeat or comma-separate). Default: all."),
) -> None:
    """Re-run every stage for the months holding START..END, in one run, with progress."""
    from datetime import date

    from retrostride.pipelines.backfills import backfill_months

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as error:
        console.print(f"[red]{escape(str(error))}: dates are YYYY-MM-DD")
        raise typer.Exit(2)
    names = [n.strip() for a in (assets or []) for n in a.split(",") if n.strip()]
    settings = Settings.from_env()
    try:
        run = _with_stage_progress(f"backfill {first:%Y-%m}..{last:%Y-%m}", lambda progress: backfill_months(settings, first, last, names, progress))
    except ValueError as error:
        console.print(f"[red]{escape(str(error))}")
        raise typer.Exit(2)
    _print_backfill(run)
    if not run.success:
        raise typer.Exit(1)


@app.command()
def reprocess() -> None:
    """Bring every month whose detection/energy rows are of an old model version (or missing) up to date."""
    from retrostride.pipelines.backfills import VERSIONED_TABLES, current_model_versions, stale_ranges
    from retrostride.pipelines.backfills import reprocess as reprocess_stale
    from retrostride.warehouse.store import Warehouse
    from retrostride.warehouse.versions import version_counts

    settings = Settings.from_env()
    ranges = stale_ranges(settings)
    if not ranges:
        console.print("Nothing to reprocess: every month is of the current model version.")
        return
    console.print(f"Current model version: {', '.join(sorted(set(current_model_versions(settings).values())))}; "
                  f"stale: {', '.join(f'{a:%Y-%m}..{b:%Y-%m}' for a, b in ranges)}")
    runs = _with_stage_progress("reprocess", lambda progress: reprocess_stale(settings, progress=progress))
    for run in runs:
        _print_backfill(run)
    for table, counts in version_counts(Warehouse(settings.catalog), VERSIONED_TABLES).items():
        console.print(f"  {table}: " + ", ".join(f"{n} rows of {v}" for v, n in counts.items()))
    if not all(r.success for r in runs):
        raise typer.Exit(1)


@app.command()
def migrate() -> None:
    """Move a home from before DuckLake (warehouse.duckdb) into the DuckLake warehouse; the old file stays, renamed."""
    from retrostride.pipelines.runs import ensure_migrated

    settings = Settings.from_env()
    done = ensure_migrated(settings)
    if done is None:
        console.print(f"Nothing to migrate: no {settings.legacy_warehouse} (the warehouse is {settings.catalog.metadata}).")
        return
    console.print(f"Migrated {sum(done.rows.values())} rows of {len(done.rows)} tables into {settings.catalog.metadata}; "
                  f"the old file is kept as {done.kept_as}.")


@app.command()
def ui(port: int = typer.Option(3000, help="Port for the Dagster UI.")) -> None:
    """Open the Dagster UI (and daemon) on workspace.yaml."""
    from retrostride.pipelines.runs import instance_for

    settings = Settings.from_env()
    instance_for(settings)  # installs dagster.yaml into DAGSTER_HOME
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    os.execv(dagster, [dagster, "dev", "-w", str(REPO / "workspace.yaml"), "-p", str(port)])


def _import_with_progress(settings: Settings, targets: list[Path | str], athlete: str | None) -> list:
    from retrostride.pipelines.runs import import_paths

    total = count_source_files(targets, athlete)
    outcomes: list = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("importing", total=total)

        def advance(outcome) -> None:
            outcomes.append(outcome)
            bar.update(task, advance=1, description=f"importing {Path(outcome.path).name[:32]:32}")

        import_paths(settings, targets, athlete, progress=advance)
        bar.update(task, description="imported")
    return outcomes


def _with_stage_progress(title: str, work):
    """Run `work(progress)` with a spinner line per asset materialized."""
    with console.status(f"{title} …") as status:
        def progress(asset: str, what: str) -> None:
            colour = "green" if what == "materialized" else "red"
            console.print(f"  [{colour}]{what}[/] {escape(asset)}")
            status.update(f"{title}: {asset} {what}")

        return work(progress)


def _print_backfill(run) -> None:
    verdict = "[green]done[/]" if run.success else "[red]failed[/] (see the run in the UI; re-running it converges)"
    console.print(f"{run.first:%Y-%m}..{run.last:%Y-%m}: {len(run.assets)} assets, run {run.run_id[:8]}: {verdict}")


def _print_summary(outcomes: list) -> None:
    counts = {s: sum(1 for o in outcomes if o.status == s) for s in ("ok", "partial", "failed", "duplicate", "skipped")}
    console.print(
        f"[bold]{counts['ok']} imported[/], {counts['partial']} partial, {counts['skipped']} skipped as already imported, "
        f"{counts['duplicate']} duplicates, [red]{counts['failed']} failed[/]"
    )
    for outcome in outcomes:
        if outcome.status in ("failed", "partial"):
            console.print(f"  [yellow]{outcome.status}[/] {escape(outcome.path)}: {escape(outcome.reason or '')}")


def _reading(settings: Settings, as_of: str | None = None):
    """What readers query: the warehouse's newest snapshot, or the one `as_of` names (a home from
    before DuckLake is migrated first)."""
    from retrostride.pipelines.runs import ensure_migrated
    from retrostride.warehouse.access import Reading

    ensure_migrated(settings)
    if not settings.catalog.exists():
        console.print(f"[red]No warehouse in {settings.home} yet: run `retrostride import` or `retrostride demo` first.")
        raise typer.Exit(2)
    return Reading(settings.catalog, as_of)


def _print_query(settings: Settings, title: str | None, query: str) -> None:
    from retrostride.warehouse.access import read_only_query

    frame = read_only_query(_reading(settings), query)
    table = Table(title=title, show_lines=False)
    for column in frame.columns:
        table.add_column(column)
    for row in frame.iter_rows():
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
