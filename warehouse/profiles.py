"""Athlete profiles as plain values and as frames (loaded by `assets.settings`; an athlete without one gets defaults)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from retrostride.warehouse.schema import PRIVACY_ZONES


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
    privacy_zones: tuple[dict, ...] = ()  # {lat, lon, radius_m}: positions within are not served
    strava_athlete_id: str | None = None  # the Strava account whose exports are this athlete's
    ignored_keys: tuple[str, ...] = ()  # keys in the file this version does not use (typos show here)


def profiles_frame(profiles: dict[str, AthleteProfile]) -> pl.DataFrame:
    """Profiles as the energy model and the gait prior read them (athlete_id, sex, birth_year, weight_kg,
    max_hr_bpm, height_cm)."""
    columns = ("athlete_id", "sex", "birth_year", "weight_kg", "max_hr_bpm", "height_cm")
    return pl.DataFrame([{c: getattr(p, c) for c in columns} for p in profiles.values()], schema=columns, orient="row")


def privacy_zones_frame(profiles: dict[str, AthleteProfile]) -> pl.DataFrame:
    """Every configured privacy zone (athlete_id, lat_deg, lon_deg, radius_m, source)."""
    rows = [
        {
            "athlete_id": p.athlete_id,
            "lat_deg": z["lat"],
            "lon_deg": z["lon"],
            "radius_m": z["radius_m"],
            "source": "profile",
        }
        for p in profiles.values()
        for z in p.privacy_zones
    ]
    return pl.DataFrame(rows, schema=PRIVACY_ZONES)
