"""The cast of sample athletes: who they are, where they run, how they stride, what they wear."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from .randomness import Noise


@dataclass(frozen=True)
class Device:
    """The watch that records an athlete's runs (FIT `file_id` / `device_info`)."""

    name: str
    garmin_product: int  # FIT profile `garmin_product` number
    serial_number: int
    legacy_speed_fields: bool  # records carry `speed`/`altitude` instead of `enhanced_*`
    running_dynamics: bool  # chest strap / pod: step length, stance time, vertical oscillation
    auto_pause: bool  # timer stops (and records pause) while standing


@dataclass(frozen=True)
class Athlete:
    """One athlete's profile, gait and habits; everything the generator varies by person."""

    id: str
    sex: str  # "female" | "male"
    birth_year: int
    height_cm: float
    weight_kg: float  # at the start of the export
    body_fat_pct: float
    timezone: str  # IANA zone
    city: str
    home_lat: float
    home_lon: float
    home_alt_m: float
    climate_c: tuple[float, ...]  # monthly mean air temperature, Jan..Dec (approximate normals)
    device: Device
    # Gait (DESIGN §5): forward step length L_fwd(v) = a·v^b; backward L = r·L_fwd(v).
    step_a: float
    step_b: float
    backward_ratio: float
    stance_ms_at_3: float  # forward ground-contact time at 3 m/s
    hr_rest: int
    hr_max: int
    # Habits
    start_hours: tuple[float, float]  # local clock window for starting a session
    easy_speed_mps: float
    backward_speed_mps: tuple[float, float]
    backward_from_week: int
    backward_share: float  # share of sessions (from `backward_from_week`) with backward intervals
    labelled_share: float  # share of backward sessions labelled by a workout / track name
    walk_share: float
    weight_trend_kg_per_week: float
    fat_trend_pct_per_week: float
    # Weeks [first, last) of the Terblanche et al. (2005) protocol: 3 sessions a week of 15–45 backward minutes.
    protocol_weeks: tuple[int, int] = (0, 0)

    def step_length_fwd(self, v: float) -> float:
        """Forward step length (m) at speed v (m/s)."""
        return self.step_a * v**self.step_b

    def profile_row(self) -> dict[str, object]:
        """The athlete as written to `athletes.toml`."""
        return {
            "sex": self.sex,
            "birth_year": self.birth_year,
            "height_cm": self.height_cm,
            "weight_kg": self.weight_kg,
            "body_fat_pct": self.body_fat_pct,
            "timezone": self.timezone,
            "city": self.city,
            "home_lat": self.home_lat,
            "home_lon": self.home_lon,
            "hr_rest": self.hr_rest,
            "hr_max": self.hr_max,
            "device": self.device.name,
            "running_dynamics": self.device.running_dynamics,
            "auto_pause": self.device.auto_pause,
            # Generator truth for the gait model, handy when testing the detector.
            "step_a": self.step_a,
            "step_b": self.step_b,
            "backward_ratio": self.backward_ratio,
        }


def _gait(step_at_3: float, b: float) -> dict[str, float]:
    """a and b of L_fwd = a·v^b from the step length at 3 m/s.

    b ≈ 0.7–0.8: step length grows faster with speed than cadence does (cadence rises only
    ~10–15 % from 2.5 to 4 m/s; Cavanagh & Kram 1989, Med Sci Sports Exerc 21:467).  With
    b ≈ 0.6 forward cadence at 1.8 m/s would fall below the detector's 140 spm running floor.
    """
    return {"step_a": round(step_at_3 / 3.0**b, 4), "step_b": b}


# Approximate monthly climate normals (°C), Jan..Dec.
_BERLIN = (0.6, 1.8, 5.0, 9.9, 14.6, 17.7, 19.8, 19.3, 15.1, 10.0, 5.1, 1.8)
_NEW_YORK = (0.5, 1.7, 5.6, 11.8, 17.3, 22.4, 25.4, 24.8, 20.8, 14.6, 8.9, 3.6)
_SYDNEY = (23.1, 23.1, 21.9, 19.2, 16.2, 13.7, 12.9, 14.0, 16.5, 18.7, 20.4, 22.1)
_TOKYO = (5.4, 6.1, 9.4, 14.3, 18.8, 21.9, 25.7, 26.9, 23.3, 18.0, 12.5, 7.7)
_LAGOS = (27.3, 28.3, 28.6, 28.1, 27.3, 26.0, 25.3, 25.2, 25.7, 26.4, 27.6, 27.4)
_SAO_PAULO = (22.9, 23.2, 22.5, 20.8, 18.4, 17.4, 16.9, 18.1, 19.0, 20.3, 21.1, 22.2)

