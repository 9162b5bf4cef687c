"""The CLI's side of the home's warm import server (`pipelines.import_server`): find it, hand it an
import, relay what it sends; start one when none answered.

The server listens on a Unix socket named after the home (Linux's abstract namespace: no file to
leave behind, gone with its process). A request carries a fingerprint of the code and the settings;
a server of other code or settings answers "stale" and exits, and the CLI imports in-process.
Messages are JSON, one per line. This module imports only the standard library: a served import
loads neither Dagster nor Polars nor DuckDB.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from retrostride.assets.settings import Settings

REPO = Path(__file__).resolve().parents[1]
#: What the fingerprint covers: the product's packages and its project file.
SOURCES = ("assets", "connectors", "pipelines", "warehouse")
#: Environment variables that change what an import does, beyond `Settings` itself (DAGSTER_HOME is
#: in the settings; the CLI sets Dagster's own switches before it starts a server).
ENVIRONMENT = ("RETROSTRIDE_", "AWS_", "POLARS_", "DAGSTER_POSTGRES_URL")
IDLE = "RETROSTRIDE_WARM_IDLE_S"
#: The note a served import leaves when its report redraw failed, for the next command to tell.
FAILED_REDRAW = "redraw-failed.txt"


def served(settings: Settings) -> bool:
    """Whether this home has warm import servers at all (RETROSTRIDE_WARM_IDLE_S > 0, on Linux)."""
    return settings.warm_idle_s > 0 and sys.platform == "linux"


def address(settings: Settings) -> str:
    """The server's socket: an abstract name made of the home's path (one server per home)."""
    return "\0retrostride-import-" + hashlib.sha256(str(settings.home).encode()).hexdigest()[:24]


def run_folder(settings: Settings) -> Path:
    """Where the server keeps its log, the report's redraw lock and a failed redraw's note."""
    return settings.home / "run"


def fingerprint(settings: Settings) -> str:
    """The code (each source file's path, size and modification time), the environment, the settings
    and the environment that shape an import: a server answers only a CLI whose fingerprint is its own."""
    digest = hashlib.sha256(sys.prefix.encode())  # the environment (venv), however its python was named
    for path in _source_files():
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    digest.update(repr(dataclasses.replace(settings, warm_idle_s=0)).encode())
    shaping = sorted((k, v) for k, v in os.environ.items() if k.startswith(ENVIRONMENT) and k != IDLE)
    digest.update(repr(shaping).encode())
    digest.update(repr(settings.dagster_home).encode())
    return digest.hexdigest()


def _source_files() -> Iterator[Path]:
    yield REPO / "pyproject.toml"
    for top in SOURCES:
        for folder, folders, files in os.walk(REPO / top):
            folders[:] = sorted(f for f in folders if f != "__pycache__")
            for name in sorted(files):
                if not name.endswith((".pyc", ".log")):
                    yield Path(folder, name)


class ServerGone(Exception):
    """The server ended (killed, crashed) before it answered the request."""


def request(settings: Settings, message: dict, on_event: Callable[[dict], None] = lambda event: None) -> dict | None:
    """Send `message` (with the fingerprint) to the home's server and relay each event it streams to
    `on_event`; the server's last message (`done`, `exit` or `stale`), or None when no server answers.
    Raises ServerGone when the connection ends before the last message."""
    if not served(settings):
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(address(settings))
    except OSError:
        connection.close()
        return None
    with connection, connection.makefile("rwb") as stream:
        stream.write(json.dumps({**message, "fingerprint": fingerprint(settings)}).encode() + b"\n")
        stream.flush()
        for line in stream:
            event = json.loads(line)
            if {"done", "exit", "stale", "status", "stopped"} & event.keys():
                return event
            on_event(event)
    raise ServerGone("the import server ended before it answered")


def start_server(settings: Settings) -> None:
    """Start the home's server, detached (its own session, output to `run/import-server.log`); it
    exits at once if another one holds the home's socket."""
    if not served(settings):
        return
    folder = run_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "import-server.log", "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "retrostride.pipelines.import_server"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def redraw_lock(settings: Settings, exclusive: bool) -> IO[bytes]:
    """The report's redraw lock, taken (waiting for it): exclusive for a served import's redraw, shared
    for a reader of the report, which so never reads one being redrawn. Held until the file is closed."""
    import fcntl

    folder = run_folder(settings)
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / "redraw.lock", "ab")  # noqa: SIM115 - the caller holds it
    fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    return lock


def failed_redraw(settings: Settings) -> str | None:
    """What went wrong in the last served import's report redraw, if it failed (said once)."""
    note = run_folder(settings) / FAILED_REDRAW
    try:
        text = note.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    note.unlink(missing_ok=True)
    return text
