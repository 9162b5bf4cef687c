"""Dagster resources: the configured home, inbox and profiles, and how import progress is shown."""

from pathlib import Path

import dagster as dg

from retrostride.assets.run_progress import STAGES, RunProgress, no_progress  # noqa: F401 (the resources' names)
from retrostride.assets.settings import (
    Settings,
    load_duplicate_policy,
    load_limits,
    load_mart_config,
    load_model_config,
    load_profiles,
)
from retrostride.assets.transforms.model_config import DetectionConfig, EnergyConfig
from retrostride.connectors.ingest.importer import ImportLimits
from retrostride.warehouse.catalog import Catalog
from retrostride.warehouse.lake import Lake
from retrostride.warehouse.mart_config import MartConfig
from retrostride.warehouse.profiles import AthleteProfile
from retrostride.warehouse.publish import DuplicatePolicy
from retrostride.warehouse.store import Warehouse


class Storage(dg.ConfigurableResource):
    """RETROSTRIDE_HOME (warehouse, lake, raw copies, quarantine), the inbox and the profiles file."""

    home: str
    inbox: str
    athletes_file: str
    workers: int = 1
    config_file: str = ""  # retrostride.toml; empty: <home>/retrostride.toml
    catalog: str = ""  # RETROSTRIDE_CATALOG; empty: <home>/catalog.sqlite
    data: str = ""  # RETROSTRIDE_DATA; empty: <home>/warehouse/

    @classmethod
    def from_settings(cls, settings: Settings) -> "Storage":
        return cls(
            home=str(settings.home),
            inbox=str(settings.inbox),
            athletes_file=str(settings.athletes_file),
            workers=settings.workers,
            config_file=str(settings.config_path),
            catalog=settings.catalog_url,
            data=settings.data_url,
        )

    def limits(self) -> ImportLimits:
        return load_limits(self.config_path)

    def duplicate_policy(self) -> DuplicatePolicy:
        return load_duplicate_policy(self.config_path)

    @property
    def config_path(self) -> Path:
        """retrostride.toml: import limits, plausible ranges, duplicates."""
        return Path(self.config_file) if self.config_file else Path(self.home) / "retrostride.toml"

    @property
    def staging(self) -> Path:
        """Where archives are expanded while they are imported (emptied afterwards)."""
        return Path(self.home) / "staging"

    @property
    def lake(self) -> Lake:
        return Lake(Path(self.home))

    @property
    def warehouse(self) -> Warehouse:
        """The DuckLake warehouse (catalog and data files) the pipeline writes and readers query."""
        return Warehouse(Catalog.configured(self.home, self.catalog, self.data))

    def profiles(self) -> dict[str, AthleteProfile]:
        return load_profiles(Path(self.athletes_file))


class Models(dg.ConfigurableResource):
    """The detection and energy model: defaults, overridden by a TOML file (RETROSTRIDE_MODEL)."""

    model_file: str

    @classmethod
    def from_settings(cls, settings: Settings) -> "Models":
        return cls(model_file=str(settings.model_path))

    def configs(self) -> tuple[DetectionConfig, EnergyConfig]:
        return load_model_config(Path(self.model_file))

    def marts(self) -> MartConfig:
        """Outcome windows, tolerances and the study protocol: the `[marts]` table of the same file."""
        return load_mart_config(Path(self.model_file))
