"""A platform's sport types an activity whose file stated none, also when the export comes after the
file was imported and typed from its samples (issue 16, class 3)."""

from __future__ import annotations

import polars as pl

from retrostride.connectors.platform_labels import PlatformLabels, label_activities, write_labels
from retrostride.warehouse.schema import ACTIVITIES, conform


def test_a_platform_sport_types_an_activity_the_file_left_generic(tmp_path):
    table = write_labels(
        pl.DataFrame(
            {
                "file": ["activities/1.fit"],
                "sport": ["cycling"],
                "name": ["Evening ride"],
                "platform": ["strava"],
                "platform_activity_id": ["42"],
            }
        ),
        tmp_path,
        "export",
    )
    lake = conform(
        pl.DataFrame(
            {
                "session": [0, 1],
                "sport": ["generic", "running"],
                "name": [None, None],
                "activity_type": ["running", "running"],
                "activity_type_basis": [
                    "median moving speed 4.1 m/s, 95th percentile 6.0 m/s",
                    "the file's sport (running)",
                ],
            }
        ),
        ACTIVITIES,
    ).with_columns(pl.Series("session", [0, 1], pl.Int32))
    labelled = label_activities(lake, PlatformLabels(table, file="activities/1.fit"))
    assert labelled["sport"].to_list() == ["cycling", "running"]  # a sport the file states wins
    assert labelled["activity_type"].to_list() == ["cycling", "running"]
    assert labelled["activity_type_basis"].to_list() == ["the platform's sport (cycling)", "the file's sport (running)"]
