"""A deterministic sample export: several athletes' running history as real FIT and GPX files.

    truth = generate_export(Path("inbox"), seed=7, athletes=3, weeks=16)

writes ``inbox/<athlete_id>/*.fit|*.gpx`` (activities and weight-scale readings) and the ground
truth to ``inbox.truth/`` (Parquet frames and ``athletes.toml``).  No Dagster in here.
"""

from .generate import generate_export
from .plans import TrainingVolume
from .profiles import ATHLETE_IDS
from .truth import ExportTruth

__all__ = ["ATHLETE_IDS", "ExportTruth", "TrainingVolume", "generate_export"]
