"""Shared fixtures: the real corpora, a temporary RETROSTRIDE_HOME, and one corpus import per session."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from benchmarks.corpora import CORPORA, CorpusFile, corpus_files  # noqa: F401 (fixtures' and tests' shared names)
from retrostride.assets.settings import Settings
from retrostride.pipelines.runs import import_paths
from retrostride.pipelines.sample_export import ExportTruth, generate_export
from retrostride.warehouse.store import Warehouse

os.environ["RETROSTRIDE_WARM_IDLE_S"] = (
    "0"  # no warm import servers left behind (tests/test_warm_import.py turns them on)
)

pytest_plugins = ["tests.servers"]  # postgres_url, s3_endpoint: real servers the tests start


def settings_for(home: Path, settle_s: float = 0.0) -> Settings:
    """Settings of a home under `home`; sensors decide tick by tick (no settling within a tick) unless asked."""
    return Settings(
        home=home / "data",
        inbox=home / "inbox",
        athletes_file=home / "data" / "athletes.toml",
        workers=1,
        settle_s=settle_s,
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def instance() -> dg.DagsterInstance:
    with dg.instance_for_test() as test_instance:
        yield test_instance


@dataclass
class ImportedCorpus:
    settings: Settings
    ranges: list
    warehouse: Warehouse


def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], object]
) -> tuple[Path, object]:
    """`build(folder)`'s folder and result, built once per test run: under pytest-xdist (`make test`) the
    first worker to ask builds it in a folder every worker of the run shares, the others wait and
    read it (copy what you change: `copied_home`)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        return folder, build(folder)
    shared = tmp_path_factory.getbasetemp().parent / name  # the run's own folder, above each worker's
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = shared / "result.pickle"
        if not result.exists():
            result.write_bytes(pickle.dumps(build(shared / "built")))
        return shared / "built", pickle.loads(result.read_bytes())


def imported_home(built: Path, tmp_path_factory: pytest.TempPathFactory, name: str) -> Settings:
    """The settings of a home `built_once` imported: that home under plain pytest; a copy of this worker's
    own under pytest-xdist, so that workers never share a warehouse."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return settings_for(built)
    return copied_home(settings_for(built), tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def imported_corpus(tmp_path_factory: pytest.TempPathFactory) -> ImportedCorpus:
    """Every FIT, GPX and TCX corpus file imported once, through Dagster, as athlete 'corpus'."""
    if not CORPORA.exists():
        pytest.skip(f"corpora not found at {CORPORA}")

    def build(folder: Path) -> list:
        files = [f.path for f in corpus_files() if f.format in ("fit", "gpx", "tcx")]
        with dg.instance_for_test() as instance:
            return import_paths(settings_for(folder), files, athlete="corpus", instance=instance)

    built, ranges = built_once(tmp_path_factory, "corpus", build)
    settings = imported_home(built, tmp_path_factory, "corpus")
    return ImportedCorpus(settings, ranges, Warehouse(settings.catalog))


@dataclass
class ImportedExport:
    root: Path
    truth: ExportTruth
    settings: Settings
    warehouse: Warehouse


@pytest.fixture(scope="session")
def imported_export(tmp_path_factory: pytest.TempPathFactory) -> ImportedExport:
    """A generated export (3 athletes × 3 weeks across a month boundary) imported through Dagster.
    Read-only: a test that changes the warehouse works on a copy (`copied_home`)."""

    def build(root: Path) -> ExportTruth:
        truth = generate_export(root / "export", seed=11, athletes=3, weeks=3, start=date(2024, 1, 22))
        settings = settings_for(root)
        settings.athletes_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "export.truth" / "athletes.toml", settings.athletes_file)
        with dg.instance_for_test() as instance:
            import_paths(settings, [root / "export"], instance=instance)
        return truth

    root, truth = built_once(tmp_path_factory, "export", build)
    settings = imported_home(root, tmp_path_factory, "export")
    return ImportedExport(root, truth, settings, Warehouse(settings.catalog))


def copied_home(imported: ImportedExport | Settings, into: Path) -> Settings:
    """Settings for a copy of an imported home, to change without touching the original."""
    source = imported if isinstance(imported, Settings) else imported.settings
    settings = settings_for(into)
    shutil.copytree(source.home, settings.home)
    return settings
