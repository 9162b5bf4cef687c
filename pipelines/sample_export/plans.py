"""Training plans: which sessions each athlete does, when, and the phases each session is made of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .profiles import Athlete
from .randomness import Noise

GPX_SHARE = 0.2  # about 80 % of activities are FIT files, 20 % GPX
PROTOCOL_SESSIONS_PER_WEEK = 3  # Terblanche et al. 2005: 3 backward sessions a week


@dataclass(frozen=True)
class TrainingVolume:
    """How much the athletes train and how it is recorded (the defaults: a few months' sample export).

    A long history for benchmarks trains less often, runs longer, and records fewer GPX files.
    """

    weekly_sessions: tuple[int, ...] = (2, 3, 3, 3, 3, 3, 3, 4, 4)  # sessions in a week: one of these
    easy_minutes: tuple[int, int] = (14, 30)  # the steady part of an easy run
    gpx_share: float = GPX_SHARE
    weigh_in_days: tuple[int, int] = (1, 3)  # days between weigh-ins: from, to


@dataclass(frozen=True)
class Phase:
    """A stretch of constant intent: run, run backward, walk, or stand (at a light)."""

    kind: str  # "run" | "backward" | "walk" | "stop"
    duration_s: int
    speed_mps: float  # target speed (0 for "stop")
    step: int  # the workout step (labelled sessions) or logical block it belongs to


@dataclass(frozen=True)
class WorkoutStep:
    """A FIT `workout_step`: its name is the label a watch shows ("Backward 3 min")."""

    name: str
    intensity: str  # FIT `intensity`: warmup, active, recovery, cooldown
    duration_s: int


@dataclass(frozen=True)
class SessionPlan:
    """One activity: when it starts, how it is recorded, and its phases."""

    athlete_id: str
    number: int  # running index within the athlete's history
    sport: str  # "running" | "walking"
    format: str  # "fit" | "gpx"
    labelled: bool  # backward intervals named by a workout (FIT) or track name (GPX)
    name: str  # workout name (labelled FIT) or GPX track name
    start_utc: datetime
    local_start: datetime  # naive local wall clock
    utc_offset_s: int
    phases: tuple[Phase, ...]
    steps: tuple[WorkoutStep, ...]  # the workout; empty unless labelled

    @property
    def file(self) -> str:
        """Path relative to the export folder."""
        return f"{self.athlete_id}/{self.local_start:%Y-%m-%d-%H-%M-%S}.{self.format}"

    @property
    def has_backward(self) -> bool:
        return any(p.kind == "backward" for p in self.phases)

    @property
    def duration_s(self) -> int:
        return sum(p.duration_s for p in self.phases)


def plan_sessions(
    athlete: Athlete, seed: int, weeks: int, start: date, volume: TrainingVolume = TrainingVolume()
) -> list[SessionPlan]:
    """Every session of `athlete` over `weeks` weeks from `start` (local dates), in order."""
    zone = ZoneInfo(athlete.timezone)
    plans: list[SessionPlan] = []
    backward_sessions = 0
    for week in range(weeks):
        noise = Noise(seed, athlete.id, "week", week)
        count = noise.pick(volume.weekly_sessions)
        protocol = athlete.protocol_weeks[0] <= week < athlete.protocol_weeks[1]
        if protocol:
            count = max(count, PROTOCOL_SESSIONS_PER_WEEK)
        days = sorted(noise.rng.sample(range(7), count))
        protocol_days = set(noise.rng.sample(days, PROTOCOL_SESSIONS_PER_WEEK)) if protocol else set()
        for day in days:
            local_day = start + timedelta(days=7 * week + day)
            kind = "protocol" if day in protocol_days else _session_kind(athlete, week, noise)
            number = len(plans)
            session = Noise(seed, athlete.id, "session", number)
            hour = session.uniform_scalar(*athlete.start_hours) + (1.5 if local_day.weekday() >= 5 else 0)
            local = datetime.combine(local_day, time(0)) + timedelta(seconds=round(hour * 3600))
            aware = local.replace(tzinfo=zone)
            fmt = "gpx" if session.chance(volume.gpx_share) else "fit"
            # The first backward session is labelled and the second not, so even a short export has
            # both; after that, labels follow the athlete's habit.
            backward = kind in ("backward", "protocol")
            labelled = backward and (
                backward_sessions == 0 or (backward_sessions > 1 and session.chance(athlete.labelled_share))
            )
            backward_sessions += backward
            phases, steps = _BUILDERS[kind](athlete, session, volume)
            sport = "walking" if kind == "walk" else "running"
            plans.append(
                SessionPlan(
                    athlete_id=athlete.id,
                    number=number,
                    sport=sport,
                    format=fmt,
                    labelled=labelled,
                    name="Backward intervals" if labelled else _everyday_name(local, sport),
                    start_utc=aware.astimezone(UTC),
                    local_start=local,
                    utc_offset_s=int(aware.utcoffset().total_seconds()),
                    phases=phases,
                    steps=steps if labelled else (),
                )
            )
    return plans


def _session_kind(athlete: Athlete, week: int, noise: Noise) -> str:
    if noise.chance(athlete.walk_share):
        return "walk"
    if week >= athlete.backward_from_week and noise.chance(athlete.backward_share):
        return "backward"
    return "easy"


def _everyday_name(local: datetime, sport: str) -> str:
    """Strava-style default names ("Morning Run")."""
    hour = local.hour
    part = "Morning" if 5 <= hour < 11 else "Lunch" if hour < 14 else "Afternoon" if hour < 18 else "Evening"
    if hour < 5 or hour >= 21:
        part = "Night"
    return f"{part} {'Walk' if sport == 'walking' else 'Run'}"


# -- session builders -----------------------------------------------------------------------
# Each returns (phases, workout steps).  Step indices tie phases to steps (and to FIT laps).


def _warm_up(athlete: Athlete, noise: Noise, step: int) -> list[Phase]:
    """A slow start (1.75–2.2 m/s): the forward baseline must cover backward speeds (DESIGN §5)."""
    return [
        Phase("run", noise.integer(150, 240), noise.uniform_scalar(1.75, 1.95), step),
        Phase("run", noise.integer(150, 300), noise.uniform_scalar(1.95, 2.2), step),
    ]


def _cool_down(noise: Noise, step: int) -> list[Phase]:
    return [Phase("run", noise.integer(180, 360), noise.uniform_scalar(1.8, 2.05), step)]


def _steady(athlete: Athlete, noise: Noise, step: int, minutes: tuple[int, int]) -> list[Phase]:
    """Steady running for `minutes` (a range) in 2–4 blocks of different pace, maybe with strides."""
    total_s, blocks = noise.integer(*minutes) * 60, noise.integer(2, 4)
    phases = [
        Phase("run", total_s // blocks, athlete.easy_speed_mps + noise.uniform_scalar(-0.25, 0.35), step)
        for _ in range(blocks)
    ]
    if noise.chance(0.5):  # strides to ~4.2 m/s (with drift and hills): 20–30 s fast, 60–90 s easy
        for _ in range(noise.integer(4, 6)):
            phases.append(Phase("run", noise.integer(20, 30), noise.uniform_scalar(3.7, 4.05), step))
            phases.append(Phase("run", noise.integer(60, 90), athlete.easy_speed_mps - 0.3, step))
    return _with_lights(phases, noise)


def _with_lights(phases: list[Phase], noise: Noise) -> list[Phase]:
    """Insert 0–2 stops of 20–90 s (traffic lights) into long forward phases."""
    out = list(phases)
    for _ in range(noise.pick((0, 1, 1, 2))):
        long = [i for i, p in enumerate(out) if p.kind in ("run", "walk") and p.duration_s >= 240]
        if not long:
            break
        i = noise.pick(long)
        p = out[i]
        cut = noise.integer(60, p.duration_s - 60)
        stop = Phase("stop", noise.integer(20, 90), 0.0, p.step)
        out[i : i + 1] = [
            Phase(p.kind, cut, p.speed_mps, p.step),
            stop,
            Phase(p.kind, p.duration_s - cut, p.speed_mps, p.step),
        ]
    return out


def _easy(athlete: Athlete, noise: Noise, volume: TrainingVolume) -> tuple[tuple[Phase, ...], tuple[WorkoutStep, ...]]:
    phases = _warm_up(athlete, noise, 0) + _steady(athlete, noise, 1, volume.easy_minutes) + _cool_down(noise, 2)
    return tuple(phases), ()


def _walk(athlete: Athlete, noise: Noise, volume: TrainingVolume) -> tuple[tuple[Phase, ...], tuple[WorkoutStep, ...]]:
    """A walk at 1.3–1.6 m/s (cadence < 140 spm)."""
    phases = [
        Phase("walk", noise.integer(6, 12) * 60, noise.uniform_scalar(1.3, 1.6), 0) for _ in range(noise.integer(2, 4))
    ]
    return tuple(_with_lights(phases, noise)), ()


def _backward(
    athlete: Athlete,
    noise: Noise,
    volume: TrainingVolume,
    intervals: tuple[int, int] = (3, 6),
    seconds: tuple[int, ...] = (60, 90, 120, 120, 180, 180, 240),
) -> tuple[tuple[Phase, ...], tuple[WorkoutStep, ...]]:
    """Warm-up, 3–6 backward intervals of 1–4 min with forward recoveries, a run, a cool-down.

    Turning round takes a few seconds at walking pace; those seconds belong to the forward steps,
    so each backward step lasts exactly its nominal time.
    """
    steps = [WorkoutStep("Warm up", "warmup", 0)]
    phases = _warm_up(athlete, noise, 0)
    low, high = athlete.backward_speed_mps
    pace = noise.uniform_scalar(low, high)
    for _ in range(noise.integer(*intervals)):
        duration_s = noise.pick(seconds)
        speed = min(high, max(low, pace + noise.uniform_scalar(-0.12, 0.12)))
        phases.append(Phase("run", noise.integer(2, 4), 0.7, len(steps) - 1))  # turn round
        steps.append(WorkoutStep(_backward_step_name(duration_s), "active", duration_s))
        phases.append(Phase("backward", duration_s, round(speed, 3), len(steps) - 1))
        recovery = noise.integer(60, 150)
        steps.append(WorkoutStep("Recover", "recovery", 0))
        phases.append(Phase("run", 3, 0.7, len(steps) - 1))  # turn round
        phases.append(Phase("run", recovery - 3, noise.uniform_scalar(1.95, 2.4), len(steps) - 1))
    steps.append(WorkoutStep("Run", "active", 0))
    phases += _steady(athlete, noise, len(steps) - 1, (5, 12))
    steps.append(WorkoutStep("Cool down", "cooldown", 0))
    phases += _cool_down(noise, len(steps) - 1)
    # Forward steps (open-ended on the watch) get the time actually spent in them.
    spent = {i: sum(p.duration_s for p in phases if p.step == i) for i in range(len(steps))}
    steps = [s if s.duration_s else WorkoutStep(s.name, s.intensity, spent[i]) for i, s in enumerate(steps)]
    return tuple(phases), tuple(steps)


def _protocol(
    athlete: Athlete, noise: Noise, volume: TrainingVolume
) -> tuple[tuple[Phase, ...], tuple[WorkoutStep, ...]]:
    """A session of the study's protocol: 5–6 backward intervals of 4–6 min, 20–36 backward minutes."""
    return _backward(athlete, noise, volume, intervals=(5, 6), seconds=(240, 300, 360))


def _backward_step_name(seconds: int) -> str:
    return f"Backward {seconds // 60} min" if seconds % 60 == 0 else f"Backward {seconds} s"


_BUILDERS = {"easy": _easy, "walk": _walk, "backward": _backward, "protocol": _protocol}
