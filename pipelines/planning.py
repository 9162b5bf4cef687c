"""Which day ranges a run should cover: few runs, and no long empty stretches re-published."""

from __future__ import annotations

from datetime import date


def plan_ranges(days: list[date], max_ranges: int = 2) -> list[tuple[date, date]]:
    """Cover `days` with at most `max_ranges` ranges, splitting at the widest gaps between them."""
    ordered = sorted(set(days))
    if not ordered:
        return []
    gaps = sorted(range(1, len(ordered)), key=lambda i: (ordered[i] - ordered[i - 1], i), reverse=True)
    cuts = sorted(i for i in gaps[: max_ranges - 1] if (ordered[i] - ordered[i - 1]).days > 1)
    bounds = [0, *cuts, len(ordered)]
    return [(ordered[a], ordered[b - 1]) for a, b in zip(bounds, bounds[1:])]
