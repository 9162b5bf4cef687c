"""An object-store prefix imports like a folder, against a local S3-compatible server (moto) that the
tests start on a free port of this machine: athletes from the key's first folder, exports and zips
expanded under the same limits, `s3://bucket/key` in the ledger, re-imports changing nothing, and a
missing bucket explained in a sentence."""

from __future__ import annotations

import gzip
import uuid
from dataclasses import replace
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from typer.testing import CliRunner

from benchmarks.checksum import differences, table_checksums
from benchmarks.servers import free_port as _free_port
from benchmarks.servers import new_bucket as _bucket
from retrostride.assets.settings import parse_watch
from retrostride.connectors.limits import IntakeLimits
from retrostride.connectors.object_store import ObjectStoreError
from retrostride.connectors.sources import expanded_sources
from retrostride.pipelines.cli import app
from retrostride.pipelines.definitions import build_definitions
from retrostride.pipelines.runs import import_paths
from retrostride.pipelines.sample_export import generate_export
from retrostride.pipelines.schedules import nightly_run_config
from retrostride.warehouse.store import Warehouse
from tests.conftest import settings_for
from tests.exports import strava_export

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BROKEN_FIT = (
    b"\x0e\x10\x98\x00\x20\x00\x00\x00.FIT" + b"\x00" * 12
)  # a FIT header promising 32 bytes that are not there


def _upload_tree(client, bucket: str, prefix: str, folder: Path) -> list[str]:
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = f"{prefix}{path.relative_to(folder).as_posix()}"
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        keys.append(key)
    return keys


@pytest.fixture(scope="module")
def history(s3_endpoint, tmp_path_factory):
    """`s3://<bucket>/history/`: two athletes' folders of generated runs and weigh-ins, a corrupt FIT
    file, a Strava export zip in carol's folder, a gzipped run directly under the prefix, and things
    to leave alone (a hidden object, a folder marker); imported once through Dagster."""
    root = tmp_path_factory.mktemp("s3history")
    client, bucket = _bucket()
    truth = generate_export(root / "generated", seed=11, athletes=2, weeks=1)
    loose = _upload_tree(client, bucket, "history/", root / "generated")
    client.put_object(Bucket=bucket, Key="history/alice/broken.fit", Body=BROKEN_FIT)
    export = strava_export(root / "strava", weeks=1)
    client.put_object(Bucket=bucket, Key="history/carol/export_4242.zip", Body=export.path.read_bytes())
    other = generate_export(root / "other", seed=12, athletes=1, weeks=1)
    run = root / "other" / other.activities["file"][0]
    client.put_object(
        Bucket=bucket, Key=f"history/morning{run.suffix}.gz", Body=gzip.compress(run.read_bytes(), mtime=0)
    )
    client.put_object(Bucket=bucket, Key="history/alice/.DS_Store", Body=b"\x00\x00\x00\x01Bud1")
    client.put_object(Bucket=bucket, Key="history/empty/", Body=b"")
    settings = settings_for(root)
    url = f"s3://{bucket}/history"
    with dg.instance_for_test() as instance:
        import_paths(settings, [url], instance=instance)
        yield dict(
            url=url,
            bucket=bucket,
            client=client,
            settings=settings,
            instance=instance,
            truth=truth,
            loose=loose,
            export=export,
            warehouse=Warehouse(settings.catalog),
        )


