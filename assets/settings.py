"""One configuration: environment variables and the TOML files (`retrostride.toml`, `model.toml`,
`athletes.toml`) over defaults that work with no configuration.

Everything else receives plain values (dataclasses) from here; a file that cannot be used raises
`ConfigError` naming the file, the table and the key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, fields, replace
from datetime import date
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from retrostride.assets.transforms.model_config import DetectionConfig, EnergyConfig
from retrostride.warehouse.catalog import Catalog

if TYPE_CHECKING:  # imported where a file is read: `retrostride sql` needs none of them (nor Polars)
    from retrostride.connectors.ingest.importer import ImportLimits
    from retrostride.connectors.limits import IntakeLimits
    from retrostride.warehouse.mart_config import MartConfig
    from retrostride.warehouse.profiles import AthleteProfile
    from retrostride.warehouse.publish import DuplicatePolicy


@dataclass(frozen=True)
class WatchedSource:
    """A folder (or an `s3://bucket/prefix`, kept as a string) a sensor polls: read like the inbox, or
    every file for one athlete."""

    name: str
    root: Path | str
    athlete: str | None = None


@dataclass(frozen=True)
class Settings:
    """Where retrostride keeps things.

    - `RETROSTRIDE_HOME` (default `./data`): the warehouse (catalog.sqlite and warehouse/), the Parquet
      lake, raw copies, quarantine.
    - `RETROSTRIDE_CATALOG` (default `<home>/catalog.sqlite`): the warehouse's DuckLake catalog, a
      SQLite file or `postgresql://user:password@host:port/database` (shared by several machines).
    - `RETROSTRIDE_DATA` (default `<home>/warehouse/`): the warehouse's Parquet files, a folder or
      `s3://bucket/prefix` (AWS_* env vars; AWS_ENDPOINT_URL for an S3-compatible store).
    - `RETROSTRIDE_INBOX` (default `./inbox`): files under `inbox/<athlete_id>/` belong to that athlete.
    - `RETROSTRIDE_ATHLETES` (default `<home>/athletes.toml`): athlete profiles.
    - `RETROSTRIDE_WORKERS` (default: CPU count): decoder processes for bulk imports.
    - `RETROSTRIDE_MODEL` (default `<home>/model.toml`): detection and energy settings over the defaults.
    - `RETROSTRIDE_CONFIG` (default `<home>/retrostride.toml`): import limits and plausible ranges.
    - `RETROSTRIDE_WATCH` (default none): more folders to watch, comma-separated, each `PATH` (read like
      the inbox) or `ATHLETE=PATH` (every file is that athlete's), e.g. a watch's sync folder; a PATH
      may be an `s3://bucket/prefix`.
    - `RETROSTRIDE_POLL_S` (default 5 for folders, 30 for `s3://` prefixes): seconds between a sensor's
      looks at its source.
    - `RETROSTRIDE_SETTLE_S` (default 1): how long a sensor watches a new file hold still before it
      imports it in the same tick (0: the next tick decides).
    - `RETROSTRIDE_NIGHTLY` (default `03:00`) and `RETROSTRIDE_TIMEZONE` (default `UTC`): when the
      nightly import runs.
    - `RETROSTRIDE_WARM_IDLE_S` (default 600): how long the home's warm import server waits for the
      next `retrostride import` before it exits (0: no server; every import starts from cold).
    """

    home: Path
    inbox: Path
    athletes_file: Path
    workers: int
    model_file: Path | None = None  # None: <home>/model.toml
    config_file: Path | None = None
    watch: tuple[WatchedSource, ...] = ()
    poll_s: int | None = None  # None: 5 s for folders, 30 s for object stores (each listing is a request)
    settle_s: float = 1.0
    nightly: str = "03:00"
    timezone: str = "UTC"
    catalog_url: str = ""
    data_url: str = ""
    warm_idle_s: float = 600.0

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("RETROSTRIDE_HOME", "data")).resolve()
        return cls(
            home=home,
            inbox=Path(os.environ.get("RETROSTRIDE_INBOX", "inbox")).resolve(),
            athletes_file=Path(os.environ.get("RETROSTRIDE_ATHLETES", home / "athletes.toml")).resolve(),
            workers=int(os.environ.get("RETROSTRIDE_WORKERS", os.cpu_count() or 1)),
            model_file=Path(os.environ.get("RETROSTRIDE_MODEL", home / "model.toml")).resolve(),
            config_file=Path(os.environ.get("RETROSTRIDE_CONFIG", home / "retrostride.toml")).resolve(),
            watch=parse_watch(os.environ.get("RETROSTRIDE_WATCH", "")),
            poll_s=int(os.environ["RETROSTRIDE_POLL_S"]) if os.environ.get("RETROSTRIDE_POLL_S") else None,
            settle_s=float(os.environ.get("RETROSTRIDE_SETTLE_S", 1.0)),
            nightly=os.environ.get("RETROSTRIDE_NIGHTLY", "03:00"),
            timezone=os.environ.get("RETROSTRIDE_TIMEZONE", "UTC"),
            catalog_url=os.environ.get("RETROSTRIDE_CATALOG", ""),
            data_url=os.environ.get("RETROSTRIDE_DATA", ""),
            warm_idle_s=float(os.environ.get("RETROSTRIDE_WARM_IDLE_S", 600)),
        )

    @property
    def model_path(self) -> Path:
        return self.model_file or self.home / "model.toml"

    @property
    def config_path(self) -> Path:
        return self.config_file or self.home / "retrostride.toml"

    @property
    def sources(self) -> tuple[WatchedSource, ...]:
        """Every folder the sensors poll: the inbox first, then RETROSTRIDE_WATCH."""
        return (WatchedSource("inbox", self.inbox), *self.watch)

    @property
    def catalog(self) -> Catalog:
        """The warehouse: a DuckLake catalog and its data files (under the home unless configured)."""
        return Catalog.configured(self.home, self.catalog_url, self.data_url)

    @property
    def legacy_warehouse(self) -> Path:
        """The single DuckDB file of homes from before DuckLake (`retrostride migrate` moves it)."""
        return self.home / "warehouse.duckdb"

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME", self.home / "dagster")).resolve()


class ConfigError(ValueError):
    """A configuration file cannot be used; the message says where and why."""


def check_configuration(settings: Settings) -> None:
    """Read every configuration file now (model.toml, retrostride.toml, athletes.toml), so a bad one
    stops a command before it starts, with its one-line reason, rather than from inside a run."""
    load_model_config(settings.model_path)
    load_mart_config(settings.model_path)
    load_limits(settings.config_path)
    load_duplicate_policy(settings.config_path)
    load_profiles(settings.athletes_file)


def load_limits(path: Path) -> ImportLimits:
    """Import limits from `retrostride.toml`; an absent file means the defaults.

    [import]
    max_file_mb = 512        # larger files (and archive members) are refused with a reason
    decode_timeout_s = 600   # a decoder still working after this is killed, the file explained
    max_archive_mb = 8192    # everything decompressed out of one archive, nested ones included
    max_compression_ratio = 100  # decompressed / compressed bytes of one member (zip bombs)
    max_archive_depth = 3    # archives (and .gz) inside archives
    max_archive_entries = 200000

    [plausible]              # override ranges of connectors/validate.py: column = [low, high]
    heart_rate_bpm = [25, 230]
    """
    from retrostride.connectors.ingest.importer import ImportLimits
    from retrostride.connectors.validate import plausible_ranges

    if not path.exists():
        return ImportLimits()
    try:
        config = _read_config(path)
        section = config.get("import", {})
        defaults = ImportLimits()
        unknown = set(section) - {"max_file_mb", "decode_timeout_s", *ARCHIVE_KEYS}
        if unknown:
            raise ValueError(f"[import] has unknown keys {sorted(unknown)}")
        limits = ImportLimits(
            max_file_bytes=int(float(section.get("max_file_mb", defaults.max_file_bytes / 2**20)) * 2**20),
            decode_timeout_s=float(section.get("decode_timeout_s", defaults.decode_timeout_s)),
            plausible=plausible_ranges(config.get("plausible")),
            archives=_archive_limits(section, defaults.archives),
        )
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    archives = limits.archives
    if (
        min(
            limits.max_file_bytes,
            limits.decode_timeout_s,
            archives.max_archive_bytes,
            archives.max_ratio,
            archives.max_depth,
            archives.max_members,
        )
        <= 0
    ):
        raise ConfigError(f"{path}: [import] limits must be positive")
    return limits


def load_duplicate_policy(path: Path) -> DuplicatePolicy:
    """Which copies of one run are duplicates and which is canonical, from `retrostride.toml`:

    [duplicates]
    prefer = ["richest"]      # strongest first: richest (most samples), fit, tcx, gpx, strava, garmin, file
    start_tolerance_s = 180   # one athlete's activities starting this close, with overlapping spans ...
    distance_tolerance = 0.15 # ... and distances within this share of the longer one
    """
    from retrostride.warehouse.publish import DuplicatePolicy

    if not path.exists():
        return DuplicatePolicy()
    try:
        section = _read_config(path).get("duplicates", {})
        unknown = set(section) - {"prefer", "start_tolerance_s", "distance_tolerance"}
        if unknown:
            raise ValueError(f"[duplicates] has unknown keys {sorted(unknown)}")
        defaults = DuplicatePolicy()
        prefer = section.get("prefer", list(defaults.prefer))
        if not isinstance(prefer, list) or not all(isinstance(name, str) for name in prefer):
            raise ValueError("[duplicates] prefer must be a list of names")
        return DuplicatePolicy(  # checks its own ranges
            prefer=tuple(prefer),
            start_tolerance_s=float(section.get("start_tolerance_s", defaults.start_tolerance_s)),
            distance_tolerance=float(section.get("distance_tolerance", defaults.distance_tolerance)),
        )
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as error:
        raise ConfigError(f"{path}: {error}") from None


def _read_config(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


#: `[import]` keys for archives → (IntakeLimits field, conversion).
ARCHIVE_KEYS = {
    "max_archive_mb": ("max_archive_bytes", lambda v: int(float(v) * 2**20)),
    "max_compression_ratio": ("max_ratio", float),
    "max_archive_depth": ("max_depth", int),
    "max_archive_entries": ("max_members", int),
}


def _archive_limits(section: dict, defaults: IntakeLimits) -> IntakeLimits:
    return replace(
        defaults, **{field: convert(section[key]) for key, (field, convert) in ARCHIVE_KEYS.items() if key in section}
    )


def parse_watch(value: str) -> tuple[WatchedSource, ...]:
    """`PATH,ATHLETE=PATH,...` as watched sources named after their folders (`watch_<folder>`); a PATH
    may be `s3://bucket/prefix`."""
    sources: list[WatchedSource] = []
    for entry in filter(None, (e.strip() for e in value.split(","))):
        from retrostride.connectors.object_store import is_object_url

        athlete, _, path = entry.rpartition("=")
        root = path if is_object_url(path) else Path(path).expanduser().resolve()
        last = PurePosixPath(root[len("s3://") :].rstrip("/")).name if isinstance(root, str) else root.name
        slug = "".join(c if c.isalnum() else "_" for c in last.lower()) or "root"
        name = f"watch_{slug}"
        while name in {s.name for s in sources}:
            name += "_"
        sources.append(WatchedSource(name, root, athlete or None))
    return tuple(sources)


def load_model_config(path: Path) -> tuple[DetectionConfig, EnergyConfig]:
    """Detection and energy settings from `[detection]` and `[energy]` tables of a TOML file, over
    the defaults; an absent file means the defaults.  Unknown keys and wrong types are errors, since
    a typo would otherwise silently keep a default."""
    if not path.exists():
        return DetectionConfig(), EnergyConfig()
    try:
        document = _read_config(path)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    unknown_tables = set(document) - {"detection", "energy", "marts"}
    if unknown_tables:
        raise ConfigError(f"{path}: unknown tables {sorted(unknown_tables)} (expected [detection], [energy], [marts])")
    configs = (
        _overridden(DetectionConfig(), document.get("detection", {}), f"{path} [detection]"),
        _overridden(EnergyConfig(), document.get("energy", {}), f"{path} [energy]"),
    )
    problems = [
        p for config, table in zip(configs, ("detection", "energy")) for p in _model_problems(config, f"[{table}]")
    ]
    if problems:
        raise ConfigError(f"{path}: {'; '.join(problems)}")
    return configs


def load_mart_config(path: Path) -> MartConfig:
    """The `[marts]` table of the model file over the defaults; no file or no table: the defaults.
    Unknown keys and wrong types are errors, since a typo would silently keep a default."""
    from retrostride.warehouse.mart_config import MartConfig

    if not path.exists():
        return MartConfig()
    try:
        values = _read_config(path).get("marts", {})
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    config = _overridden(MartConfig(), values, f"{path} [marts]")
    problems = [
        p
        for key, (low, high, low_open) in MART_RANGES.items()
        if (p := range_error(key, getattr(config, key), low, high, low_open)) is not None
    ]
    if config.study_session_min_minutes > config.study_session_max_minutes:
        problems.append("study_session_min_minutes is above study_session_max_minutes")
    if problems:
        raise ConfigError(f"{path} [marts]: {'; '.join(problems)}")
    return config


def load_profiles(path: Path) -> dict[str, AthleteProfile]:
    """Profiles from `[athletes.<id>]` tables; an absent file means no profiles."""
    from retrostride.warehouse.profiles import AthleteProfile

    if not path.exists():
        return {}
    try:
        document = _read_config(path)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    allowed = {f.name for f in fields(AthleteProfile)} - {"athlete_id", "ignored_keys"}
    profiles = {}
    for athlete_id, values in document.get("athletes", {}).items():
        used = {k: v for k, v in values.items() if k in allowed}
        ignored = tuple(sorted(set(values) - allowed))
        if "privacy_zones" in used:
            used["privacy_zones"] = _privacy_zones(path, athlete_id, used["privacy_zones"])
        if "strava_athlete_id" in used:
            used["strava_athlete_id"] = _account_id(path, athlete_id, used["strava_athlete_id"])
        if problem := _person_problem(used):
            raise ConfigError(f"{path}: athletes.{athlete_id}.{problem}")
        profiles[athlete_id] = AthleteProfile(athlete_id=athlete_id, ignored_keys=ignored, **used)
    return profiles


def _account_id(path: Path, athlete_id: str, value: object) -> str:
    """A platform account id as written in the export (digits), from an integer or a string."""
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise ConfigError(f"{path}: athletes.{athlete_id}.strava_athlete_id = {value!r} should be a number")
    return str(value).strip()


def _privacy_zones(path: Path, athlete_id: str, zones: object) -> tuple[dict, ...]:
    checked = []
    for zone in zones if isinstance(zones, list) else [zones]:
        try:
            lat, lon, radius = float(zone["lat"]), float(zone["lon"]), float(zone.get("radius_m", 200))
        except (TypeError, KeyError, ValueError):
            raise ConfigError(
                f"{path}: athletes.{athlete_id}.privacy_zones: each zone needs lat, lon (and radius_m)"
            ) from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
            raise ConfigError(f"{path}: athletes.{athlete_id}.privacy_zones: {zone} is not a place on Earth")
        checked.append({"lat": lat, "lon": lon, "radius_m": radius})
    return tuple(checked)


def _overridden(config, values: dict, where: str):
    """`config` with `values` over its defaults: unknown keys and values unlike the default are errors."""
    defaults = {f.name: getattr(config, f.name) for f in fields(config)}
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}")
    changes = {}
    for key, value in values.items():
        default = defaults[key]
        if isinstance(default, tuple):
            value = tuple(value) if isinstance(value, list) else value
        ok = (
            isinstance(value, type(default))
            or (isinstance(default, float) and isinstance(value, int))
            or (default is None and isinstance(value, (int, float)))
        )
        if not ok or isinstance(value, bool) != isinstance(default, bool):
            raise ConfigError(f"{where}: {key} = {value!r} should be like {default!r}")
        changes[key] = float(value) if isinstance(default, float) else value
    return dataclasses.replace(config, **changes)


def range_error(
    key: str, value: float, low: float | None, high: float | None, low_open: bool = False, high_open: bool = False
) -> str | None:
    """Why `key = value` is outside [low, high] (parentheses for open ends; None: unbounded), or None."""
    inside = math.isfinite(value) and (
        (low is None or (value > low if low_open else value >= low))
        and (high is None or (value < high if high_open else value <= high))
    )
    if inside:
        return None
    lower, upper = ("-∞" if low is None else f"{low:g}"), ("∞" if high is None else f"{high:g}")
    return f"{key} = {value!r} is outside {'(' if low_open or low is None else '['}{lower}, {upper}{')' if high_open or high is None else ']'}"


#: Detection and energy ranges besides "positive" (every other number must be > 0):
#: key → (low, high, low_open, high_open).
MODEL_RANGES = {
    "prior_intercept": (None, None, False, False),  # ln of a step length in metres: any sign
    "facing_angle_deg": (0, 180, True, False),
    "facing_share": (0, 1, True, False),
    "gait_valid_share": (0, 1, True, False),
    "enter_ratio": (0, 1, True, False),
    "leave_ratio": (0, 2, True, False),
    "speed_min_mps": (0, None, False, False),
    "coverage_margin_mps": (0, None, False, False),
    "run_min_spm": (0, 300, True, False),
    "foot_max_mean_speed_mps": (0, 15, True, False),
    "speed_only_confidence": (0, 1, True, False),
    **{
        key: (0, None, False, False)
        for key in ("min_segment_s", "max_gap_s", "max_dropout_s", "min_gait_s", "record_hold_s")
    },
    "backward_multiplier": (1, 3, True, False),  # backward costs more than forward (+35 %), never triple
    "grade_clamp": (0, 1, True, False),
    "grade_min_distance_m": (0, None, False, False),
    "resting_kcal_per_kg_h": (0, 5, False, False),
    "hr_valid_low": (0, 1, True, True),
    "hr_valid_high": (0, 1, True, False),
    "max_hr_age_slope": (0, None, False, False),
    "default_mass_kg": (20, 400, False, False),
}
#: Pairs whose first must not exceed the second.
MODEL_ORDER = (
    ("enter_ratio", "leave_ratio"),
    ("speed_min_mps", "speed_max_mps"),
    ("hr_valid_low", "hr_valid_high"),
    ("baseline_min_runs", "baseline_max_runs"),
)


def _model_problems(config: DetectionConfig | EnergyConfig, where: str) -> list[str]:
    """What in `config` is out of range, one sentence each."""
    problems = []
    for item in fields(config):
        value = getattr(config, item.name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        low, high, low_open, high_open = MODEL_RANGES.get(item.name, (0, None, True, False))
        if (problem := range_error(item.name, value, low, high, low_open, high_open)) is not None:
            problems.append(f"{where} {problem}")
    for low, high in MODEL_ORDER:
        if hasattr(config, low) and getattr(config, low) > getattr(config, high):
            problems.append(f"{where} {low} = {getattr(config, low)!r} is above {high} = {getattr(config, high)!r}")
    if isinstance(config, DetectionConfig):
        problems += [f"{where} {problem}" for problem in _calibration_problems(config)]
    return problems


def _calibration_problems(config: DetectionConfig) -> list[str]:
    """The confidence calibration's shape: a weight per feature, rising step edges, one
    probability more than edges, each in [0, 1]."""
    from retrostride.assets.transforms.confidence import FEATURES  # (Polars: not for `retrostride sql`)

    problems = [
        f"{name} has {len(getattr(config, name))} weights, not {len(FEATURES)} (one per confidence feature)"
        for name in ("calibration_backward", "calibration_forward")
        if len(getattr(config, name)) != len(FEATURES)
    ]
    edges, probabilities = config.calibration_scores, config.calibration_probabilities
    if not edges or list(edges) != sorted(edges):
        problems.append(f"calibration_scores = {list(edges)!r} must be one or more rising step edges")
    if len(probabilities) != len(edges) + 1 or not all(0 <= p <= 1 for p in probabilities):
        problems.append(
            f"calibration_probabilities must be {len(edges) + 1} probabilities in [0, 1] (one more than the edges)"
        )
    return problems


#: `[marts]` ranges: key → (low, high, low_open); study_body_fat_change_pct is the study's finding, any sign.
MART_RANGES = {
    "outcome_window_days": (7, None, False),
    "outcome_step_days": (1, None, False),
    "measurement_tolerance_days": (0, None, False),
    "streak_min_backward_minutes": (0, None, False),
    **{
        key: (0, None, True)
        for key in (
            "kcal_per_kg",
            "dynamic_kcal_per_kg_day",
            "dynamic_time_constant_days",
            "study_weeks",
            "study_sessions_per_week",
            "study_session_min_minutes",
            "study_session_max_minutes",
            "study_participants",
        )
    },
}

#: Plausible values of a person: key → (low, high).
PERSON_RANGES = {
    "birth_year": (1900, date.today().year),
    "height_cm": (50, 272),
    "weight_kg": (20, 400),
    "max_hr_bpm": (100, 250),
}


def _person_problem(values: dict) -> str | None:
    """What is wrong with a profile's values (type or range), or None."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    for key, (low, high) in PERSON_RANGES.items():
        value = values.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{key} = {value!r} should be a number"
        if problem := range_error(key, value, low, high):
            return problem
    if values.get("sex") not in (None, "female", "male"):
        return f'sex = {values["sex"]!r} should be "female" or "male"'
    if (zone := values.get("timezone")) is not None:
        try:
            ZoneInfo(str(zone))
        except (ZoneInfoNotFoundError, ValueError):
            return f'timezone = {zone!r} is not an IANA zone (like "Europe/Berlin")'
    return None
