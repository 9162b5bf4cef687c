"""The nightly import: everything new in every watched folder (the sensors then publish it and refresh the marts).

The sensors import files within a minute of their arrival; the nightly run is the safety net that
makes the warehouse right by morning anyway: it re-lists every source and imports whatever the ledger
does not hold yet (a run a sensor requested that failed, a sensor switched off, a folder added).
"""

from __future__ import annotations

import dagster as dg

from retrostride.assets.settings import Settings


def nightly_cron(clock: str) -> str:
    """`HH:MM` as a daily cron expression."""
    hours, _, minutes = clock.partition(":")
    hour, minute = int(hours), int(minutes or 0)
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"RETROSTRIDE_NIGHTLY must be HH:MM, got {clock!r}")
    return f"{minute} {hour} * * *"


def nightly_run_config(settings: Settings) -> dict:
    """Import every watched folder: read like the inbox, or for its athlete if it names one."""
    return {
        "ops": {"import_new_files": {"config": {"sources": {str(s.root): s.athlete or "" for s in settings.sources}}}}
    }


def nightly_schedule(settings: Settings, import_job) -> dg.ScheduleDefinition:
    """On by default: `dagster dev` or `dagster-daemon` run it at RETROSTRIDE_NIGHTLY in RETROSTRIDE_TIMEZONE."""

    @dg.schedule(
        name="nightly_import",
        cron_schedule=nightly_cron(settings.nightly),
        job=import_job,
        execution_timezone=settings.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Imports everything new at {settings.nightly} ({settings.timezone}) and refreshes the marts.",
    )
    def nightly_import(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(
            run_key=context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else None,
            run_config=nightly_run_config(settings),
            tags={"retrostride/trigger": "nightly"},
        )

    return nightly_import
