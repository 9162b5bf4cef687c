"""Body-weight history: readings from a bioimpedance scale every few days, drifting by profile."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .profiles import Athlete
from .randomness import Noise

# Fat-free mass is ~73 % water (Pace & Rathbun 1945, J Biol Chem 158:685).
WATER_PER_FAT_FREE_KG = 0.732
# Skeletal muscle ≈ 38 % (men) / 31 % (women) of body mass (Janssen et al. 2000, J Appl Physiol 89:81).
MUSCLE_SHARE = {"male": 0.384, "female": 0.306}
# Scales report bone mass ≈ 5.5 % of fat-free mass (typical of consumer bioimpedance scales).
BONE_PER_FAT_FREE_KG = 0.055


def weight_readings(
    athlete: Athlete, seed: int, start: date, weeks: int, every_days: tuple[int, int] = (1, 3)
) -> list[dict]:
    """Morning readings from `start` over `weeks` weeks, `every_days` apart (a range): ts (UTC),
    local_day and body composition.

    Weight follows the profile's trend (e.g. −0.05 kg/week for the backward-heavy athlete) with
    ±0.3 kg day-to-day noise; body fat its own trend with ±0.4 points of scale noise.
    """
    noise = Noise(seed, athlete.id, "weight")
    zone = ZoneInfo(athlete.timezone)
    day, end = start + timedelta(days=noise.integer(0, every_days[0] - 1)), start + timedelta(weeks=weeks)
    readings = []
    while day < end:
        elapsed_weeks = (day - start).days / 7.0
        local = datetime.combine(day, time(0)) + timedelta(seconds=round(noise.uniform_scalar(6.5, 8.0) * 3600))
        weight = round(
            athlete.weight_kg + athlete.weight_trend_kg_per_week * elapsed_weeks + noise.rng.gauss(0, 0.3), 1
        )
        fat = round(athlete.body_fat_pct + athlete.fat_trend_pct_per_week * elapsed_weeks + noise.rng.gauss(0, 0.4), 1)
        fat_free = weight * (1.0 - fat / 100.0)
        readings.append(
            {
                "ts": local.replace(tzinfo=zone).astimezone(UTC),
                "local_day": day,
                "weight_kg": weight,
                "body_fat_pct": fat,
                "body_water_pct": round(100.0 * WATER_PER_FAT_FREE_KG * fat_free / weight, 1),
                "muscle_mass_kg": round(MUSCLE_SHARE[athlete.sex] * weight + noise.rng.gauss(0, 0.2), 1),
                "bone_mass_kg": round(BONE_PER_FAT_FREE_KG * fat_free, 1),
                "bmi": round(weight / (athlete.height_cm / 100.0) ** 2, 1),
            }
        )
        day += timedelta(days=noise.integer(*every_days))
    return readings
