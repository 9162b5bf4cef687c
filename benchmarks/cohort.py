"""A cohort of generated athletes imported with 1 and with 2 runs at once, into the embedded default
(SQLite catalog, files under the home) and into PostgreSQL + a local S3 store (moto); then one new
file imported into a 1-year and into a 10-year warehouse, whose times should not differ by more than
the ratio 1.2 (nothing is copied: a publish costs what changed).

    python benchmarks/cohort.py [--athletes 4] [--years 1] [--long-years 10] [--workers 1] [--skip-shared]

Exports come from `benchmarks/ten_years.py` (generated once, cached in benchmarks/.cache/); each
import runs in a child process whose process tree is watched for peak memory.  With 2 runs at once
the athletes are split in two halves, imported by two processes into one home, with two slots in the
`warehouse` pool.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.servers import new_bucket, new_database, postgres_server, s3_server
from benchmarks.ten_years import FULL, export_for, run_import


def params(athletes: int, years: int) -> dict:
    return {**FULL, "athletes": athletes, "weeks": 52 * years, "start": f"{2025 - years}-01-06"}


@contextmanager
def environment(variables: dict[str, str]):
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def allow_runs(home: Path, runs: int, shared: dict[str, str]) -> None:
    """Give the home's Dagster instance `runs` slots in the warehouse pool (installing its dagster.yaml)."""
    from retrostride.assets.settings import Settings
    from retrostride.pipelines.runs import instance_for

    with environment({"RETROSTRIDE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster"), **shared}):
        instance = instance_for(Settings.from_env())
        instance.event_log_storage.set_concurrency_slots("warehouse", runs)
        instance.dispose()
    os.environ.pop("DAGSTER_HOME", None)


def import_cohort(export: Path, parallel: int, workers: int, shared: dict[str, str], home: Path) -> dict:
    """The export's athletes imported by `parallel` processes at once; wall time, records/s, peak memory."""
    athletes = sorted(p for p in export.iterdir() if p.is_dir())
    groups = []
    for i in range(parallel):  # a folder per run holding its athletes' folders: read like the inbox
        group = home.with_name(f"{home.name}-group{i}")
        for athlete in athletes[i::parallel]:
            shutil.copytree(athlete, group / athlete.name)
        groups.append(group)
    allow_runs(home, parallel, shared)
    with ThreadPoolExecutor(parallel) as pool:
        results = list(pool.map(lambda group: run_import(home, [group], workers, shared), groups))
    wall = max(r.process_s for r in results)
    records = warehouse_state(home, shared)["records"]  # each run's own count sees the other's files too
    return {
        "runs": parallel,
        "wall_s": round(wall, 1),
        "records": records,
        "records_per_s": round(records / wall),
        "peak_rss_mb": round(sum(r.peak_rss_mb for r in results)),
        "cpu_s": round(sum(r.cpu_s for r in results), 1),
    }


def one_new_file(years: int, workers: int, shared: dict[str, str], folder: Path) -> dict:
    """A one-athlete export of `years` imported, then its held-back file: the time of that one file."""
    export, held = export_for(params(1, years))
    home = folder / f"one-file-{years}y"
    bulk = run_import(home, [export], workers, shared)
    before = warehouse_state(home, shared)
    new = run_import(home, [held], workers, shared)
    after = warehouse_state(home, shared)
    return {
        "years": years,
        "bulk_s": round(bulk.wall_s, 1),
        "records": bulk.records,
        "bulk_peak_rss_mb": round(bulk.peak_rss_mb),
        "new_file_s": round(new.wall_s, 2),
        "new_file_process_s": round(new.process_s, 2),
        "new_file_cpu_s": round(new.cpu_s, 2),
        "steps": {k: round(v, 2) for k, v in new.steps.items()},
        "commits_per_new_file": after["snapshot"] - before["snapshot"],
        **{k: after[k] for k in ("data_files", "data_mb", "catalog_mb")},
    }


