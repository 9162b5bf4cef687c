"""Athlete profiles from a TOML file (an athlete without one gets defaults and a warning from the import)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class AthleteProfile:
    """What the energy model needs to know about a person, with neutral defaults."""

    athlete_id: str
    sex: str | None = None  # "female" | "male"
    birth_year: int | None = None
    height_cm: float | None = None
    weight_kg: float | None = None
    timezone: str | None = None  # IANA zone, used when a file does not say its UTC offset
    max_hr_bpm: float | None = None  # measured; else estimated from age for the heart-rate energy check
    ignored_keys: tuple[str, ...] = ()  # keys in the file this version does not use (typos show here)


class ProfileError(ValueError):
    """The profile file cannot be used; the message says where and why."""


def load_profiles(path: Path) -> dict[str, AthleteProfile]:
    """Profiles from `[athletes.<id>]` tables; an absent file means no profiles."""
    if not path.exists():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{path}: {error}") from None
    allowed = {f.name for f in fields(AthleteProfile)} - {"athlete_id", "ignored_keys"}
    profiles = {}
    for athlete_id, values in document.get("athletes", {}).items():
        used = {k: v for k, v in values.items() if k in allowed}
        ignored = tuple(sorted(set(values) - allowed))
        profiles[athlete_id] = AthleteProfile(athlete_id=athlete_id, ignored_keys=ignored, **used)
    return profiles



def profiles_frame(profiles: dict[str, AthleteProfile]) -> pl.DataFrame:
    """Profiles as the energy model reads them (athlete_id, sex, birth_year, weight_kg, max_hr_bpm)."""
    columns = ("athlete_id", "sex", "birth_year", "weight_kg", "max_hr_bpm")
    return pl.DataFrame([{c: getattr(p, c) for c in columns} for p in profiles.values()], schema=columns, orient="row")