_CAST: tuple[Athlete, ...] = (
    # The backward-heavy one: a young woman following the Terblanche et al. (2005) protocol.
    Athlete(
        id="alice",
        sex="female",
        birth_year=1999,
        height_cm=166.0,
        weight_kg=62.0,
        body_fat_pct=27.0,
        timezone="Europe/Berlin",
        city="Berlin",
        home_lat=52.5145,
        home_lon=13.3501,
        home_alt_m=34.0,
        climate_c=_BERLIN,
        device=Device("Forerunner 265S", 4258, 3421770411, False, True, False),
        **_gait(1.04, 0.74),
        backward_ratio=0.68,
        stance_ms_at_3=262.0,
        hr_rest=54,
        hr_max=194,
        start_hours=(6.5, 8.0),
        easy_speed_mps=2.85,
        backward_speed_mps=(1.9, 2.6),
        backward_from_week=1,
        backward_share=0.7,
        labelled_share=0.6,
        walk_share=0.05,
        weight_trend_kg_per_week=-0.05,
        fat_trend_pct_per_week=-0.12,
        protocol_weeks=(1, 9),
    ),
    Athlete(
        id="bruno",
        sex="male",
        birth_year=1986,
        height_cm=181.0,
        weight_kg=79.0,
        body_fat_pct=18.5,
        timezone="America/New_York",
        city="New York",
        home_lat=40.7812,
        home_lon=-73.9665,
        home_alt_m=35.0,
        climate_c=_NEW_YORK,
        device=Device("Forerunner 935", 2691, 3901266017, True, True, True),
        **_gait(1.10, 0.78),
        backward_ratio=0.74,
        stance_ms_at_3=248.0,
        hr_rest=50,
        hr_max=184,
        start_hours=(18.0, 19.5),
        easy_speed_mps=3.1,
        backward_speed_mps=(1.8, 2.4),
        backward_from_week=0,
        backward_share=0.2,
        labelled_share=0.5,
        walk_share=0.08,
        weight_trend_kg_per_week=0.01,
        fat_trend_pct_per_week=0.0,
    ),
    # Early runs in Sydney (UTC+10/+11) start on the previous UTC day.
    Athlete(
        id="chen",
        sex="male",
        birth_year=1992,
        height_cm=172.0,
        weight_kg=68.0,
        body_fat_pct=16.0,
        timezone="Australia/Sydney",
        city="Sydney",
        home_lat=-33.8966,
        home_lon=151.2335,
        home_alt_m=40.0,
        climate_c=_SYDNEY,
        device=Device("Forerunner 255", 3992, 3388170265, False, True, False),
        **_gait(1.08, 0.74),
        backward_ratio=0.63,
        stance_ms_at_3=271.0,
        hr_rest=56,
        hr_max=190,
        start_hours=(5.5, 6.75),
        easy_speed_mps=2.75,
        backward_speed_mps=(1.5, 2.1),
        backward_from_week=0,
        backward_share=0.35,
        labelled_share=0.4,
        walk_share=0.2,
        weight_trend_kg_per_week=-0.02,
        fat_trend_pct_per_week=-0.03,
    ),
    Athlete(
        id="dara",
        sex="female",
        birth_year=1984,
        height_cm=160.0,
        weight_kg=55.0,
        body_fat_pct=25.0,
        timezone="Asia/Tokyo",
        city="Tokyo",
        home_lat=35.6717,
        home_lon=139.6949,
        home_alt_m=40.0,
        climate_c=_TOKYO,
        device=Device("fenix 7S", 3905, 3514400128, False, False, True),
        **_gait(1.02, 0.76),
        backward_ratio=0.71,
        stance_ms_at_3=266.0,
        hr_rest=58,
        hr_max=186,
        start_hours=(6.0, 7.0),
        easy_speed_mps=2.8,
        backward_speed_mps=(1.7, 2.3),
        backward_from_week=2,
        backward_share=0.5,
        labelled_share=0.7,
        walk_share=0.1,
        weight_trend_kg_per_week=-0.03,
        fat_trend_pct_per_week=-0.08,
    ),
    Athlete(
        id="emeka",
        sex="male",
        birth_year=1995,
        height_cm=178.0,
        weight_kg=74.0,
        body_fat_pct=14.0,
        timezone="Africa/Lagos",
        city="Lagos",
        home_lat=6.4541,
        home_lon=3.3947,
        home_alt_m=18.0,
        climate_c=_LAGOS,
        device=Device("Forerunner 55", 3869, 3650012295, False, False, False),
        **_gait(1.08, 0.77),
        backward_ratio=0.77,
        stance_ms_at_3=244.0,
        hr_rest=52,
        hr_max=193,
        start_hours=(5.5, 6.5),
        easy_speed_mps=3.2,
        backward_speed_mps=(2.0, 2.6),
        backward_from_week=0,
        backward_share=0.25,
        labelled_share=0.3,
        walk_share=0.05,
        weight_trend_kg_per_week=0.0,
        fat_trend_pct_per_week=0.0,
    ),
    Athlete(
        id="fatima",
        sex="female",
        birth_year=1990,
        height_cm=164.0,
        weight_kg=60.0,
        body_fat_pct=24.0,
        timezone="America/Sao_Paulo",
        city="São Paulo",
        home_lat=-23.5874,
        home_lon=-46.6576,
        home_alt_m=760.0,
        climate_c=_SAO_PAULO,
        device=Device("Forerunner 965", 4315, 3700551903, False, True, True),
        **_gait(1.05, 0.75),
        backward_ratio=0.66,
        stance_ms_at_3=258.0,
        hr_rest=55,
        hr_max=189,
        start_hours=(7.0, 8.5),
        easy_speed_mps=2.9,
        backward_speed_mps=(1.8, 2.5),
        backward_from_week=1,
        backward_share=0.45,
        labelled_share=0.5,
        walk_share=0.1,
        weight_trend_kg_per_week=-0.04,
        fat_trend_pct_per_week=-0.1,
    ),
)

