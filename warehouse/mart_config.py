"""Every parameter of the marts (windows, tolerances, the study protocol), in one place.

The values live in the `[marts]` table of the model file (RETROSTRIDE_MODEL, default
`<home>/model.toml`) over these defaults, and are written into the warehouse's one-row
`mart_settings` table, which the views read: what a mart means is always visible in SQL.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import polars as pl

from retrostride.warehouse.ranges import range_error


@dataclass(frozen=True)
class MartConfig:
    """Parameters of the outcome windows, streaks and the study comparison (DESIGN §7)."""

    # Outcome windows: per athlete, from the Monday of their first data, every `step` days.
    outcome_window_days: int = 42  # Terblanche et al. 2005 trained for 6 weeks
    outcome_step_days: int = 7
    measurement_tolerance_days: float = 3.0  # nearest weighing at most this far from a window edge

    # Predicted change.  7700 kcal per kg of body mass lost: the static rule, an upper bound
    # (Hall 2008, Int J Obes 32:573; Thomas et al. 2013, Int J Obes 37:1611).
    kcal_per_kg: float = 7700.0
    # Dynamic estimate, first-order approximation of Hall et al. 2011 (Lancet 378:826): a lasting
    # change of 100 kJ/day (≈ 24 kcal/day) moves weight by about 1 kg eventually, ~95 % of it in
    # about 3 years (time constant ≈ 1 year).
    dynamic_kcal_per_kg_day: float = 24.0
    dynamic_time_constant_days: float = 365.0

    # Backward streaks: a day counts when its backward moving time reaches this.
    streak_min_backward_minutes: float = 0.0

    # Terblanche et al. 2005 (Int J Sports Med 26:214): 6 weeks, 3 sessions a week of 15–45 min.
    study_weeks: int = 6
    study_sessions_per_week: int = 3
    study_session_min_minutes: float = 15.0
    study_session_max_minutes: float = 45.0
    study_body_fat_change_pct: float = -2.4  # "decrease in percentage body fat (2.4 %)"
    study_participants: int = 13  # training group


#: The warehouse `mart_settings` table: one row, one column per MartConfig field.
MART_SETTINGS = pl.Schema(
    {f.name: pl.Int32 if f.type in (int, "int") else pl.Float64 for f in fields(MartConfig)}
)


class MartConfigError(ValueError):
    """The `[marts]` table cannot be used; the message says where and why."""


def load_mart_config(path: Path) -> MartConfig:
    """The `[marts]` table of the model file over the defaults; no file or no table: the defaults.
    Unknown keys and wrong types are errors, since a typo would silently keep a default."""
    if not path.exists():
        return MartConfig()
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8")).get("marts", {})
    except tomllib.TOMLDecodeError as error:
        raise MartConfigError(f"{path}: {error}") from None
    defaults = MartConfig()
    unknown = sorted(set(values) - {f.name for f in fields(MartConfig)})
    if unknown:
        raise MartConfigError(f"{path} [marts]: unknown keys {unknown}")
    changes = {}
    for key, value in values.items():
        default = getattr(defaults, key)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (isinstance(default, int) and not isinstance(value, int)):
            raise MartConfigError(f"{path} [marts]: {key} = {value!r} should be like {default!r}")
        changes[key] = type(default)(value)
    config = dataclasses.replace(defaults, **changes)
    problems = [p for key, (low, high, low_open) in _RANGES.items()
                if (p := range_error(key, getattr(config, key), low, high, low_open)) is not None]
    if config.study_session_min_minutes > config.study_session_max_minutes:
        problems.append("study_session_min_minutes is above study_session_max_minutes")
    if problems:
        raise MartConfigError(f"{path} [marts]: {'; '.join(problems)}")
    return config


#: key → (low, high, low_open); study_body_fat_change_pct is the study's finding, any sign.
_RANGES = {
    "outcome_window_days": (7, None, False), "outcome_step_days": (1, None, False),
    "measurement_tolerance_days": (0, None, False), "streak_min_backward_minutes": (0, None, False),
    **{key: (0, None, True) for key in ("kcal_per_kg", "dynamic_kcal_per_kg_day", "dynamic_time_constant_days", "study_weeks",
                                         "study_sessions_per_week", "study_session_min_minutes", "study_session_max_minutes",
                                         "study_participants")},
}


def settings_row(config: MartConfig) -> pl.DataFrame:
    """`config` as the one row of `mart_settings`."""
    return pl.DataFrame([dataclasses.asdict(config)], schema=MART_SETTINGS)
