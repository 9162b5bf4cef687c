"""Athlete profiles from a TOML file (an athlete without one gets defaults and a warning from the import)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

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
        if "privacy_zones" in used:
            used["privacy_zones"] = _privacy_zones(path, athlete_id, used["privacy_zones"])
        profiles[athlete_id] = AthleteProfile(athlete_id=athlete_id, ignored_keys=ignored, **used)
    return profiles



def profiles_frame(profiles: dict[str, AthleteProfile]) -> pl.DataFrame:
    """Profiles as the energy model reads them (athlete_id, sex, birth_year, weight_kg, max_hr_bpm)."""
    columns = ("athlete_id", "sex", "birth_year", "weight_kg", "max_hr_bpm")
    return pl.DataFrame([{c: getattr(p, c) for c in columns} for p in profiles.values()], schema=columns, orient="row")


def _privacy_zones(path: Path, athlete_id: str, zones: object) -> tuple[dict, ...]:
    checked = []
    for zone in zones if isinstance(zones, list) else [zones]:
        try:
            lat, lon, radius = float(zone["lat"]), float(zone["lon"]), float(zone.get("radius_m", 200))
        except (TypeError, KeyError, ValueError):
            raise ProfileError(f"{path}: athletes.{athlete_id}.privacy_zones: each zone needs lat, lon (and radius_m)") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180 and radius > 0):
            raise ProfileError(f"{path}: athletes.{athlete_id}.privacy_zones: {zone} is not a place on Earth")
        checked.append({"lat": lat, "lon": lon, "radius_m": radius})
    return tuple(checked)


def privacy_zones_frame(profiles: dict[str, AthleteProfile]) -> pl.DataFrame:
    """Every configured privacy zone (athlete_id, lat_deg, lon_deg, radius_m, source)."""
    rows = [
        {"athlete_id": p.athlete_id, "lat_deg": z["lat"], "lon_deg": z["lon"], "radius_m": z["radius_m"], "source": "profile"}
        for p in profiles.values() for z in p.privacy_zones
    ]
    return pl.DataFrame(rows, schema=PRIVACY_ZONES)
