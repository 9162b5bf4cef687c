"""One settings object: environment variables over defaults that work with no configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Where retrostride keeps things.

    - `RETROSTRIDE_HOME` (default `./data`): warehouse.duckdb, the Parquet lake, raw copies, quarantine.
    - `RETROSTRIDE_INBOX` (default `./inbox`): files under `inbox/<athlete_id>/` belong to that athlete.
    - `RETROSTRIDE_ATHLETES` (default `<home>/athletes.toml`): athlete profiles.
    - `RETROSTRIDE_WORKERS` (default: CPU count): decoder processes for bulk imports.
    - `RETROSTRIDE_MODEL` (default `<home>/model.toml`): detection and energy settings over the defaults.
    """

    home: Path
    inbox: Path
    athletes_file: Path
    workers: int
    model_file: Path | None = None  # None: <home>/model.toml

    @classmethod
    def from_env(cls) -> "Settings":
        home = Path(os.environ.get("RETROSTRIDE_HOME", "data")).resolve()
        return cls(
            home=home,
            inbox=Path(os.environ.get("RETROSTRIDE_INBOX", "inbox")).resolve(),
            athletes_file=Path(os.environ.get("RETROSTRIDE_ATHLETES", home / "athletes.toml")).resolve(),
            workers=int(os.environ.get("RETROSTRIDE_WORKERS", os.cpu_count() or 1)),
            model_file=Path(os.environ.get("RETROSTRIDE_MODEL", home / "model.toml")).resolve(),
        )

    @property
    def model_path(self) -> Path:
        return self.model_file or self.home / "model.toml"

    @property
    def warehouse_path(self) -> Path:
        """The pipeline's working file (only the pipeline opens it)."""
        return self.home / "warehouse.duckdb"

    @property
    def published_path(self) -> Path:
        """The read-only snapshot SQL users query, replaced after every import."""
        return self.home / "published.duckdb"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME", self.home / "dagster")).resolve()
