"""The warm launcher's run server (`python -m retrostride.pipelines.run_server MODULE...`): imports the
modules a run needs once, then forks one child per run, which executes the run through Dagster's
own entry point (`dagster api execute_run`'s).

It imports nothing at the top: a run's spawned workers (decoding, scoring) import the module their
parent started from, and this one must cost them nothing.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Sequence


def serve(preload: Sequence[str]) -> None:
    """The run server: import `preload`, then fork one child per line of ExecuteRunArgs read from
    stdin, answering each with the child's pid; ends at the end of stdin."""
    for module in preload:
        importlib.import_module(module)
    from dagster._cli.api import execute_run_command

    from retrostride.pipelines.runs import sqlite_commits_without_fsync

    sqlite_commits_without_fsync()  # in every run forked from here, as in the CLI's runs
    warm_up_instance()

    commands, answers = sys.stdin, sys.stdout
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    for line in commands:
        if not line.strip():
            continue
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run_child(line.strip(), execute_run_command.callback)
        answers.write(f"{pid}\n")
        answers.flush()


def _run_child(arguments: str, execute_run) -> None:
    """In the forked child: leave the server's pipes, execute the run, exit with its code."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the run waits for its own workers
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # what the run prints goes where the server's errors go, not into its answers
    sys.stdin = open(os.devnull)  # noqa: SIM115 - the child's stdin until it exits
    sys.stdout = os.fdopen(1, "w", buffering=1)
    code = 1
    try:
        execute_run(arguments, None)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def warm_up_instance() -> None:
    """Open and close the instance of DAGSTER_HOME, as each run will: its storage's modules
    (SQLAlchemy, Alembic, the event log's) are then imported once, here, not in every run."""
    import dagster as dg

    if os.environ.get("DAGSTER_HOME"):
        with dg.DagsterInstance.get() as instance:
            instance.get_run_records(limit=1)


if __name__ == "__main__":
    serve(sys.argv[1:])
