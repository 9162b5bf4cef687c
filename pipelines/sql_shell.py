"""`retrostride sql`: answers in a table, CSV, JSON or Parquet, and an interactive prompt.

The prompt uses the standard library's readline (line editing, arrow-key history, a history file
kept across sessions): it needs no new dependency, and a prompt for one-off read-only queries needs
nothing more (no completion menus or syntax highlighting to maintain).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from retrostride.warehouse.access import Reading, RefusedStatement, read_only_answer

FORMATS = ("table", "csv", "json", "parquet")
#: --output suffixes and the format each means.
SUFFIXES = {".txt": "table", ".csv": "csv", ".json": "json", ".parquet": "parquet"}
#: Rows a table shows; the rest is counted (csv/json/parquet write everything).
TABLE_ROWS = 1000
HISTORY_LINES = 1000


class OutputError(ValueError):
    """An output that cannot be written as asked (e.g. Parquet to the terminal)."""


@dataclass(frozen=True)
class Answer:
    """A result's column names and rows, as DuckDB's Python client gives them."""

    columns: tuple[str, ...]
    numeric: tuple[bool, ...]  # per column: right-aligned in a table
    rows: list[tuple]


def output_format(requested: str | None, output: Path | None) -> str:
    """The format asked for, else the output file's suffix, else a table; raises OutputError for an
    unknown format or suffix, a suffix that contradicts the format, or Parquet to the terminal."""
    if requested and requested not in FORMATS:
        raise OutputError(f"unknown format {requested!r}: use one of {', '.join(FORMATS)}")
    implied = None
    if output is not None:
        implied = SUFFIXES.get(output.suffix.lower())
        if implied is None:
            raise OutputError(
                f"cannot write {output.name}: use a file ending in {', '.join(SUFFIXES)} (table, csv, json, parquet)"
            )
        if requested and requested != implied:
            raise OutputError(
                f"--format {requested} does not match {output.name}: name the file {output.stem}{_suffix(requested)}"
            )
    chosen = requested or implied or "table"
    if chosen == "parquet" and output is None:
        raise OutputError("Parquet is binary: give --output FILE.parquet")
    return chosen


def _suffix(fmt: str) -> str:
    return next(s for s, f in SUFFIXES.items() if f == fmt)


def fetch_for(fmt: str) -> Callable[[duckdb.DuckDBPyRelation | None], object]:
    """How a relation is read for `fmt`: an Arrow table for Parquet, else an Answer."""
    if fmt == "parquet":
        return lambda relation: relation.to_arrow_table() if relation is not None else None
    return lambda relation: (
        Answer((), (), [])
        if relation is None
        else Answer(tuple(relation.columns), tuple(_numeric(t) for t in relation.types), relation.fetchall())
    )


def _numeric(duckdb_type) -> bool:
    return str(duckdb_type).split("(")[0] in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
        "FLOAT",
        "DOUBLE",
        "DECIMAL",
    }


def render(answer, fmt: str, console: Console, output: Path | None = None) -> int:
    """Write `answer` as `fmt` to `output`, or to the console; returns the rows written."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(answer, output)
        return answer.num_rows
    if fmt in ("csv", "json"):
        text = _csv(answer) if fmt == "csv" else _json(answer)
        if output is None:
            console.file.write(text)
        else:
            output.write_text(text, encoding="utf-8")
    elif output is None:
        console.print(_layout(answer, console.width))
    else:
        with open(output, "w", encoding="utf-8") as handle:
            Console(file=handle, width=200).print(_layout(answer, 200))
    return len(answer.rows)


