"""Every threshold and constant of backward detection and energy (DESIGN §5–§6), with versions.

A config's `model_version` is its code version plus a hash of its values, so changing one threshold
changes the version of exactly the rows it affects: detection changes move segments and energy,
energy-only changes move energy alone (rows carrying kcal use `energy_row_version`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

#: Bump when detection code changes what it outputs for the same configuration.
DETECTION_CODE_VERSION = "d4"
#: Bump when energy code changes what it outputs for the same configuration.
ENERGY_CODE_VERSION = "e1"

#: DESIGN §5.2: "backward(s)", "retro", "reverse" in several languages.
BACKWARD_WORDS: tuple[str, ...] = (
    "backward",
    "backwards",
    "retro",
    "reverse",
    "rückwärts",
    "à reculons",
    "marcha atrás",
    "all'indietro",
)


def _version(code_version: str, config: object) -> str:
    values = json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)
    return f"{code_version}.{hashlib.sha256(values.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class DetectionConfig:
    """Backward-running detection (DESIGN §5); the defaults are the design's."""

    # Labels (§5.2): whole words in lap, workout-step, activity names and descriptions.
    label_words: tuple[str, ...] = BACKWARD_WORDS
    label_case_sensitive: bool = False
    label_accent_sensitive: bool = False

    # Facing vs GPS course (§5.1).
    facing_angle_deg: float = 135.0
    facing_share: float = 0.70  # of a window's samples; <= 1 − share counts as facing forward
    facing_window_s: float = 10.0
    facing_min_samples: int = 5
    course_lag_samples: int = 2  # course from the positions this many samples before and after

    # Gait signature (§5.3).
    gait_window_s: float = 10.0  # rolling median of speed, cadence and step length
    gait_sampling_share: float = 3.0  # windows widen (×2, ×3 …) until this × the median sampling interval fits
    speed_smooth_s: float = 5.0  # a sample's speed for the 1.2–4.5 m/s check, over this window
    gait_min_samples: int = 3  # valid samples in a window, else the window says nothing
    gait_valid_share: float = 0.8  # of a window's samples: valid speed and a cadence
    gait_max_cadence_spread: float = 0.05  # MAD / median of a window's running cadences; more: unsteady, says nothing
    enter_ratio: float = 0.85  # r = L / L_fwd(v) at or below: enter backward
    leave_ratio: float = 0.90  # at or above: leave backward (hysteresis)
    run_min_spm: float = 140.0  # below: walking, not scored against the running baseline
    speed_min_mps: float = 1.2  # samples outside 1.2–4.5 m/s are dropped from gait evidence
    speed_max_mps: float = 4.5
    slow_step_exponent: float = 1.0  # below a baseline's speeds: L ∝ v^max(b, this) (1: constant cadence)
    activity_level_floor: float = 0.93  # a run's median step ratio below 1 (down to this) becomes its 1
    coverage_margin_mps: float = 0.25  # score speeds up to this above the baseline's (below: constant cadence)

    # Forward gait baseline (§5.3): robust fit of log L on log v per athlete.
    baseline_min_runs: int = 5
    baseline_min_run_samples: int = 60  # training samples for an activity to count as a run
    baseline_bin_mps: float = 0.1  # per-run speed bins whose medians are fitted
    baseline_min_bin_samples: int = 5
    baseline_coverage_min_samples: int = 30  # inlier samples in a speed bin to call it covered
    baseline_tukey_c: float = 4.685  # Tukey biweight tuning constant (95 % Gaussian efficiency)
    baseline_iterations: int = 10
    running_sports: tuple[str, ...] = ("running",)  # a null sport is accepted too
    # Scored for direction and energy (a null sport too); other sports get one 'unknown' segment, no kcal.
    foot_sports: tuple[str, ...] = ("running", "walking", "hiking", "generic", "training")
    foot_max_mean_speed_mps: float = 6.5  # faster on average (moving): not on foot, whatever the sport says
    baseline_screen_ratio: float = 0.88  # points this far below the athlete's level (prior slope) are not fitted
    baseline_max_runs: int = 60  # the athlete's latest running activities the baseline is fitted on

    # Cold start (assets/transforms/gait_prior.py has the sources): ln L = a + b·ln v from the literature.
    prior_intercept: float = -0.777  # a: 0.987 m steps at 2.6 m/s
    prior_slope: float = 0.80  # b
    prior_sd: float = 0.08  # between-runner spread of ln L at one speed
    prior_height_cm: float = 172.0  # the height the prior's level stands for (scaled by height^(1 − b/2))
    prior_speed_min_mps: float = 2.4  # speeds the prior is trusted at (van Oeveren 2017 measured 2.4–2.9)
    prior_speed_max_mps: float = 4.5
    run_offset_sd: float = 0.03  # one run's forward level around the athlete's own, ln L
    prior_z: float = 1.0  # backward thresholds move down by exp(z · the baseline's level uncertainty)
    prior_z_forward: float = 0.5  # forward thresholds move up by exp(this · the uncertainty)

    # Speed where gait cannot speak (assets/transforms/speed_evidence.py): faster than the backward records.
    speed_only_window_s: float = 600.0
    speed_only_forward_mps: float = 4.6  # backward records' power law (mile 4.88, marathon 3.22 m/s) at 10 min
    speed_only_confidence: float = 0.9  # of a segment only speed supports

    # Segments (§5.4).
    min_segment_s: float = 30.0  # shorter forward/backward stretches become unknown
    max_gap_s: float = 10.0  # gaps (stops) up to this between same-direction stretches are merged
    max_dropout_s: float = 30.0  # and moving but unscored (cadence lost, window edges) up to this
    min_gait_s: float = 30.0  # shorter run/walk stretches take their neighbour's gait
    record_hold_s: float = 1.0  # after a recording gap > max_gap_s, a sample stands for this long
    still_speed_mps: float = 0.5  # slower (smoothed) is standing still; a longer stop than max_gap_s is a pause

    # Confidence (assets/transforms/confidence.py), fitted by benchmarks/calibrate_confidence.py:
    # score weights over its FEATURES per direction, then the score → probability steps
    # (calibration_scores: the steps' upper edges; one probability more than edges).
    calibration_backward: tuple[float, ...] = (2.790, 2.790, 0.763, 0.048, 0.000, 0.000, 0.200, -1.650)
    calibration_forward: tuple[float, ...] = (1.657, -0.697, 13.061, 0.355, 0.000, 0.000, 0.518, 12.569)
    calibration_scores: tuple[float, ...] = (
        1.348,
        2.124,
        2.530,
        2.753,
        2.956,
        3.120,
        3.283,
        3.383,
        3.602,
        3.730,
        3.880,
        3.952,
        4.126,
        4.286,
        4.438,
        4.784,
        5.678,
        6.183,
    )
    calibration_probabilities: tuple[float, ...] = (
        0.292,
        0.797,
        0.902,
        0.940,
        0.962,
        0.973,
        0.978,
        0.982,
        0.983,
        0.985,
        0.990,
        0.991,
        0.993,
        0.995,
        0.996,
        0.996,
        0.998,
        1.000,
        1.000,
    )

    @property
    def model_version(self) -> str:
        """Short, stable: code version + hash of the values."""
        return _version(DETECTION_CODE_VERSION, self)