def test_a_prefix_imports_like_a_folder_with_athletes_from_its_folders(history):
    warehouse, bucket = history["warehouse"], history["bucket"]
    ledger = warehouse.query("SELECT path, athlete_id, status, reason FROM import_ledger ORDER BY path")
    assert all(p.startswith(f"s3://{bucket}/history/") for p in ledger["path"])
    by_path = {row["path"]: row for row in ledger.rows(named=True)}
    for key in history["loose"]:  # every generated file, as its own object, for the athlete of its folder
        assert by_path[f"s3://{bucket}/{key}"]["status"] == "ok"
        assert by_path[f"s3://{bucket}/{key}"]["athlete_id"] == key.split("/")[1]
    [morning] = [p for p in by_path if p.startswith(f"s3://{bucket}/history/morning.")]
    assert by_path[morning]["athlete_id"] == "default" and by_path[morning]["status"] == "ok"
    members = ledger.filter(pl.col("path").str.starts_with(f"s3://{bucket}/history/carol/export_4242.zip!"))
    assert set(members["athlete_id"]) == {"carol"} and set(members["status"]) == {"ok"}
    assert {"activities.csv", "profile.csv", "privacy_zones.csv"} <= {p.split("!", 1)[1] for p in members["path"]}
    assert not any(".DS_Store" in p or p.endswith("/") for p in ledger["path"])
    activities = warehouse.query("SELECT athlete_id, count(*) AS n FROM activities GROUP BY 1 ORDER BY 1")
    truth = history["truth"].activities
    expected = {a: n for a, n in truth.group_by("athlete_id").len().iter_rows()}
    got = dict(activities.iter_rows())
    assert got["alice"] == expected["alice"] and got["bruno"] == expected["bruno"]
    assert got["carol"] == history["export"].files + 1  # the export's files and its manual entry
    assert got["default"] == 1
    assert len(ledger) == len(history["loose"]) + 1 + len(members) + 1


def test_a_corrupt_object_is_failed_with_its_reason_and_quarantined(history):
    warehouse, settings = history["warehouse"], history["settings"]
    failed = warehouse.query("SELECT path, reason FROM import_ledger WHERE status = 'failed'")
    assert failed["path"].to_list() == [f"s3://{history['bucket']}/history/alice/broken.fit"]
    assert "FIT" in failed["reason"][0]
    quarantined = [p.name for p in (settings.home / "quarantine").iterdir()]
    assert any(name.endswith("broken.fit") for name in quarantined)
    assert any(name.endswith("broken.fit.reason.txt") for name in quarantined)


def test_the_export_under_a_prefix_names_its_activities(history):
    names = history["warehouse"].query("SELECT name FROM activities WHERE athlete_id = 'carol' ORDER BY name")["name"]
    assert sorted(names.to_list()) == sorted(history["export"].activities["name"].to_list())


def test_reimporting_a_prefix_changes_nothing(history):
    warehouse, settings = history["warehouse"], history["settings"]
    before = table_checksums(warehouse)
    assert import_paths(settings, [history["url"]], instance=history["instance"]) == []
    assert differences(before, table_checksums(warehouse)) == []
    assert not any((settings.home / "staging").iterdir())  # downloaded objects are cleaned up


def test_a_missing_bucket_is_named_in_a_sentence_and_the_warehouse_is_untouched(history, monkeypatch):
    settings = history["settings"]
    monkeypatch.setenv("RETROSTRIDE_HOME", str(settings.home))
    monkeypatch.setenv("DAGSTER_HOME", str(settings.home.parent / "dagster-cli"))
    monkeypatch.setenv("RETROSTRIDE_WORKERS", "1")
    before = table_checksums(history["warehouse"])
    result = CliRunner().invoke(app, ["import", "s3://no-such-bucket-here/history"])
    assert result.exit_code == 2, result.output
    assert "no-such-bucket-here" in result.output and "there is no bucket" in result.output
    assert "Traceback" not in result.output
    assert differences(before, table_checksums(history["warehouse"])) == []


def test_a_missing_bucket_fails_the_dagster_run_with_the_same_sentence(s3_endpoint, tmp_path):
    settings = settings_for(tmp_path)
    with (
        dg.instance_for_test() as instance,
        pytest.raises(ObjectStoreError, match="cannot list s3://nowhere-.*: there is no bucket 'nowhere-"),
    ):
        import_paths(settings, [f"s3://nowhere-{uuid.uuid4().hex[:8]}/x"], instance=instance)


def test_an_unreachable_store_is_explained(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ObjectStoreError, match="cannot reach the store of bucket 'somewhere'"):
        with expanded_sources(["s3://somewhere/x"], None, tmp_path / "staging"):
            pass


