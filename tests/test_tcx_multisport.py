"""A TCX `<MultiSportSession>` imports every activity it holds (issue 16, class 4)."""

from __future__ import annotations

import re

import pytest

from retrostride.connectors.tcx import decode_tcx
from tests.conftest import CORPORA

RUN = CORPORA / "tcx" / "python-tcxparser" / "test.tcx"


def multisport(tmp_path):
    """The corpus run as the first leg of a multisport session, and the same track as a ride an
    hour later as the next leg, after a transition lap."""
    text = RUN.read_text()
    activity = re.search(r"<Activity .*?</Activity>", text, re.S).group(0)
    later = re.sub(r"T21:", "T22:", activity.replace('Sport="Running"', 'Sport="Biking"'))
    session = (
        f"<MultiSportSession><Id>2012-12-26T21:29:53Z</Id><FirstSport>{activity}</FirstSport>"
        f'<NextSport><Transition StartTime="2012-12-26T22:00:00Z"><TotalTimeSeconds>60</TotalTimeSeconds>'
        f"<DistanceMeters>0</DistanceMeters><Calories>0</Calories><Intensity>Active</Intensity>"
        f"<TriggerMethod>Manual</TriggerMethod></Transition>{later}</NextSport></MultiSportSession>"
    )
    path = tmp_path / "multisport.tcx"
    path.write_text(text.replace(activity, session))
    return path


def test_every_leg_of_a_multisport_session_is_an_activity(tmp_path):
    if not RUN.exists():
        pytest.skip(f"corpora not found at {CORPORA}")
    single, legs = decode_tcx(RUN), decode_tcx(multisport(tmp_path))
    assert legs.activities["sport"].to_list() == ["running", "cycling"]
    assert legs.records.height == 2 * single.records.height == 2 * 384
    assert legs.records.group_by("session").len().sort("session")["len"].to_list() == [384, 384]
    assert legs.activities["start_ts"].dt.hour().to_list() == [21, 22]
