"""An export goes to the same athlete zipped or unpacked (issue 16, class 8): an export's own folder
name is no athlete, the athlete folder it lies in is, and athletes.toml's `strava_athlete_id` claims
an export of that account wherever it lies.  Re-importing the other form adds nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from retrostride.connectors.sources import ExportOwners, expanded_sources
from retrostride.pipelines.runs import import_paths
from retrostride.warehouse.profiles import AthleteProfile
from retrostride.warehouse.store import Warehouse
from tests.conftest import settings_for
from tests.exports import strava_export


@pytest.fixture(scope="module")
def both_forms(tmp_path_factory) -> tuple[Path, Path]:
    """The same Strava export zipped and unpacked (its profile.csv names Strava athlete 42)."""
    root = tmp_path_factory.mktemp("forms")
    zipped = strava_export(root / "z", zipped=True, weeks=1).path
    unpacked = strava_export(root / "u", zipped=False, weeks=1).path
    return zipped, unpacked


def _athletes(paths: list[Path], tmp_path: Path, athlete: str | None = None, **profiles: str) -> set[str]:
    owners = ExportOwners.of({a: AthleteProfile(a, strava_athlete_id=i or None) for a, i in profiles.items()})
    with expanded_sources(paths, athlete, tmp_path / "staging", owners=owners) as files:
        return {f.athlete_id for f in files if f.refusal is None and f.ignored is None}


def _placed(form: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / form.name
    (shutil.copytree if form.is_dir() else shutil.copy)(form, copy)
    return copy


@pytest.mark.parametrize("where", ["", "bob"])
def test_zipped_and_unpacked_exports_in_a_folder_go_to_the_same_athlete(both_forms, tmp_path, where):
    expected = {where or "default"}
    for form in both_forms:
        inbox = tmp_path / form.suffix.lstrip(".") / "inbox"
        _placed(form, inbox / where)
        assert _athletes([inbox], tmp_path) == expected, form.name


def test_an_export_folder_named_like_a_configured_athlete_is_theirs(both_forms, tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(both_forms[1], inbox / "alice")
    assert _athletes([inbox], tmp_path, alice="") == {"alice"}  # no account needed: the folder names her
    assert _athletes([inbox], tmp_path, carol="") == {"default"}  # not a configured athlete: the export's own name


def test_athletes_toml_claims_an_export_of_its_strava_account_wherever_it_lies(both_forms, tmp_path):
    zipped, unpacked = both_forms
    inbox = tmp_path / "inbox"
    _placed(zipped, inbox / "bob")
    _placed(unpacked, inbox)
    assert _athletes([inbox], tmp_path, alice="42") == {"alice"}
    assert _athletes([zipped], tmp_path, athlete="bob", alice="42") == {"alice"}  # the mapping wins
    assert _athletes([zipped], tmp_path, athlete="bob", alice="7") == {"bob"}  # another account: not hers


@pytest.mark.parametrize("first", ["zipped", "unpacked"])
def test_importing_the_other_form_of_an_export_adds_nothing(both_forms, tmp_path, first):
    zipped, unpacked = both_forms
    inbox = tmp_path / "inbox"
    order = [zipped, unpacked] if first == "zipped" else [unpacked, zipped]
    settings = settings_for(tmp_path)
    with dg.instance_for_test() as instance:
        counts = []
        for form in order:
            import_paths(settings, [_placed(form, inbox)], instance=instance)
            counts.append(
                Warehouse(settings.catalog)
                .query("SELECT athlete_id, count(*) AS n, count(duplicate_of) AS folded FROM activities GROUP BY 1")
                .rows()
            )
        import_paths(settings, [inbox], instance=instance)  # both forms at once: nothing new either
        again = Warehouse(settings.catalog).query("SELECT athlete_id, count(*) FROM activities GROUP BY 1")
    [(athlete, activities, folded)] = counts[0]
    assert athlete == "default" and activities > 0 and folded == 0
    assert counts[1] == counts[0] and again.rows() == [(athlete, activities)]
