"""Which partition ranges a run should cover: few runs, and no long empty stretches re-published."""

from __future__ import annotations

from datetime import date


def months_of(days: list[date]) -> list[date]:
    """The first day of each month that `days` fall in."""
    return sorted({d.replace(day=1) for d in days})


def plan_ranges(months: list[date], max_ranges: int = 2) -> list[tuple[date, date]]:
    """Cover `months` (first days of months) with at most `max_ranges` ranges, split at the widest gaps."""
    ordered = sorted(set(months))
    if not ordered:
        return []
    gaps = sorted(range(1, len(ordered)), key=lambda i: (ordered[i] - ordered[i - 1], i), reverse=True)
    cuts = sorted(i for i in gaps[: max_ranges - 1] if (ordered[i] - ordered[i - 1]).days > 31)
    bounds = [0, *cuts, len(ordered)]
    return [(ordered[a], ordered[b - 1]) for a, b in zip(bounds, bounds[1:])]
