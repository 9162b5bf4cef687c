"""Athletes in parallel on the embedded default (no server): two processes import two athletes into
one home at once, each publishing only its own athlete's partition; their warehouse steps run at the
same time (the shipped pool has 2 slots), both commit, nothing is lost, and the warehouse is the one
a single import of both gives."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from benchmarks.checksum import differences, table_checksums
from retrostride.pipelines.runs import import_paths, instance_for
from retrostride.pipelines.sample_export import generate_export
from retrostride.warehouse.store import Warehouse
from tests.conftest import settings_for

RETROSTRIDE = str(Path(sys.executable).with_name("retrostride"))


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    generate_export(root / "export", seed=9, athletes=2, weeks=3, start=date(2024, 5, 6))
    return root / "export"


#: The steps of `import_files` in the `warehouse` pool.
WAREHOUSE_STEPS = ("import_new_files", "publish_months", "refresh_marts_and_snapshot")


def installed_instance(settings) -> tuple[str, int]:
    """The home's Dagster instance as the CLI installs it (the shipped dagster.yaml): the run
    storage's class and the slots of the `warehouse` pool."""
    instance = instance_for(settings)
    os.environ.pop("DAGSTER_HOME", None)  # instance_for sets it for this process; the children get theirs
    slots = instance.event_log_storage.get_concurrency_info("warehouse").slot_count
    storage = type(instance.run_storage).__name__
    instance.dispose()
    return storage, slots


def warehouse_steps(instance: dg.DagsterInstance, run_id: str) -> list[tuple[float, float]]:
    """(start, end) of each of the run's steps in the `warehouse` pool, from its event log."""
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
    times: dict[str, list[float]] = {}
    for event in instance.all_logs(run_id, of_type=kinds):
        if event.step_key in WAREHOUSE_STEPS:
            times.setdefault(event.step_key, []).append(event.timestamp)
    return [(min(stamps), max(stamps)) for stamps in times.values()]


def import_each_athlete_at_once(env: dict[str, str], export: Path, athletes: list[str]) -> None:
    """`retrostride import export/<athlete> --athlete <athlete>` for each athlete, in processes of their own at once."""
    processes = [
        subprocess.Popen(
            [RETROSTRIDE, "import", str(export / athlete), "--athlete", athlete],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for athlete in athletes
    ]
    outputs = [p.communicate(timeout=900)[0] for p in processes]
    assert [p.returncode for p in processes] == [0] * len(athletes), outputs


def test_two_processes_import_two_athletes_at_once_and_lose_nothing(export, tmp_path):
    athletes = sorted(p.name for p in export.iterdir() if p.is_dir())
    assert len(athletes) == 2
    alone = settings_for(tmp_path / "alone")
    with dg.instance_for_test() as instance:
        import_paths(alone, [export], instance=instance)

    together = settings_for(tmp_path / "together")
    env = {
        **os.environ,
        "RETROSTRIDE_HOME": str(together.home),
        "RETROSTRIDE_INBOX": str(together.inbox),
        "DAGSTER_HOME": str(together.dagster_home),
        "RETROSTRIDE_WORKERS": "1",
    }
    assert installed_instance(together)[1] == 2  # the shipped default: two warehouse steps at once
    import_each_athlete_at_once(env, export, athletes)

    instance = dg.DagsterInstance.from_config(str(together.dagster_home))
    try:
        runs = [record.dagster_run.run_id for record in instance.get_run_records()]
        steps = [warehouse_steps(instance, run_id) for run_id in runs]
    finally:
        instance.dispose()
    assert len(runs) == 2 and all(len(s) == len(WAREHOUSE_STEPS) for s in steps), steps
    overlapping = [(a, b) for a in steps[0] for b in steps[1] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, f"the two runs' warehouse steps took turns: {steps}"  # they ran at the same time

    warehouse = Warehouse(together.catalog)
    assert differences(table_checksums(Warehouse(alone.catalog)), table_checksums(warehouse)) == []
    assert warehouse.query("SELECT count(*) AS n FROM pending_days")["n"][0] == 0
    noted = warehouse.query(
        "SELECT athlete_id, count(*) FILTER (WHERE published_snapshot IS NULL) AS unnoted, count(*) AS files"
        " FROM import_ledger WHERE status IN ('ok', 'partial') GROUP BY 1 ORDER BY 1"
    )
    assert noted["athlete_id"].to_list() == athletes and noted["unnoted"].to_list() == [0, 0]
    assert all(n > 0 for n in noted["files"])
