"""`retrostride sql`: answers in a table, CSV, JSON or Parquet, and an interactive prompt.

The prompt uses the standard library's readline (line editing, arrow-key history, a history file
kept across sessions): it needs no new dependency, and a prompt for one-off read-only queries needs
nothing more (no completion menus or syntax highlighting to maintain).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import duckdb
import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from retrostride.warehouse.access import Reading, RefusedStatement, read_only_query

FORMATS = ("table", "csv", "json", "parquet")
#: Rows a table shows; the rest is counted (csv/json/parquet write everything).
TABLE_ROWS = 1000
HISTORY_LINES = 1000


class OutputError(ValueError):
    """An output that cannot be written as asked (e.g. Parquet to the terminal)."""


def output_format(requested: str | None, output: Path | None) -> str:
    """The format asked for, else the output file's suffix, else a table."""
    if requested:
        if requested not in FORMATS:
            raise OutputError(f"unknown format {requested!r}: use one of {', '.join(FORMATS)}")
        return requested
    suffix = output.suffix.lower().lstrip(".") if output else ""
    return suffix if suffix in FORMATS[1:] else "table"


def render(frame: pl.DataFrame, fmt: str, console: Console, output: Path | None = None) -> None:
    """Write `frame` as `fmt` to `output`, or to the console."""
    if fmt == "parquet":
        if output is None:
            raise OutputError("Parquet is binary: give --output FILE.parquet")
        frame.write_parquet(output)
    elif fmt in ("csv", "json"):
        text = frame.write_csv() if fmt == "csv" else _json(frame)
        if output is None:
            console.file.write(text if text.endswith("\n") else text + "\n")
        else:
            output.write_text(text, encoding="utf-8")
    elif output is None:
        console.print(_table(frame))
    else:
        with open(output, "w", encoding="utf-8") as handle:
            Console(file=handle, width=200).print(_table(frame))


def run_query(published: Reading, sql: str, fmt: str, console: Console, output: Path | None = None) -> bool:
    """Answer `sql` from the warehouse's newest snapshot (or `as_of`'s); errors are printed, not raised.  True if it ran."""
    try:
        frame = read_only_query(published, sql)
        render(frame, fmt, console, output)
    except RefusedStatement as refusal:
        console.print(f"[red]{escape(str(refusal))}", soft_wrap=True)
        return False
    except duckdb.Error as error:
        console.print(f"[red]{type(error).__name__}:[/] {escape(str(error))}", soft_wrap=True, highlight=False)
        return False
    except (OutputError, OSError) as error:
        console.print(f"[red]{escape(str(error))}", soft_wrap=True)
        return False
    if output is not None:
        console.print(f"{len(frame)} row{'' if len(frame) == 1 else 's'} written to {escape(str(output))}", highlight=False)
    return True


def interactive(published: Reading, history: Path, console: Console, read_line: Callable[[str], str] = input) -> None:
    """Read statements until `.quit` or end of input.  A statement runs when a line ends with ';'
    or on an empty line; each runs against the newest snapshot, so imports show up as they finish."""
    _load_history(history)
    console.print("retrostride SQL (read-only). End a statement with ; — .tables lists tables and marts, .quit leaves.")
    buffer: list[str] = []
    try:
        while True:
            try:
                line = read_line("sql> " if not buffer else "...> ")
            except KeyboardInterrupt:
                buffer.clear()
                console.print()
                continue
            except EOFError:
                break
            command = line.strip()
            if not buffer and command in (".quit", ".exit", "\\q", "quit", "exit"):
                break
            if not buffer and command == ".tables":
                run_query(published, "SELECT table_name AS name, table_type AS kind FROM information_schema.tables WHERE table_catalog = current_database() ORDER BY 2, 1", "table", console)
                continue
            if command:
                buffer.append(line)
            statement = "\n".join(buffer).strip()
            if statement and (command.endswith(";") or not command):
                run_query(published, statement, "table", console)
                buffer.clear()
    finally:
        _save_history(history)


def _table(frame: pl.DataFrame) -> Table:
    shown = frame.head(TABLE_ROWS)
    hidden = len(frame) - len(shown)
    caption = f"{len(frame)} row{'' if len(frame) == 1 else 's'}" + (f", first {TABLE_ROWS} shown: use --format csv or --output for all" if hidden else "")
    table = Table(caption=caption)
    for column, dtype in frame.schema.items():
        table.add_column(column, justify="right" if dtype.is_numeric() else "left")
    for row in shown.iter_rows():
        table.add_row(*(escape(_cell(v)) for v in row))
    return table


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
    return str(value)


def _json(frame: pl.DataFrame) -> str:
    buffer = io.StringIO()
    frame.write_json(buffer)
    return buffer.getvalue()


def _load_history(history: Path) -> None:
    try:
        import readline  # noqa: F401  (importing it turns on line editing for input())
    except ImportError:  # Windows without pyreadline: the prompt still works, without history
        return
    if history.exists():
        try:
            readline.read_history_file(history)
        except OSError:
            pass
    readline.set_history_length(HISTORY_LINES)


def _save_history(history: Path) -> None:
    try:
        import readline
    except ImportError:
        return
    try:
        history.parent.mkdir(parents=True, exist_ok=True)
        readline.write_history_file(history)
    except OSError:
        pass
