"""How an import reports its stages (no Dagster: the CLI draws them without loading it)."""

#: The stages of an import, in order, as the CLI shows them.
STAGES = ("decode", "publish", "detect", "marts", "snapshot")


class RunProgress:
    """Where an in-process run reports its stages (STAGES): the CLI draws a bar per stage; the
    sensors and schedules pass this one, which does nothing (the run's own log is enough)."""

    def start(self, stage: str, total: int) -> None:
        """`stage` has `total` steps to go (files for decode, months for publish and detect)."""

    def advance(self, stage: str, steps: int = 1) -> None:
        """`steps` more of `stage` are done."""

    def file_done(self, outcome: object) -> None:
        """One file was imported, skipped or refused (an `Outcome`); one decode step."""

    def note(self, message: str) -> None:
        """Something the person running the import should read (it is in the run's log too)."""


no_progress = RunProgress()