ATHLETE_IDS: tuple[str, ...] = tuple(a.id for a in _CAST)

#: The scale that writes the weight-scale FIT files.
SCALE = Device("Index S2 Smart Scale", 3461, 3119044870, False, False, False)


def cast(count: int, seed: int) -> list[Athlete]:
    """`count` athletes, cycling the fixed cast; repeats (``alice2``…) are perturbed by `seed`."""
    athletes = []
    for i in range(count):
        base, cycle = _CAST[i % len(_CAST)], i // len(_CAST)
        athletes.append(base if cycle == 0 else _variant(base, cycle + 1, seed))
    return athletes


def _variant(base: Athlete, number: int, seed: int) -> Athlete:
    """Another athlete like `base`: same city and habits, a slightly different body and gait."""
    noise = Noise(seed, "profile", base.id, number)

    def scale(spread: float) -> float:
        return 1.0 + noise.uniform_scalar(-spread, spread)

    return replace(
        base,
        id=f"{base.id}{number}",
        birth_year=base.birth_year + noise.integer(-8, 8),
        height_cm=round(base.height_cm * scale(0.04), 1),
        weight_kg=round(base.weight_kg * scale(0.08), 1),
        home_lat=round(base.home_lat + noise.uniform_scalar(-0.03, 0.03), 4),
        home_lon=round(base.home_lon + noise.uniform_scalar(-0.03, 0.03), 4),
        device=replace(base.device, serial_number=base.device.serial_number + number),
        step_a=round(base.step_a * scale(0.04), 4),
        backward_ratio=round(min(0.78, max(0.60, base.backward_ratio * scale(0.05))), 3),
        stance_ms_at_3=round(base.stance_ms_at_3 * scale(0.05), 1),
    )


def write_athletes_toml(path: Path, athletes: list[Athlete]) -> None:
    """Write `[athletes.<id>]` tables: profile, zone, device and the gait truth."""
    lines = ["# Sample-export athletes: profiles and the generator's gait truth.", ""]
    for athlete in athletes:
        lines.append(f"[athletes.{athlete.id}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in athlete.profile_row().items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a valid TOML basic string
    return repr(value)
