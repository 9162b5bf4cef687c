"""Where the warehouse lives: a DuckLake catalog (a SQL database of snapshots and file lists) and the
Parquet files it lists.

Two places, one code path:

- embedded (the default, no server): the catalog is a SQLite file, `<home>/catalog.sqlite`, and the
  data `<home>/warehouse/`.  SQLite lets processes read the catalog while another commits (a DuckDB
  file as catalog would lock every other process out, readers included);
- shared: the catalog in PostgreSQL (`RETROSTRIDE_CATALOG=postgresql://user@host/db`) and the data
  on an S3-compatible store (`RETROSTRIDE_DATA=s3://bucket/prefix`, credentials from the AWS_* env vars).

DuckDB's extensions (ducklake, sqlite_scanner, postgres_scanner, httpfs) come as wheels from the
package registry and are loaded from those files: nothing is downloaded at run time.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:  # imported where an engine is opened: the CLI's served import and its settings load no DuckDB
    import duckdb

#: The alias the warehouse is attached under in every connection (and in docs/warehouse.md).
ALIAS = "warehouse"
#: The commit message of the snapshots readers see: a publish, after the pipeline's steps of an import.
PUBLISHED = "published"
#: The newest published snapshot's id (null before the first publish).
PUBLISHED_SNAPSHOT_SQL = (
    f"SELECT max(snapshot_id) AS id FROM ducklake_snapshots('{ALIAS}') WHERE commit_message = '{PUBLISHED}'"
)
#: Extensions load only by path, from the installed wheels (`extension_file`).  DuckDB's signature
#: check of a LOAD hashes the whole file (two extensions of ~35 MB each: ~0.2 s in every process that
#: opens the lake); the wheels are installed packages like DuckDB itself, whose own library is not
#: checked either, so they are trusted as it is.  Readers then turn external access off, which
#: refuses any further LOAD (warehouse/access.py).
_ENGINE_CONFIG = {
    "autoinstall_known_extensions": "false",
    "autoload_known_extensions": "false",
    "allow_unsigned_extensions": "true",
}


@dataclass(frozen=True)
class Catalog:
    """A DuckLake: `metadata` is what follows `ducklake:` in ATTACH (`sqlite:PATH` or `postgres:DSN`),
    `data` the folder or `s3://` prefix of its Parquet files."""

    metadata: str
    data: str

    @classmethod
    def embedded(cls, home: Path | str) -> Catalog:
        """The default: catalog and files under `home`."""
        home = Path(home)
        return cls(f"sqlite:{home / 'catalog.sqlite'}", f"{home / 'warehouse'}/")

    @classmethod
    def configured(cls, home: Path | str, catalog: str = "", data: str = "") -> Catalog:
        """From RETROSTRIDE_CATALOG and RETROSTRIDE_DATA (empty: under `home`)."""
        default = cls.embedded(home)
        if not catalog:
            metadata = default.metadata
        elif catalog.startswith(("postgres://", "postgresql://")):
            metadata = f"postgres:{catalog}"
        elif catalog.startswith(("postgres:", "sqlite:")):
            metadata = catalog
        else:
            metadata = f"sqlite:{Path(catalog).resolve()}"
        if not data:
            data = default.data
        elif "://" not in data:
            data = f"{Path(data).resolve()}/"
        return cls(metadata, data if data.endswith("/") else f"{data}/")

    @property
    def shared(self) -> bool:
        return self.metadata.startswith("postgres:")

    @property
    def sqlite_file(self) -> Path | None:
        return Path(self.metadata.removeprefix("sqlite:")) if self.metadata.startswith("sqlite:") else None

    def exists(self) -> bool:
        """False only for an embedded catalog not created yet (a PostgreSQL one is assumed to exist)."""
        return self.sqlite_file is None or self.sqlite_file.exists()

    def attach_sql(self, alias: str = ALIAS, read_only: bool = False, as_of: str | int | None = None) -> str:
        """The ATTACH statement for this lake; `as_of` a snapshot id or a timestamp (read-only)."""
        options = [f"DATA_PATH '{self.data}'"]
        if self.sqlite_file is not None:  # a home copied or moved: its files are where it is now
            options.append("OVERRIDE_DATA_PATH TRUE")
        if as_of is not None:
            options.append(f"SNAPSHOT_VERSION {int(as_of)}" if str(as_of).isdigit() else f"SNAPSHOT_TIME '{as_of}'")
        if read_only or as_of is not None:
            options.append("READ_ONLY")
        return f"ATTACH 'ducklake:{self.metadata}' AS {alias} ({', '.join(options)})"


def write_ahead_log(path: Path) -> None:
    """Put the SQLite catalog in WAL mode (kept in the file): readers in other processes go on reading
    while a writer commits, instead of meeting "database is locked"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path)) as connection:
        connection.execute("PRAGMA journal_mode = WAL")


def extension_file(name: str) -> Path:
    """The extension `name` shipped in the `duckdb-extension-<name>` wheel, for this DuckDB."""
    import duckdb

    package = importlib.import_module(f"duckdb_extension_{name}")
    folder = Path(package.__path__[0]) / "extensions" / f"v{duckdb.__version__}"
    found = folder / f"{name}.duckdb_extension"
    if not found.exists():
        raise RuntimeError(f"{found} is missing: install duckdb-extension-{name}=={duckdb.__version__}")
    return found