@dataclass(frozen=True)
class EnergyConfig:
    """Energy model (DESIGN §6); the defaults are the design's."""

    # Minetti et al. 2002 (J Appl Physiol 93:1039) net cost, J/kg/m, coefficients i^5 … i^0.
    minetti_run: tuple[float, ...] = (155.4, -30.4, -43.3, 46.3, 19.5, 3.6)
    minetti_walk: tuple[float, ...] = (280.5, -58.7, -76.8, 51.9, 19.6, 2.5)
    grade_clamp: float = 0.45  # Minetti's measured range
    grade_window_s: float = 30.0  # grade = Δ smoothed altitude / Δ distance over this window
    grade_min_distance_m: float = 10.0  # less horizontal distance than this: level
    joules_per_kcal: float = 4184.0

    # +35 ± 6 % at 3.0 m/s: Wright & Weyand 2001 (J Exp Biol 204:1805); +35 %: Rasica et al. 2020.
    backward_multiplier: float = 1.35
    resting_kcal_per_kg_h: float = 1.0  # 1 MET; gross = net + this
    max_record_interval_s: float = 10.0  # longer recording gaps (pauses) cost nothing

    # ACSM metabolic equations (mL O2/kg/min, S in m/min, G grade): rest, speed, speed×grade.
    acsm_run: tuple[float, float, float] = (3.5, 0.2, 0.9)
    acsm_walk: tuple[float, float, float] = (3.5, 0.1, 1.8)
    kcal_per_l_o2: float = 5.0

    # Keytel et al. 2005 (J Sports Sci 23:289), kJ/min: intercept, HR, weight kg, age y.
    keytel_male: tuple[float, float, float, float] = (-55.0969, 0.6309, 0.1988, 0.2017)
    keytel_female: tuple[float, float, float, float] = (-20.4022, 0.4472, -0.1263, 0.0740)
    hr_valid_low: float = 0.57  # share of max HR where Keytel holds
    hr_valid_high: float = 0.90
    # Tanaka et al. 2001 (J Am Coll Cardiol 37:153): HRmax = 208 − 0.7 · age.
    max_hr_intercept: float = 208.0
    max_hr_age_slope: float = 0.7

    default_mass_kg: float = 70.0  # no measurement and no profile weight: a reference adult
    mass_max_age_days: float | None = None  # older measurements are ignored when set

    @property
    def model_version(self) -> str:
        """Short, stable: code version + hash of the values (energy only)."""
        return _version(ENERGY_CODE_VERSION, self)


def energy_row_version(detection_version: str, energy: EnergyConfig) -> str:
    """The version of a row carrying kcal: the detection it rests on plus the energy model."""
    return f"{detection_version}+{energy.model_version}"
