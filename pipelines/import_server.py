"""The home's warm import server (`python -m retrostride.pipelines.import_server`), like Gradle's
daemon: it imports Dagster, the code location and the report's modules and opens the home's Dagster
instance once, then serves `retrostride import` one request at a time, each in a child forked from
it that runs the same `import_files` job as the CLI (`pipelines.runs.import_paths`) and streams the
progress and the report back over the socket (`pipelines.import_client`).

The child answers as soon as the marts and the snapshot are published, then redraws the report and
exits, holding the report's redraw lock until then (`retrostride report` waits for it). The server
takes the next request once the child has answered: an import arriving during a redraw starts at
once, and its own answer waits for that redraw (its lock) to end. The server exits
after RETROSTRIDE_WARM_IDLE_S without a request, on SIGTERM, on `retrostride warm stop`, and when a
request's fingerprint (code, settings) is not its own. A child dies with the server.

It imports nothing heavy at the top: a run's spawned workers import the module their parent
started from, and this one must cost them nothing.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from typing import TYPE_CHECKING, BinaryIO

from retrostride.assets.run_progress import RunProgress
from retrostride.assets.settings import Settings
from retrostride.pipelines.import_client import (
    FAILED_REDRAW,
    address,
    fingerprint,
    redraw_lock,
    run_folder,
    served,
)

if TYPE_CHECKING:
    import dagster as dg

#: How long a new server tries to take the home's socket from one on its way out (a stale one).
TAKE_OVER_S = 5.0
#: The modules every import uses, imported once by the server.
PRELOAD = (
    "retrostride.pipelines.runs",
    "retrostride.pipelines.import_summary",
    "retrostride.pipelines.cli",
    "retrostride.connectors.ingest.supervisor",
    "retrostride.warehouse.report",
    "dagster._core.execution.execute_in_process",
    "dagster._core.executor.in_process",
    "dagster._core.instance.runs.run_domain",
    "dagster._core.storage.local_compute_log_manager",
    "multiprocessing.popen_spawn_posix",
    "narwhals._polars.dataframe",
    "duckdb_extension_ducklake",
    "duckdb_extension_sqlite_scanner",
)


def serve(settings: Settings) -> None:
    """Serve the home's imports until idle, stopped, stale or terminated."""
    listener = _listening(settings)
    if listener is None:
        _log("another server holds this home's socket: not starting")
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server = Server(settings, listener, _warmed(settings))
        signal.signal(signal.SIGCHLD, lambda *_: server.reap())  # a child that has redrawn is reaped at once
        _log(f"server {os.getpid()} ready for {settings.home}")
        while server.answer_next():
            pass
        server.wait_for_children()
    finally:
        listener.close()


