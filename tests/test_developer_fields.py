"""Developer fields (issue 16, class 9): values of Stryd, Connect IQ and running-dynamics fields are
kept in `developer_fields` (activity, time, app, field, units, value), published with the activity.

The fixture is a real Fenix 2 run from the corpus written again with the FIT SDK encoder, its
records carrying two developer fields of one app; the corpus files that carry developer data are
checked too."""

from __future__ import annotations

import uuid
from pathlib import Path

import dagster as dg
import fitparse
import polars as pl
import pytest
from fitparse.records import DevFieldDefinition
from garmin_fit_sdk import FIT_EPOCH_S, Profile

from retrostride.connectors.fit_columnar import decode_fit_columnar
from retrostride.pipelines.runs import import_paths
from retrostride.warehouse.store import Warehouse
from tests.conftest import CORPORA, settings_for
from tests.fit_mutations import rewrite_fit

RUN = CORPORA / "fit" / "python-fitparse" / "activity-small-fenix2-run.fit"
APP = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
DEVELOPER = {"developer_data_index": 0, "application_id": list(APP.bytes), "application_version": 3}
FIELDS = {
    0: ("Power", "Watts", 0x84),  # uint16
    1: ("Leg Spring Stiffness", "KN/m", 0x88),  # float32
}
#: Corpus files whose records carry developer fields: (file, fields, apps as the table names them).
CORPUS = [
    ("python-fitparse/developer-types-sample.fit", 4, {"developer 0"}),  # Stryd: an all-zero application id
    ("python-fitparse/20170518-191602-1740899583.fit", 5, {"2fc7c56b-f7f8-4fc4-b92e-8d3bde99f693"}),
    ("fitdecode/garmin-fr935-cr.fit", 2, {"f76d747c-0ac8-4afe-afb3-4c497d8a3839"}),
]


def _power(seconds: int) -> int:
    return 200 + seconds % 50


def _stiffness(seconds: int) -> float:
    return 9.5 + (seconds % 7) / 4


@pytest.fixture(scope="module")
def run_with_developer_fields(tmp_path_factory) -> Path:
    descriptions = {
        key: {
            "developer_data_id_mesg": DEVELOPER,
            "field_description_mesg": {
                "developer_data_index": 0,
                "field_definition_number": key,
                "fit_base_type_id": base,
                "field_name": name,
                "units": units,
                "native_mesg_num": Profile["mesg_num"]["RECORD"],
            },
        }
        for key, (name, units, base) in FIELDS.items()
    }

    def add_fields(number: int, fields: dict) -> dict:
        if number == Profile["mesg_num"]["RECORD"] and "timestamp" in fields:
            fields["developer_fields"] = {0: _power(fields["timestamp"]), 1: _stiffness(fields["timestamp"])}
        return fields

    target = tmp_path_factory.mktemp("developer") / "stryd-run.fit"
    return rewrite_fit(RUN, target, add_fields, descriptions)


def test_the_decoder_keeps_every_developer_value_with_its_app_field_and_units(run_with_developer_fields):
    decoded = decode_fit_columnar(run_with_developer_fields)
    values = decoded.developer_fields
    assert decoded.records.height > 1000
    assert values.height == 2 * decoded.records.height  # every record carries both fields
    assert set(values["developer_app"]) == {str(APP)}
    assert set(values.select("field", "units").iter_rows()) == {(n, u) for n, u, _ in FIELDS.values()}
    power, stiffness = (values.filter(pl.col("field") == name) for name in ("Power", "Leg Spring Stiffness"))
    assert power["value"].to_list() == [float(_power(s)) for s in _fit_seconds(power)]
    assert stiffness["value"].to_list() == pytest.approx([_stiffness(s) for s in _fit_seconds(stiffness)], abs=1e-5)
    assert set(values["session"]) == {0}


def _fit_seconds(values: pl.DataFrame) -> list[int]:
    return (values["ts"].dt.epoch("s") - FIT_EPOCH_S).to_list()


@pytest.mark.parametrize(("name", "fields", "apps"), CORPUS)
def test_corpus_files_keep_as_many_developer_values_as_fitparse_reads(name, fields, apps):
    path = CORPORA / "fit" / name
    numbers = [
        f
        for m in fitparse.FitFile(str(path), check_crc=False).get_messages("record")
        for f in m.fields
        if isinstance(f.field_def, DevFieldDefinition) and isinstance(f.value, int | float)
    ]
    values = decode_fit_columnar(path).developer_fields
    assert values.height == len(numbers) > 0
    assert values["field"].n_unique() == fields and set(values["developer_app"]) == apps
    assert values["value"].sum() == pytest.approx(sum(f.value for f in numbers))


def test_developer_fields_are_published_with_their_activity_and_reimport_changes_nothing(
    run_with_developer_fields, tmp_path
):
    settings = settings_for(tmp_path)
    with dg.instance_for_test() as instance:
        import_paths(settings, [run_with_developer_fields], athlete="alice", instance=instance)
        warehouse = Warehouse(settings.catalog)
        query = (
            "SELECT a.athlete_id, d.developer_app, d.field, d.units, count(*) AS n, "
            "count(*) FILTER (WHERE d.ts BETWEEN a.start_ts AND a.end_ts) AS within "
            "FROM developer_fields d JOIN activities a USING (activity_id) GROUP BY ALL ORDER BY d.field"
        )
        first = warehouse.query(query)
        records = warehouse.query("SELECT count(DISTINCT ts) AS n FROM records")["n"][0]
        import_paths(settings, [run_with_developer_fields], athlete="alice", instance=instance)
        assert warehouse.query(query).equals(first)
    assert first.select("athlete_id", "developer_app", "field", "units").rows() == [
        ("alice", str(APP), "Leg Spring Stiffness", "KN/m"),
        ("alice", str(APP), "Power", "Watts"),
    ]
    assert first["n"].to_list() == first["within"].to_list() and all(n >= records for n in first["n"])