def warehouse_state(home: Path, shared: dict[str, str]) -> dict:
    """The newest snapshot id, the data files read and their size (the embedded catalog's size too)."""
    from retrostride.warehouse.catalog import Catalog
    from retrostride.warehouse.maintenance import data_files
    from retrostride.warehouse.store import Warehouse

    with environment(shared):
        catalog = Catalog.configured(home, shared.get("RETROSTRIDE_CATALOG", ""), shared.get("RETROSTRIDE_DATA", ""))
        warehouse = Warehouse(catalog)
        snapshot = int(warehouse.query("SELECT max(snapshot_id) AS s FROM ducklake_snapshots('warehouse')")["s"][0])
        size = sum(
            int(
                warehouse.query(
                    f"SELECT coalesce(sum(data_file_size_bytes), 0) AS b FROM ducklake_list_files('warehouse', '{t}')"
                )["b"][0]
            )
            for t in warehouse.tables
        )
        files = data_files(warehouse)
        records = int(
            warehouse.query(
                "SELECT coalesce(sum(records), 0) AS n FROM import_ledger WHERE status IN ('ok', 'partial')"
            )["n"][0]
        )
    catalog_mb = catalog.sqlite_file.stat().st_size / 2**20 if catalog.sqlite_file else None
    return {
        "snapshot": snapshot,
        "data_files": files,
        "data_mb": round(size / 2**20, 1),
        "records": records,
        "catalog_mb": None if catalog_mb is None else round(catalog_mb, 1),
    }


def shared_target(stack: ExitStack, name: str) -> dict[str, str]:
    """Catalog and Dagster storage in a PostgreSQL server, data in a bucket of a moto S3 server."""
    server = stack.enter_context(postgres_server())
    variables = stack.enter_context(s3_server())
    os.environ.update(variables)
    _, bucket = new_bucket("cohort")
    return {
        **variables,
        "RETROSTRIDE_CATALOG": new_database(server, f"{name}_catalog"),
        "RETROSTRIDE_DATA": f"s3://{bucket}/warehouse",
        "DAGSTER_POSTGRES_URL": new_database(server, f"{name}_dagster"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--athletes", type=int, default=4)
    parser.add_argument("--years", type=int, default=1)
    parser.add_argument("--long-years", type=int, default=10, help="the long history of the one-new-file comparison")
    parser.add_argument("--workers", type=int, default=1, help="decoder processes per run")
    parser.add_argument("--targets", default="embedded,shared", help="embedded, shared or both")
    parser.add_argument("--runs", default="1,2", help="runs at once to measure, comma-separated")
    parser.add_argument(
        "--parts", default="one-file,imports", help="one-file (1 vs 10 years), imports (the cohort), or both"
    )
    args = parser.parse_args()
    targets, runs, parts = args.targets.split(","), [int(n) for n in args.runs.split(",")], args.parts.split(",")
    from benchmarks.decode_corpus import machine

    export, _ = export_for(params(args.athletes, args.years))
    results: dict = {
        "machine": machine(),
        "load": os.getloadavg(),
        "cohort": f"{args.athletes} athletes × {args.years} years",
        "imports": [],
        "one_new_file": {},
    }
    with tempfile.TemporaryDirectory(prefix="retrostride-cohort-") as temporary:
        folder = Path(temporary)
        for target in targets if "one-file" in parts else ():
            with ExitStack() as stack:
                shared = shared_target(stack, f"{target}_one") if target == "shared" else {}
                short = one_new_file(args.years, args.workers, shared, folder / target)
                long = one_new_file(args.long_years, args.workers, shared, folder / target)
            results["one_new_file"][target] = {
                "short": short,
                "long": long,
                "ratio": round(long["new_file_s"] / short["new_file_s"], 2),
                "cpu_ratio": round(long["new_file_cpu_s"] / short["new_file_cpu_s"], 2),
            }
            print(json.dumps({"target": target, "one_new_file": results["one_new_file"][target]}), flush=True)
        for target in targets if "imports" in parts else ():
            for parallel in runs:
                with ExitStack() as stack:
                    shared = shared_target(stack, f"{target}_{parallel}") if target == "shared" else {}
                    outcome = import_cohort(export, parallel, args.workers, shared, folder / f"{target}-{parallel}")
                print(json.dumps({"target": target, **outcome}), flush=True)
                results["imports"].append({"target": target, **outcome})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
