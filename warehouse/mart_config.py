"""Every parameter of the marts (windows, tolerances, the study protocol), in one place.

The values live in the `[marts]` table of the model file (RETROSTRIDE_MODEL, default
`<home>/model.toml`) over these defaults, and are written into the warehouse's one-row
`mart_settings` table, which the views read: what a mart means is always visible in SQL.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

import polars as pl


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
MART_SETTINGS = pl.Schema({f.name: pl.Int32 if f.type in (int, "int") else pl.Float64 for f in fields(MartConfig)})


def settings_row(config: MartConfig) -> pl.DataFrame:
    """`config` as the one row of `mart_settings`."""
    return pl.DataFrame([dataclasses.asdict(config)], schema=MART_SETTINGS)