def _listening(settings: Settings) -> socket.socket | None:
    """The home's socket, bound and listening; None when another live server keeps it."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + TAKE_OVER_S
    while True:
        try:
            listener.bind(address(settings))
            listener.listen(8)
            return listener
        except OSError:
            if time.monotonic() > deadline:
                listener.close()
                return None
            time.sleep(0.1)


def _warmed(settings: Settings) -> dg.DagsterInstance:
    """Import what every import uses and open the home's instance (Dagster's SQLite storages hold no
    connection between uses, so the children share it safely)."""
    import importlib

    for module in PRELOAD:
        importlib.import_module(module)
    import gc

    from retrostride.pipelines.runs import instance_for

    instance = instance_for(settings)
    gc.collect()
    gc.freeze()  # what the server holds is out of the collector's reach in every child: no walk, no copy-on-write
    return instance


class Server:
    """The warm process: answers requests one at a time; an import's child is left to redraw the
    report once it has answered, and reaped later."""

    def __init__(self, settings: Settings, listener: socket.socket, instance: dg.DagsterInstance):
        self.settings, self.listener, self.instance = settings, listener, instance
        self.own = fingerprint(settings)
        self.children: dict[int, float] = {}  # pid → when it was forked

    def answer_next(self) -> bool:
        """Wait for a request and answer it; False when the server is to exit (idle, stopped, stale)."""
        self.listener.settimeout(self.settings.warm_idle_s)
        try:
            connection, _ = self.listener.accept()
        except TimeoutError:
            self.reap()
            if self.children:
                return True
            _log(f"idle for {self.settings.warm_idle_s:g} s: exiting")
            return False
        if _peer_uid(connection) != os.getuid():  # an abstract socket has no file permissions: only its user's CLI
            connection.close()
            return True
        with connection, connection.makefile("rwb") as stream:
            connection.settimeout(10)  # a client that connects and says nothing does not hold the server
            try:
                message = json.loads(stream.readline() or b"{}")
            except (OSError, ValueError):
                return True
            connection.settimeout(None)
            return self.answer(message, stream)

    def answer(self, message: dict, stream: BinaryIO) -> bool:
        self.reap()
        if message.get("fingerprint") != self.own:
            _send(stream, {"stale": True})
            _log("a request from other code or settings: exiting (the CLI imports in-process and starts a new server)")
            return False
        if message.get("kind") == "stop":
            _send(stream, {"stopped": True, "pid": os.getpid()})
            _log("stopped on request")
            return False
        if message.get("kind") == "import":
            self.fork_import(message, stream)
        else:
            _send(stream, {"status": "ready", "pid": os.getpid()})
        return True

    def fork_import(self, message: dict, stream: BinaryIO) -> None:
        """A child runs the import; this returns once the child has answered (or died)."""
        answered, answering = os.pipe()
        child = os.fork()
        if child == 0:
            self.listener.close()
            os.close(answered)
            _serve_in_child(stream, message, self.settings, self.instance, answering)
        os.close(answering)
        self.children[child] = time.monotonic()
        _log(f"import of {', '.join(message['targets'])} handed to child {child}")
        with open(answered, "rb") as news:
            news.read(1)  # a byte once the child has answered; none if it died first

    def reap(self, block: bool = False) -> None:
        """Children that have ended, logged and forgotten."""
        for child, started in list(self.children.items()):
            try:
                done, status, usage = os.wait4(child, 0 if block else os.WNOHANG)
            except ChildProcessError:  # reaped meanwhile, by a signal's call
                continue
            if done and self.children.pop(child, None) is not None:
                _log(
                    f"child {child} (its import and the report's redraw): {_ending(status)} after {time.monotonic() - started:.2f} s "
                    f"({usage.ru_utime + usage.ru_stime:.2f} CPU-s with its decoder process)"
                )

    def wait_for_children(self) -> None:
        """Before the server exits: its children redrawing the report end first (they die with it)."""
        self.reap(block=True)


def _serve_in_child(
    stream: BinaryIO, message: dict, settings: Settings, instance: dg.DagsterInstance, answering: int
) -> None:
    """In the forked child: the import, its events and its answer sent back (then a byte on
    `answering` tells the server); exits, never returns."""
    _die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the run waits for its own workers
    code = 0
    try:
        code = _import(stream, message, settings, instance, answering)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _import(stream: BinaryIO, message: dict, settings: Settings, instance: dg.DagsterInstance, answering: int) -> int:
    """Run the import as the CLI does in-process; the exit code the CLI is told (0, 1, 2 or 3)."""
    from rich.markup import escape
    from rich.text import Text

    from retrostride.assets.settings import ConfigError, check_configuration
    from retrostride.connectors.ingest.supervisor import decoder_started_early
    from retrostride.connectors.object_store import ObjectStoreError
    from retrostride.pipelines.cli import failure
    from retrostride.pipelines.runs import import_paths

    relay = Relay(stream, settings, answering)
    try:
        check_configuration(settings)
        with decoder_started_early(settings.workers):
            import_paths(settings, message["targets"], message["athlete"], progress=relay, instance=instance)
    except (ConfigError, ObjectStoreError) as error:
        return relay.end(2, escape(str(error)))
    except Exception as error:
        code, text = failure(error, "import")
        if relay.report is None:
            return relay.end(code, text)
        (run_folder(settings) / FAILED_REDRAW).write_text(
            Text.from_markup(f"[red]{text}").plain + "\n", encoding="utf-8"
        )
        return 0
    if relay.report is None:  # (a run always publishes its snapshot; this is for safety)
        relay.answer()
    return 1 if relay.report.failed else 0


class Relay(RunProgress):
    """The run's progress sent to the CLI as it happens; once the snapshot is published, the import's
    report, with the report's redraw lock taken (released when the child exits, after the redraw)."""

    def __init__(self, stream: BinaryIO, settings: Settings, answering: int):
        self.stream, self.settings, self.answering = stream, settings, answering
        self.outcomes: list = []
        self.report = None

    def start(self, stage: str, total: int) -> None:
        _send(self.stream, {"start": [stage, total]})

    def advance(self, stage: str, steps: int = 1) -> None:
        _send(self.stream, {"advance": [stage, steps]})
        if stage == "snapshot":
            self.answer()

    def file_done(self, outcome) -> None:
        self.outcomes.append(outcome)
        _send(self.stream, {"file": [outcome.path, outcome.status]})

    def note(self, message: str) -> None:
        _send(self.stream, {"note": message})

    def answer(self) -> None:
        """The import's report, read from the warehouse as the CLI reads it, sent as its answer."""
        from retrostride.pipelines.import_summary import import_report
        from retrostride.warehouse.store import Warehouse

        self.redrawing = redraw_lock(self.settings, exclusive=True)  # held until this process exits
        self.report = import_report(Warehouse(self.settings.catalog), self.outcomes)
        _send(self.stream, {"done": self.report.as_json(), "pid": os.getpid()})
        self.answered()

    def end(self, code: int, message: str) -> int:
        _send(self.stream, {"exit": code, "message": message})
        self.answered()
        return code

    def answered(self) -> None:
        """Tell the server it may take the next request."""
        os.write(self.answering, b".")
        os.close(self.answering)


def _send(stream: BinaryIO, message: dict) -> None:
    """One message to the CLI; a CLI that went away is not an error (the import goes on to its end)."""
    try:
        stream.write(json.dumps(message).encode() + b"\n")
        stream.flush()
    except OSError:
        pass


def _peer_uid(connection: socket.socket) -> int:
    """The user id of the process at the other end (Linux's SO_PEERCRED: pid, uid, gid)."""
    import struct

    _, uid, _ = struct.unpack("3i", connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


def _die_with_parent() -> None:
    """Have the kernel kill this child when the server ends (Linux's PR_SET_PDEATHSIG)."""
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _ending(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.waitstatus_to_exitcode(status)}"


def _log(line: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore", module="dagster")  # Dagster's beta/preview notices, as in the CLI
    settings = Settings.from_env()
    if served(settings):
        serve(settings)


if __name__ == "__main__":
    main()
