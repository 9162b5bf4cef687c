"""docs/warehouse.md is the warehouse's contract: every table, mart and column, and queries that run."""

from datetime import UTC, date, datetime

import duckdb
import pytest

from benchmarks.warehouse_docs import DOCS, documented_columns, example_queries
from retrostride.warehouse.catalog import extension_file
from retrostride.warehouse.store import Warehouse
from tests.test_marts import Builder


def test_the_docs_describe_exactly_the_warehouses_tables_and_columns(tmp_path):
    warehouse = Warehouse.embedded(tmp_path)
    warehouse.ensure_schema()
    actual = warehouse.query(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
    )
    in_warehouse = {(t, c, ty) for t, c, ty in actual.iter_rows()}
    in_docs = {(t, c, ty) for t, columns in documented_columns().items() for c, ty in columns}
    assert sorted(in_warehouse - in_docs) == [], "in the warehouse but not (or with another type) in docs/warehouse.md"
    assert sorted(in_docs - in_warehouse) == [], "in docs/warehouse.md but not in the warehouse"


@pytest.fixture(scope="module")
def small_history(tmp_path_factory) -> Warehouse:
    build = Builder(Warehouse.embedded(tmp_path_factory.mktemp("docs")))
    for day in range(1, 29):
        build.backward_run("ann", date(2024, 2, day))
    build.weighing("ann", datetime(2024, 1, 29, 6, tzinfo=UTC), 60.0, 25.0)
    build.weighing("ann", datetime(2024, 3, 11, 6, tzinfo=UTC), 59.5, 24.6)
    build.backward_run("ann", date(2024, 3, 12))
    return build.build()


@pytest.mark.parametrize("title", list(example_queries()))
def test_every_example_query_in_the_docs_runs_and_answers(small_history, title):
    answer = small_history.query(example_queries()[title])
    assert len(answer) > 0, title


def test_the_docs_attach_line_opens_the_warehouse_read_only_in_plain_duckdb(small_history):
    """The ATTACH line for the DuckDB CLI and notebooks, run as written (the home's path for `data/`)."""
    home = small_history.catalog.sqlite_file.parent
    text = DOCS.read_text(encoding="utf-8")
    [attach] = [
        line
        for line in text.splitlines()
        if line.startswith("ATTACH 'ducklake:sqlite:data/catalog.sqlite' AS warehouse")
    ]
    connection = duckdb.connect()
    for name in ("ducklake", "sqlite_scanner"):
        connection.execute(f"LOAD '{extension_file(name)}'")
    connection.execute(attach.replace("data/", f"{home}/"))
    connection.execute("USE warehouse")
    assert connection.execute("SELECT count(*) FROM activities").fetchone()[0] > 0
    with pytest.raises(duckdb.Error, match="read-only|read only"):
        connection.execute("DELETE FROM activities")
