"""Read docs/warehouse.md: the columns it documents and its example queries (tests and benchmarks
use them, so the page cannot drift from the warehouse unnoticed)."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "warehouse.md"

_RELATION = re.compile(r"^### `(\w+)`\s*$")
_COLUMN = re.compile(r"^\| `(\w+)` \| ([A-Z][A-Z ]*?) \|")


def documented_columns(path: Path = DOCS) -> dict[str, list[tuple[str, str]]]:
    """Relation name → [(column, DuckDB type)] in the order the page lists them."""
    relations: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            heading = _RELATION.match(line)
            current = heading.group(1) if heading else None
            if current:
                relations.setdefault(current, [])
        elif current and (column := _COLUMN.match(line)):
            relations[current].append((column.group(1), column.group(2).strip()))
    return relations


def example_queries(path: Path = DOCS) -> dict[str, str]:
    """Title → SQL of each ```sql block under "## Example queries"."""
    text = path.read_text(encoding="utf-8").split("\n## Example queries", 1)[1]
    pattern = re.compile(r"^### (.+?)\n.*?```sql\n(.*?)```", re.S | re.M)
    return {title.strip(): sql.strip() for title, sql in pattern.findall(text)}