def open_engine(catalog: Catalog, read_only: bool = False, as_of: str | int | None = None) -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB with the lake attached as `warehouse` and in use; `as_of` a snapshot id,
    a timestamp or PUBLISHED (the newest published snapshot, else the newest one)."""
    import duckdb

    engine = duckdb.connect(config=dict(_ENGINE_CONFIG))
    try:
        # what a big publish cannot hold in memory spills here (an in-memory DuckDB would use ./.tmp)
        engine.execute(f"SET temp_directory = '{Path(tempfile.gettempdir()) / 'retrostride-duckdb'}'")
        for name in ("ducklake", "postgres_scanner" if catalog.shared else "sqlite_scanner"):
            engine.execute(f"LOAD '{extension_file(name)}'")
        if catalog.data.startswith("s3://"):
            engine.execute(f"LOAD '{extension_file('httpfs')}'")
            engine.execute(s3_secret_sql())
        # commits that race settle themselves when they touch different files: be patient with the catalog
        engine.execute("SET ducklake_max_retry_count = 50")
        engine.execute("SET ducklake_retry_wait_ms = 20")
        engine.execute("SET ducklake_retry_backoff = 1.2")
        if catalog.sqlite_file is not None and not read_only:
            write_ahead_log(catalog.sqlite_file)
        if not catalog.data.startswith("s3://") and not read_only:
            Path(catalog.data).mkdir(parents=True, exist_ok=True)
        if as_of == PUBLISHED:
            as_of = newest_published(engine, catalog)
        attach(engine, catalog.attach_sql(ALIAS, read_only, as_of))
        engine.execute(f"USE {ALIAS}")
        engine.execute("SET TimeZone = 'UTC'")
        return engine
    except BaseException:
        engine.close()
        raise


def newest_published(engine: duckdb.DuckDBPyConnection, catalog: Catalog) -> int | None:
    """The newest published snapshot's id (None before the first publish), from the lake attached
    for this question only: not in use, so DuckLake does not load its schema for it."""
    attach(engine, catalog.attach_sql(ALIAS, read_only=True))
    try:
        return engine.execute(PUBLISHED_SNAPSHOT_SQL).fetchone()[0]
    finally:
        engine.execute(f"DETACH {ALIAS}")


def attach(engine: duckdb.DuckDBPyConnection, statement: str, tries: int = 5) -> None:
    """Run an ATTACH; when another process is creating the same new catalog at that moment (its
    tables half made), wait and attach again: it is a whole catalog by then."""
    import duckdb

    for attempt in range(tries):
        try:
            engine.execute(statement)
            return
        except duckdb.Error as error:
            if "Failed to initialize DuckLake" not in str(error) or attempt == tries - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def s3_secret_sql() -> str:
    """A DuckDB secret for s3:// data from the AWS_* environment variables (AWS_ENDPOINT_URL: a local store)."""
    parts = ["TYPE s3"]
    for option, variable in (
        ("KEY_ID", "AWS_ACCESS_KEY_ID"),
        ("SECRET", "AWS_SECRET_ACCESS_KEY"),
        ("SESSION_TOKEN", "AWS_SESSION_TOKEN"),
        ("REGION", "AWS_DEFAULT_REGION"),
    ):
        if os.environ.get(variable):
            parts.append(f"{option} '{_quoted(os.environ[variable])}'")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        url = urlparse(endpoint)
        parts += [
            f"ENDPOINT '{_quoted(url.netloc)}'",
            "URL_STYLE 'path'",
            f"USE_SSL {str(url.scheme == 'https').lower()}",
        ]
    return f"CREATE OR REPLACE SECRET retrostride_s3 ({', '.join(parts)})"


def _quoted(text: str) -> str:
    return text.replace("'", "''")


_engines: dict[tuple, duckdb.DuckDBPyConnection] = {}
_engines_lock = threading.Lock()


def shared_engine(catalog: Catalog) -> duckdb.DuckDBPyConnection:
    """This process's read-write engine for `catalog`, opened once (loading the extensions and
    attaching costs ~0.5 s; a cursor of it ~1 ms).  Each transaction sees the newest snapshot."""
    key = (os.getpid(), catalog)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = open_engine(catalog)
        return engine


def forget_engines(catalog: Catalog) -> None:
    """Close this process's engine for `catalog` (the catalog file is being moved or replaced)."""
    with _engines_lock:
        engine = _engines.pop((os.getpid(), catalog), None)
    if engine is not None:
        engine.close()


#: Per embedded catalog: the lock of this process's threads, and the lock file while a turn is held (one entry per nested turn).
_turns: dict[Path, tuple[threading.RLock, list]] = {}


@contextmanager
def writer_turn(catalog: Catalog) -> Iterator[None]:
    """One write transaction at a time on an embedded catalog, across processes (an exclusive lock on
    `<catalog>.writer`, released by the kernel if the process dies; reentrant in a thread).  SQLite
    cannot commit a DuckLake transaction when another one committed after it began: the later
    commit fails whole (duckdb/ducklake#1309) and would be run again, a long one again and again.
    Taking turns, each commits on its first try while the work outside transactions runs side by
    side.  A PostgreSQL catalog commits writers side by side: no lock."""
    path = catalog.sqlite_file
    if path is None:
        yield
        return
    with _engines_lock:
        lock, held = _turns.setdefault(path, (threading.RLock(), []))
    with lock:
        if not held:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path.with_name(path.name + ".writer"), "a")  # noqa: SIM115 (closed when the turn ends)
            fcntl.flock(handle, fcntl.LOCK_EX)
            held.append(handle)
        else:
            held.append(held[0])
        try:
            yield
        finally:
            handle = held.pop()
            if not held:
                handle.close()  # the kernel releases the lock