def run_query(published: Reading, sql: str, fmt: str, console: Console, output: Path | None = None) -> bool:
    """Answer `sql` from the warehouse's newest snapshot (or `as_of`'s); errors are printed, not raised.  True if it ran."""
    try:
        written = render(read_only_answer(published, sql, fetch_for(fmt)), fmt, console, output)
    except RefusedStatement as refusal:
        console.print(f"[red]{escape(str(refusal))}", soft_wrap=True)
        return False
    except duckdb.Error as error:
        console.print(f"[red]{type(error).__name__}:[/] {escape(str(error))}", soft_wrap=True, highlight=False)
        return False
    except (OutputError, OSError, ValueError, TypeError) as error:  # pyarrow's errors are ValueError/TypeError too
        console.print(f"[red]cannot write the answer: {escape(str(error))}", soft_wrap=True)
        return False
    if output is not None:
        console.print(f"{written} row{'' if written == 1 else 's'} written to {escape(str(output))}", highlight=False)
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
                run_query(
                    published,
                    "SELECT table_name AS name, table_type AS kind FROM information_schema.tables WHERE table_catalog = current_database() ORDER BY 2, 1",
                    "table",
                    console,
                )
                continue
            if command:
                buffer.append(line)
            statement = "\n".join(buffer).strip()
            if statement and (command.endswith(";") or not command):
                run_query(published, statement, "table", console)
                buffer.clear()
    finally:
        _save_history(history)


def _layout(answer: Answer, width: int):
    """A table when it fits `width`, else one block per row (column | value), as psql's \\x does."""
    shown = answer.rows[:TABLE_ROWS]
    cells = [[_cell(v) for v in row] for row in shown]
    hidden = len(answer.rows) - len(shown)
    caption = f"{len(answer.rows)} row{'' if len(answer.rows) == 1 else 's'}" + (
        f", first {TABLE_ROWS} shown: use --format csv or --output for all" if hidden else ""
    )
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(answer.columns)]
    if sum(widths) + 3 * len(widths) + 1 <= width or len(answer.columns) <= 1:
        table = Table(caption=caption)
        for column, numeric in zip(answer.columns, answer.numeric, strict=True):
            table.add_column(escape(column), justify="right" if numeric else "left", overflow="fold")
        for row in cells:
            table.add_row(*map(escape, row))
        return table
    blocks = []
    for number, row in enumerate(cells, 1):
        blocks.append(Text(f"-[ row {number} ]" + "-" * max(0, min(width, 40) - 12 - len(str(number))), style="dim"))
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True)
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")  # long values fold at the terminal's edge
        for column, value in zip(answer.columns, row, strict=True):
            grid.add_row(Text(column), "|", Text(value))
        blocks.append(grid)
    blocks.append(Text(caption, style="dim"))
    return Group(*blocks)


def _cell(value) -> str:
    """A value as a table shows it: floats to 6 significant digits, nested values as DuckDB writes them."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.0f}"
    return _text(value)


def _text(value) -> str:
    """Lists, structs and maps in DuckDB's own notation; intervals as `3 days 01:00:00`."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_quoted(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_quoted(k)}: {_quoted(v)}" for k, v in value.items()) + "}"
    if isinstance(value, timedelta):
        return _interval(value)
    return str(value)


def _quoted(value) -> str:
    if value is None:
        return "NULL"
    return f"'{value}'" if isinstance(value, str) else _text(value)


def _interval(value: timedelta) -> str:
    days, rest = value.days, value - timedelta(days=value.days)
    clock = str(rest) if rest else ""
    day_part = f"{days} day{'' if abs(days) == 1 else 's'}" if days else ""
    return " ".join(p for p in (day_part, clock) if p) or "00:00:00"


def _csv(answer: Answer) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(answer.columns)
    writer.writerows(
        [None if v is None else v if isinstance(v, int | float | str) else _text(v) for v in row] for row in answer.rows
    )
    return buffer.getvalue()


def _json(answer: Answer) -> str:
    """Rows as a JSON array of objects; nested values stay nested, dates and intervals are strings."""
    rows = [dict(zip(answer.columns, row, strict=True)) for row in answer.rows]
    return json.dumps(rows, default=_json_value, ensure_ascii=False) + "\n"


def _json_value(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, timedelta):
        return _interval(value)
    if isinstance(value, bytes):
        return value.hex()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _load_history(history: Path) -> None:
    try:
        import readline
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
