"""The import's progress on a terminal: one bar per stage (decode, publish, detect, marts, snapshot)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from retrostride.assets.run_progress import STAGES, RunProgress


class StageBars(RunProgress):
    """Draws each stage as the run reports it, and keeps every file's outcome for the summary.
    Warnings print as one line above the bars; with `show` off, only the outcomes are kept."""

    def __init__(self, console: Console, show: bool = True):
        self.console, self.show = console, show
        self.outcomes: list = []
        self.skipped = 0
        self.drawing = False
        self.bars = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[detail]}"),
            console=console,
            disable=not show,
        )
        self.tasks = {stage: self.bars.add_task(stage, total=None, start=False, detail="") for stage in STAGES}

    def __enter__(self) -> StageBars:
        self.bars.start()
        self.drawing = True
        return self

    def __exit__(self, *exc) -> None:
        for task in self.tasks.values():  # a stage with nothing to do reads 0/0, not a spinner
            if self.bars.tasks[task].total is None:
                self.bars.update(task, total=0)
        self.bars.stop()

    def start(self, stage: str, total: int) -> None:
        self.bars.start_task(self.tasks[stage])
        self.bars.update(self.tasks[stage], total=total)

    def advance(self, stage: str, steps: int = 1) -> None:
        self.bars.advance(self.tasks[stage], steps)

    def file_done(self, outcome) -> None:
        """A file imported or refused is a step done; one already imported leaves the count (the bar
        counts only what is imported now) and is counted aside."""
        self.outcomes.append(outcome)
        task = self.tasks["decode"]
        if outcome.status == "skipped":
            self.skipped += 1
            self.bars.update(task, total=max(0, (self.bars.tasks[task].total or 1) - 1))
        else:
            self.bars.update(task, advance=1)
        aside = f" ({self.skipped} already imported)" if self.skipped else ""
        self.bars.update(task, detail=Path(outcome.path).name[:32] + aside)

    def note(self, message: str) -> None:
        if self.show:
            self.console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True, highlight=False)
