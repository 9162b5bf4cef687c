"""The `retrostride` command: import files now, run the demo, ask the warehouse, open the UI.

Imports are lazy: `retrostride sql` loads neither Polars nor Dagster nor the decoders, so a query
answers about as fast as DuckDB opens the file.  Exit codes: 0 done (every file imported or
skipped), 1 some files failed or a query was refused, 2 usage or configuration errors, 3 the run
itself failed (one sentence here, the traceback in `$RETROSTRIDE_HOME/logs/`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from retrostride.assets.settings import Settings
    from retrostride.pipelines.import_summary import ImportReport

DONE, FAILED, USAGE, CRASHED = 0, 1, 2, 3

app = typer.Typer(
    help="Find the backward-running stretches in a runner's history.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """The console script: the app, with an unexpected failure told in one sentence and its full
    traceback written to a log file (never rendered with every local variable, which took minutes).
    What the command leaves behind is frozen out of the garbage collector's reach: the interpreter's
    end then frees it without walking every object an import made (README, Performance)."""
    import gc
    import warnings

    warnings.filterwarnings("ignore", module="dagster")  # Dagster's beta/preview notices are for developers, not here
    try:
        app()
    except Exception as error:
        code, message = failure(error, " ".join(sys.argv[1:2]))
        Console(stderr=True).print(f"[red]{message}", soft_wrap=True, highlight=False)
        sys.exit(code)
    finally:
        gc.freeze()


def failure(error: Exception, command: str) -> tuple[int, str]:
    """What a command that raised `error` ends with: the exit code, and the one sentence to print (a
    configuration error's reason; else what failed and where, and the log file the traceback went to)."""
    root = _root_cause(error)
    if _is_config_error(root):
        return USAGE, escape(str(root))
    log = _log_traceback(error)
    return (
        CRASHED,
        f"retrostride {command} failed{_where(error)}: {escape(_first_line(root))}[/]\nFull traceback: {log}",
    )


@app.command("import")
def import_command(
    paths: list[str] = typer.Argument(
        None,
        help="FIT/GPX/TCX files, .gz, zips, Strava or Garmin exports, folders (athlete subfolders like the inbox) or s3://bucket/prefix (read like a folder). Default: the inbox.",
    ),
    athlete: str = typer.Option(None, "--athlete", help="Assign every file to this athlete."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON (no progress bars)."),
) -> None:
    """Import files now, with progress per stage and a summary. Exit 0: all imported or skipped; 1: some failed; 2: usage."""
    from retrostride.connectors.object_store import ObjectStoreError, as_location

    settings = _settings()
    targets = [as_location(p) for p in paths] if paths else [settings.inbox]
    missing = [p for p in targets if not isinstance(p, str) and not p.exists()]
    if missing:
        console.print(f"[red]No such file or folder: {escape(', '.join(map(str, missing)))}", soft_wrap=True)
        raise typer.Exit(USAGE)
    report = _served_import(settings, targets, athlete, show=not as_json)
    if report is None:  # no warm server answered: import here, then leave one behind for the next import
        _check(settings)
        try:
            report = _import(settings, targets, athlete, show=not as_json)
        except ObjectStoreError as error:  # listing or downloading failed before anything was imported
            console.print(f"[red]{escape(str(error))}", soft_wrap=True)
            raise typer.Exit(USAGE) from None
        from retrostride.pipelines.import_client import start_server

        start_server(settings)
    if as_json:
        import json

        console.file.write(json.dumps(report.as_json(), indent=2) + "\n")
    else:
        _print_report(report)
    raise typer.Exit(FAILED if report.failed else DONE)


@app.command()
def demo(
    athletes: int = typer.Option(3, help="How many athletes to generate."),
    weeks: int = typer.Option(8, help="How many weeks of history."),
    seed: int = typer.Option(7, help="Random seed (same seed, same files)."),
) -> None:
    """Generate a sample export, import it through Dagster, and show what was found."""
    import shutil

    from retrostride.pipelines.sample_export import generate_export

    settings = _settings(check=True)
    export = settings.home / "sample-export"
    if export.exists():
        shutil.rmtree(export)
    console.print(f"Generating {athletes} athletes × {weeks} weeks into {export} …")
    generate_export(export, seed=seed, athletes=athletes, weeks=weeks)
    profiles = export.with_name(export.name + ".truth") / "athletes.toml"
    if profiles.exists() and not settings.athletes_file.exists():
        settings.athletes_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(profiles, settings.athletes_file)
    _print_report(_import(settings, [export], None, show=True))
    _print_query(
        settings,
        "Activities per athlete",
        """
        SELECT athlete_id, count(*) AS activities, round(sum(distance_m) / 1000, 1) AS km,
               min(local_day) AS first_day, max(local_day) AS last_day
        FROM activities WHERE duplicate_of IS NULL GROUP BY athlete_id ORDER BY athlete_id""",
    )
    _print_query(
        settings,
        "Backward running found, and what it cost",
        """
        SELECT s.athlete_id, count(DISTINCT s.activity_id) AS sessions, round(sum(s.duration_s) / 60, 1) AS minutes,
               round(sum(s.distance_m) / 1000, 2) AS km, round(sum(s.kcal_net)) AS kcal_net,
               round(avg(s.confidence), 2) AS confidence
        FROM segments s WHERE s.direction = 'backward' GROUP BY ALL ORDER BY 1""",
    )
    _print_query(
        settings,
        "Weekly distance (last 6 weeks per athlete)",
        """
        WITH weeks AS (
            SELECT athlete_id, week_start, round(sum(distance_km), 1) AS distance_km,
                   round(coalesce(sum(distance_km) FILTER (WHERE direction = 'backward'), 0), 1) AS backward_km,
                   round(sum(kcal_net)) AS kcal_net
            FROM mileage_weekly GROUP BY athlete_id, week_start)
        SELECT * FROM weeks
        QUALIFY row_number() OVER (PARTITION BY athlete_id ORDER BY week_start DESC) <= 6
        ORDER BY athlete_id, week_start""",
    )
    console.print(
        f"\nWarehouse (DuckLake; the DuckDB CLI attaches it with docs/warehouse.md's ATTACH line): "
        f"{settings.catalog.metadata}\n"
        'Try: retrostride sql "SELECT * FROM mileage_weekly LIMIT 10", or `retrostride sql` for a prompt.'
    )
    from retrostride.warehouse.report import default_report_path

    console.print(f"Report (charts, opens offline in a browser): {default_report_path(settings.home)}")


@app.command()
def report(
    athlete: str = typer.Option(None, "--athlete", help="Only this athlete. Default: every athlete."),
    first: str = typer.Option(None, "--from", help="First local day (YYYY-MM-DD)."),
    last: str = typer.Option(None, "--to", help="Last local day (YYYY-MM-DD)."),
    output: Path = typer.Option(
        None, "--output", "-o", help="The HTML file. Default: $RETROSTRIDE_HOME/reports/report[-ATHLETE].html."
    ),
) -> None:
    """Write the HTML report (charts of weeks, backward running, body and outcomes, activities, data
    quality) from the published warehouse: one file that opens offline."""
    from datetime import date

    from retrostride.warehouse.report import ReportScope, bundle_cache, default_report_path, write_report

    try:
        scope = ReportScope(
            athlete, date.fromisoformat(first) if first else None, date.fromisoformat(last) if last else None
        )
    except ValueError as error:
        console.print(f"[red]{escape(str(error))}: dates are YYYY-MM-DD")
        raise typer.Exit(2) from None
    from retrostride.pipelines.import_client import redraw_lock

    settings = _settings()
    published = _reading(settings)
    with redraw_lock(settings, exclusive=False):  # a served import's redraw in flight is waited for
        summary = write_report(
            published, output or default_report_path(settings.home, athlete), scope, cache=bundle_cache(settings.home)
        )
    if not summary.athletes:
        console.print(f"[yellow]No activities or weighings for {escape(scope.describe())}: the report says so.")
    console.print(
        f"Report of {escape(scope.describe())}: {summary.path} ({summary.charts} charts, {summary.bytes / 1e6:.1f} MB)"
    )


@app.command(context_settings={"ignore_unknown_options": True})
def sql(
    query: str = typer.Argument(
        None,
        help="Read-only SQL (may start with a -- comment). None and no --file: an interactive prompt with history.",
    ),
    file: Path = typer.Option(None, "--file", help="Read the SQL from this file ('-': standard input)."),
    fmt: str = typer.Option(
        None, "--format", "-f", help="table, csv, json or parquet (default: from --output's suffix, else table)."
    ),
    output: Path = typer.Option(
        None,
        "--output",
        "-o",
        help="Write the answer to FILE.csv, .json, .parquet or .txt (a table) instead of the terminal.",
    ),
    as_of: str = typer.Option(
        None,
        "--as-of",
        help="Query the warehouse as it was: a snapshot id (import_ledger.published_snapshot) or a timestamp.",
    ),
) -> None:
    """Answer SQL from the warehouse's published snapshot, read-only (nothing else is reachable), or open a prompt."""
    from retrostride.pipelines.sql_shell import OutputError, interactive, output_format, run_query

    if query is not None and query.startswith("-") and not any(c.isspace() for c in query):
        _usage(f"No such option: {query}")  # an option mistyped, not SQL (SQL starting with `--` has a space)
    if query is not None and file is not None:
        _usage("Give the query as an argument or with --file, not both.")
    if file is not None:
        try:
            query = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            _usage(f"Cannot read {file}: {error}")
    try:
        chosen = output_format(fmt, output)
    except OutputError as error:
        _usage(str(error))
    settings = _settings()
    published = _reading(settings, as_of)
    if query is None:
        interactive(published, settings.home / ".sql_history", console)
        return
    if not run_query(published, query, chosen, console, output):
        raise typer.Exit(FAILED)


@app.command()
def athletes() -> None:
    """List athletes: profile (yes, none: defaults apply, or ignored keys), activities, km, first and last day, weigh-ins."""
    from retrostride.assets.settings import load_profiles
    from retrostride.pipelines.sql_shell import Answer, render

    settings = _settings(check=True)
    profiles = load_profiles(settings.athletes_file)
    counts = {}
    if settings.catalog.exists() or settings.legacy_warehouse.exists():
        answer = _answer(
            settings,
            """
            WITH a AS (SELECT athlete_id, count(*) AS activities, round(sum(distance_m) / 1000, 1) AS km,
                              min(local_day) AS first_day, max(local_day) AS last_day
                       FROM activities WHERE duplicate_of IS NULL GROUP BY 1),
                 b AS (SELECT athlete_id, count(*) AS measurements FROM body_measurements GROUP BY 1)
            SELECT coalesce(a.athlete_id, b.athlete_id), coalesce(activities, 0), coalesce(km, 0), first_day, last_day,
                   coalesce(measurements, 0)
            FROM a FULL JOIN b USING (athlete_id)""",
        )
        counts = {row[0]: row[1:] for row in answer.rows}
    rows = []
    for athlete in sorted(set(counts) | set(profiles)):
        profile = profiles.get(athlete)
        status = (
            "none"
            if profile is None
            else (f"ignored keys {', '.join(profile.ignored_keys)}" if profile.ignored_keys else "yes")
        )
        rows.append((athlete, status, *counts.get(athlete, (0, 0.0, None, None, 0))))
    if not rows:
        console.print(f"No athletes yet: no profiles in {settings.athletes_file} and nothing imported.")
        return
    columns = ("athlete", "profile", "activities", "km", "first_day", "last_day", "weigh_ins")
    render(Answer(columns, (False, False, True, True, False, False, True), rows), "table", console)


@app.command()
def ledger(
    failed: bool = typer.Option(False, "--failed", help="Only files that failed or were imported in part."),
) -> None:
    """List imported files (the import ledger): status, athlete, path, reason, when."""
    from retrostride.pipelines.sql_shell import render

    settings = _settings()
    where = "WHERE status IN ('failed', 'partial')" if failed else ""
    answer = _answer(
        settings,
        f"""
        SELECT strftime(imported_at, '%Y-%m-%d %H:%M') AS imported, status, athlete_id AS athlete, activities, path, reason
        FROM import_ledger {where} ORDER BY imported_at, path""",
    )
    if not answer.rows:
        console.print("No failed files." if failed else "Nothing imported yet.")
        return
    render(answer, "table", console)


@app.command()
def forget(
    file: str = typer.Argument(
        ...,
        help="The file's path as the ledger has it (see `retrostride ledger`), or its sha256 (a prefix of 8+ characters).",
    ),
) -> None:
    """Remove an imported file and its rows (activities, records, laps, segments, energy, body measurements); again: nothing happens."""
    from retrostride.pipelines.forgetting import forget_file

    settings = _settings(check=True)
    if not settings.catalog.exists() and not settings.legacy_warehouse.exists():
        console.print("Nothing imported yet: nothing to forget.")
        return
    try:
        forgotten = _with_status("forgetting", lambda status: forget_file(settings, file, status))
    except ValueError as error:
        _usage(str(error))
    if not forgotten.paths:
        console.print(f"Nothing to forget: no imported file is {escape(file)} (already forgotten?).", soft_wrap=True)
        return
    for path in forgotten.paths:
        console.print(f"Forgot {escape(path)}", soft_wrap=True, highlight=False)
    console.print(
        f"Removed {forgotten.activities} activities and {forgotten.body_measurements} body measurements; "
        f"republished {forgotten.months} month(s), the marts and the snapshot."
    )


#: The `--athlete` option of `backfill` and `reprocess`.
ATHLETES_HELP = (
    "Only this athlete's rows (repeat for more); every other athlete's are left as they are. Default: every athlete."
)


@app.command()
def backfill(
    start: str = typer.Option(..., "--start", help="First day (YYYY-MM-DD); its whole month is redone."),
    end: str = typer.Option(..., "--end", help="Last day (YYYY-MM-DD); its whole month is redone."),
    assets: list[str] = typer.Option(
        None, "--assets", help="Only these assets of the publish job (repeat or comma-separate). Default: all."
    ),
    athletes: list[str] = typer.Option(None, "--athlete", help=ATHLETES_HELP),
) -> None:
    """Re-run every stage for the months holding START..END, in one run, and say what changed."""
    from datetime import date

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as error:
        _usage(f"{error}: dates are YYYY-MM-DD")
    if last < first:
        _usage(f"--end {last} is before --start {first}")
    from retrostride.pipelines.backfills import activities_between, backfill_months
    from retrostride.pipelines.planning import month_end

    names = [n.strip() for a in (assets or []) for n in a.split(",") if n.strip()]
    settings = _settings(check=True)
    months = (
        f"{first:%Y-%m}" if (first.year, first.month) == (last.year, last.month) else f"{first:%Y-%m}..{last:%Y-%m}"
    )
    athletes = athletes or None
    found = activities_between(settings, first.replace(day=1), month_end(last.replace(day=1)), athletes)
    whose = f" of athletes {', '.join(athletes)}" if athletes else ""
    if not found:
        console.print(f"[yellow]No activities{whose} in {months} (the months of {first}..{last}): nothing to backfill.")
        return
    console.print(f"Backfilling {first}..{last}: the whole of {months}, {found} activities{whose}.")
    try:
        run = _with_status(
            f"backfill {months}",
            lambda status: backfill_months(settings, first, last, names, status, athletes=athletes),
        )
    except ValueError as error:
        _usage(str(error))
    _print_backfill(run)
    if not run.success:
        raise typer.Exit(FAILED)


@app.command()
def reprocess(athletes: list[str] = typer.Option(None, "--athlete", help=ATHLETES_HELP)) -> None:
    """Bring every month whose detection/energy rows are of an old model version (or missing) up to date."""
    from retrostride.pipelines.backfills import VERSIONED_TABLES, current_model_versions, stale_ranges
    from retrostride.pipelines.backfills import reprocess as reprocess_stale
    from retrostride.warehouse.store import Warehouse
    from retrostride.warehouse.versions import version_counts

    settings = _settings(check=True)
    athletes = athletes or None
    whose = f" of athletes {', '.join(athletes)}" if athletes else ""
    ranges = stale_ranges(settings, athletes=athletes)
    if not ranges:
        console.print(f"Nothing to reprocess: every month{whose} is of the current model version.")
        return
    console.print(
        f"Current model version: {', '.join(sorted(set(current_model_versions(settings).values())))}; "
        f"stale{whose}: {', '.join(f'{a:%Y-%m}..{b:%Y-%m}' for a, b in ranges)}"
    )
    runs = _with_status("reprocess", lambda status: reprocess_stale(settings, progress=status, athletes=athletes))
    for run in runs:
        _print_backfill(run)
    for table, counts in version_counts(Warehouse(settings.catalog), VERSIONED_TABLES).items():
        console.print(f"  {table}: " + ", ".join(f"{n} rows of {v}" for v, n in counts.items()))
    if not all(r.success for r in runs):
        raise typer.Exit(FAILED)


@app.command()
def migrate() -> None:
    """Bring an existing home up to date: a warehouse from before DuckLake (warehouse.duckdb) moved into the
    DuckLake (the old file stays, renamed), and columns added since, filled (laps and developer fields get their athlete)."""
    from retrostride.warehouse.migrate import ensure_migrated
    from retrostride.warehouse.store import Warehouse

    settings = _settings()
    done = ensure_migrated(settings.legacy_warehouse, settings.catalog)
    if done is not None:
        console.print(
            f"Migrated {sum(done.rows.values())} rows of {len(done.rows)} tables into {settings.catalog.metadata}; "
            f"the old file is kept as {done.kept_as}."
        )
    given = Warehouse(settings.catalog).ensure_schema() if settings.catalog.exists() else {}
    if given:
        console.print(
            "Partitioned by athlete now, each row given its activity's athlete: "
            + ", ".join(f"{table} ({rows} rows)" for table, rows in given.items())
        )
    if done is None and not given:
        console.print(
            f"Nothing to migrate: no {settings.legacy_warehouse}, and the warehouse ({settings.catalog.metadata})"
            " has every table and column."
        )


warm = typer.Typer(help="The home's warm import server, which `retrostride import` starts and hands its imports to.")
app.add_typer(warm, name="warm")


@warm.command("status")
def warm_status() -> None:
    """Say whether this home's warm import server is running (and its process), for this code and settings."""
    _tell_server(
        "status",
        "No warm import server for this home (the next `retrostride import` starts one).",
        "The warm import server is running: process {pid}.",
    )


@warm.command("stop")
def warm_stop() -> None:
    """Stop this home's warm import server (once the report its last import redraws is done)."""
    _tell_server("stop", "No warm import server was running.", "Stopped the warm import server (process {pid}).")


def _tell_server(kind: str, nobody: str, answered: str) -> None:
    """Send a `kind` request to the home's server and say what came of it (`answered` given its pid)."""
    from retrostride.pipelines.import_client import ServerGone, request

    try:
        answer = request(_settings(), {"kind": kind})
    except ServerGone:
        answer = None
    if answer is None:
        console.print(nobody)
    elif "stale" in answer:
        console.print("The warm import server was of other code or settings: it is exiting.")
    else:
        console.print(answered.format(pid=answer["pid"]))


@app.command()
def ui(port: int = typer.Option(3000, help="Port for the Dagster UI.")) -> None:
    """Open the Dagster UI (and daemon) on workspace.yaml."""
    import shutil

    from retrostride.pipelines.runs import instance_for

    settings = _settings(check=True)
    instance_for(settings)  # installs dagster.yaml into DAGSTER_HOME
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    os.execv(dagster, [dagster, "dev", "-w", str(REPO / "workspace.yaml"), "-p", str(port)])


def _usage(message: str):
    console.print(f"[red]{escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(USAGE)


def _settings(check: bool = False) -> Settings:
    """Settings from the environment; with `check`, every configuration file is read first, and an
    unusable one ends the command with its one-line reason (exit 2). A failed report redraw of the
    last served import is told here, once (on standard error)."""
    from retrostride.assets.settings import Settings
    from retrostride.pipelines.import_client import failed_redraw

    settings = Settings.from_env()
    if (failed := failed_redraw(settings)) is not None:
        Console(stderr=True).print(
            f"[yellow]warning:[/] the report's redraw after the last import failed: {escape(failed)}",
            soft_wrap=True,
            highlight=False,
        )
    if check:
        _check(settings)
    return settings


def _check(settings: Settings) -> None:
    """Every configuration file read now: an unusable one ends the command with its reason (exit 2)."""
    from retrostride.assets.settings import check_configuration

    try:
        check_configuration(settings)
    except ValueError as error:
        if not _is_config_error(error):
            raise
        _usage(str(error))


def _is_config_error(error: BaseException) -> bool:
    from retrostride.assets.settings import ConfigError

    return isinstance(error, ConfigError)


def _import(settings: Settings, targets: list, athlete: str | None, show: bool) -> ImportReport:
    """Import with a bar per stage (when `show`), then read what was found. A decoder process starts
    first, so it imports the decoders while this process loads Dagster and the code location."""
    from retrostride.connectors.ingest.supervisor import decoder_started_early

    with decoder_started_early(settings.workers):
        from retrostride.pipelines.import_summary import import_report
        from retrostride.pipelines.progress import StageBars
        from retrostride.pipelines.runs import import_paths
        from retrostride.warehouse.store import Warehouse

        with StageBars(console, show) as bars:
            import_paths(settings, targets, athlete, progress=bars)
    return import_report(Warehouse(settings.catalog), bars.outcomes)


def _served_import(settings: Settings, targets: list, athlete: str | None, show: bool) -> ImportReport | None:
    """The import done by the home's warm server (`pipelines.import_server`), drawn with the same bars;
    None when no server of this code and these settings answered (the caller imports in-process).
    A usage or run failure the server reports ends the command with its code and sentence."""
    from contextlib import ExitStack
    from types import SimpleNamespace

    from retrostride.pipelines.import_client import ServerGone, request
    from retrostride.pipelines.import_summary import ImportReport
    from retrostride.pipelines.progress import StageBars

    bars, drawn = StageBars(console, show), ExitStack()

    def relayed(event: dict) -> None:
        if not bars.drawing:  # the bars appear with the server's first event, not before it answers
            drawn.enter_context(bars)
        if "file" in event:
            bars.file_done(SimpleNamespace(path=event["file"][0], status=event["file"][1]))
        elif "note" in event:
            bars.note(event["note"])
        else:
            [(action, (stage, steps))] = event.items()
            getattr(bars, action)(stage, steps)

    message = {"kind": "import", "targets": [t if isinstance(t, str) else str(t.resolve()) for t in targets]}
    try:
        with drawn:
            answer = request(settings, {**message, "athlete": athlete}, relayed)
    except ServerGone as gone:
        console.print(f"[red]{gone}: run the import again (what it had not published, the next import publishes).")
        raise typer.Exit(FAILED) from None
    if answer is None or "stale" in answer:
        return None
    if "exit" in answer:
        (Console(stderr=True) if answer["exit"] == CRASHED else console).print(
            f"[red]{answer['message']}", soft_wrap=True, highlight=False
        )
        raise typer.Exit(answer["exit"])
    return ImportReport.from_json(answer["done"])


def _print_report(report: ImportReport) -> None:
    files = report.files
    console.print(
        f"[bold]{files['ok']} imported[/], {files['partial']} partial, {files['no_activity']} without an activity, "
        f"{files['skipped']} skipped as already imported, {files['duplicate']} identical copies, "
        f"{files['ignored']} hidden archive members ignored, [red]{files['failed']} failed[/]",
        highlight=False,
        soft_wrap=True,
    )
    if report.activities_by_sport:
        sports = ", ".join(f"{n} {sport}" for sport, n in report.activities_by_sport.items())
        console.print(
            f"Activities: {sports}; {report.first_day} to {report.last_day}; "
            f"athletes: {', '.join(report.athletes)}; {report.backward_minutes:g} backward minutes; "
            f"{report.duplicates_folded} duplicates folded across sources",
            highlight=False,
            soft_wrap=True,
        )
    for problem in report.problems:
        console.print(
            f"  [yellow]{problem['status']}[/] {escape(problem['path'])}: {escape(problem['reason'] or '')}",
            soft_wrap=True,
            highlight=False,
        )


def _with_status(title: str, work):
    """Run `work(progress)` under a spinner naming the asset being materialized."""
    with console.status(f"{title} …") as status:

        def progress(asset: str, what: str) -> None:
            status.update(f"{title}: {asset} {what}")

        return work(progress)


def _print_backfill(run) -> None:
    verdict = "[green]done[/]" if run.success else "[red]failed[/] (see the run in the UI; re-running it converges)"
    console.print(f"{run.first:%Y-%m}..{run.last:%Y-%m}, run {run.run_id[:8]}: {verdict}", highlight=False)
    for table, rows in run.rows.items():
        console.print(f"  {table}: {rows:,} rows replaced", highlight=False)
    if run.model_versions:
        console.print(f"  model version: {', '.join(sorted(run.model_versions))}", highlight=False)
    if run.success:
        console.print("  marts refreshed, snapshot published", highlight=False)


def _reading(settings: Settings, as_of: str | None = None):
    """What readers query: the warehouse's newest published snapshot, or the one `as_of` names (a
    home from before DuckLake is migrated first)."""
    from retrostride.warehouse.access import Reading

    if settings.legacy_warehouse.exists():  # (the migration needs Polars; a query does not)
        from retrostride.warehouse.migrate import ensure_migrated

        ensure_migrated(settings.legacy_warehouse, settings.catalog)
    if not settings.catalog.exists():
        _usage(f"No warehouse in {settings.home} yet: run `retrostride import` or `retrostride demo` first.")
    return Reading(settings.catalog, as_of)


def _answer(settings: Settings, query: str):
    from retrostride.pipelines.sql_shell import fetch_for
    from retrostride.warehouse.access import read_only_answer

    return read_only_answer(_reading(settings), query, fetch_for("table"))


def _print_query(settings: Settings, title: str, query: str) -> None:
    from retrostride.pipelines.sql_shell import render

    console.print(f"\n[bold]{title}")
    render(_answer(settings, query), "table", console)


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and the exceptions it wraps (Dagster's step errors hold the step's own as `user_exception`)."""
    chain = [error]
    while (
        inner := getattr(chain[-1], "user_exception", None) or chain[-1].__cause__ or chain[-1].__context__
    ) is not None and all(inner is not seen for seen in chain):
        chain.append(inner)
    return chain


def _root_cause(error: BaseException) -> BaseException:
    """The error that says what went wrong: the outermost not raised by Dagster itself."""
    chain = _chain(error)
    return next((e for e in chain if not type(e).__module__.startswith("dagster")), chain[-1])


def _where(error: BaseException) -> str:
    """' in <step>' when Dagster says which step failed, else ''."""
    import re

    found = (re.search(r'executing op "([^"]+)"', str(e)) for e in _chain(error))
    return next((f" in {f.group(1)}" for f in found if f), "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:300] if text else ''}".rstrip(": ")


def _log_traceback(error: BaseException) -> Path:
    """Write the full traceback under $RETROSTRIDE_HOME/logs (else the temp folder); returns the file."""
    import tempfile
    import traceback
    from datetime import datetime

    name = f"retrostride-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    text = f"retrostride {' '.join(sys.argv[1:])}\n\n" + "".join(traceback.format_exception(error))
    for folder in (Path(os.environ.get("RETROSTRIDE_HOME", "data")).resolve() / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
            return folder / name
        except OSError:
            continue
    return Path("(nowhere: the disk refused the log)")


@app.command()
def rebuild() -> None:
    """Recreate a damaged or lost warehouse from the lake and the ledger copies kept there, then publish everything."""
    from retrostride.pipelines.runs import rebuild as rebuild_home
    from retrostride.warehouse.rebuild import NoLedgerCopies

    settings = _settings()
    try:
        with console.status("rebuilding the warehouse from the lake …"):
            rebuilt, ranges = rebuild_home(settings)
    except NoLedgerCopies as error:
        console.print(f"[red]{escape(str(error))}")
        raise typer.Exit(1) from None
    if rebuilt.kept_aside is not None:
        console.print(f"The old warehouse file is kept as {escape(str(rebuilt.kept_aside))}.")
    console.print(
        f"[bold]{rebuilt.ledger_rows} ledger rows[/] recovered; "
        f"published {', '.join(f'{a:%Y-%m}..{b:%Y-%m}' for a, b in ranges) or 'nothing'}."
    )