def test_objects_over_the_size_limit_are_refused_without_downloading_them(s3_endpoint, tmp_path):
    client, bucket = _bucket()
    client.put_object(Bucket=bucket, Key="in/big.fit", Body=b"\x0e" * 5000)
    client.put_object(Bucket=bucket, Key="in/small.fit", Body=b"\x0e" * 100)
    with expanded_sources(
        [f"s3://{bucket}/in/"], None, tmp_path / "staging", IntakeLimits(max_file_bytes=1000)
    ) as files:
        by_name = {f.ledger_path.rsplit("/", 1)[1]: f for f in files}
        assert by_name["big.fit"].refusal.startswith("refused: file is 5000 bytes, over the 1000-byte limit")
        assert by_name["small.fit"].refusal is None and by_name["small.fit"].path.stat().st_size == 100
        assert {f.athlete_id for f in files} == {"default"}


def test_an_unpacked_export_and_a_single_object_are_read_like_local_ones(s3_endpoint, tmp_path):
    client, bucket = _bucket()
    export = strava_export(tmp_path, language="de", zipped=False, weeks=1)
    _upload_tree(client, bucket, "dora/export_4242/", export.path)
    with expanded_sources([f"s3://{bucket}"], None, tmp_path / "staging") as files:
        origins = {f.ledger_path: f for f in files}
        assert {f.athlete_id for f in files} == {"dora"}
        assert f"s3://{bucket}/dora/export_4242/activities.csv" in origins
        assert not any("media/photo.jpg" in o for o in origins)  # the export's other files are left alone
        fit = next(f for o, f in origins.items() if o.endswith("activities/11000.fit.gz"))
        assert fit.labels is not None and fit.refusal is None
    key = "dora/export_4242/activities/11000.fit.gz"
    with expanded_sources([f"s3://{bucket}/{key}"], "erin", tmp_path / "staging") as files:
        assert [(f.ledger_path, f.athlete_id, f.refusal) for f in files] == [(f"s3://{bucket}/{key}", "erin", None)]


def test_a_watched_prefix_is_imported_by_its_sensor_and_the_nightly_run(s3_endpoint, tmp_path):
    client, bucket = _bucket()
    truth = generate_export(tmp_path / "generated", seed=11, athletes=1, weeks=1)
    run = tmp_path / "generated" / truth.activities.filter(pl.col("format") == "fit")["file"][0]
    client.put_object(Bucket=bucket, Key="sync/ann/run.fit", Body=run.read_bytes())
    settings = replace(settings_for(tmp_path), watch=parse_watch(f"s3://{bucket}/sync, s3://no-such-bucket-here/x"))
    assert [s.name for s in settings.watch] == ["watch_sync", "watch_x"]
    assert nightly_run_config(settings)["ops"]["import_new_files"]["config"]["sources"][f"s3://{bucket}/sync"] == ""
    defs = build_definitions(settings)
    with dg.instance_for_test() as instance:
        sensor, cursor, requests = defs.resolve_sensor_def("watch_sync_sensor"), None, []
        for _ in range(3):  # new, then stable: imported once
            data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
            cursor, requests = data.cursor, requests + list(data.run_requests or [])
        [request] = requests
        assert request.run_config["ops"]["import_new_files"]["config"]["sources"] == {
            f"s3://{bucket}/sync/ann/run.fit": "ann"
        }
        defs.resolve_job_def("import_files").execute_in_process(run_config=request.run_config, instance=instance)
        missing = defs.resolve_sensor_def("watch_x_sensor").evaluate_tick(
            dg.build_sensor_context(instance=instance, definitions=defs)
        )
        assert not missing.run_requests and "there is no bucket 'no-such-bucket-here'" in missing.skip_message
    ledger = Warehouse(settings.catalog).query("SELECT path, athlete_id, status FROM import_ledger")
    assert ledger.rows() == [(f"s3://{bucket}/sync/ann/run.fit", "ann", "ok")]
