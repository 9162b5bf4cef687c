"""Range checks for configuration values: a value outside its range is refused with one line naming it."""

from __future__ import annotations

import math


def range_error(key: str, value: float, low: float | None, high: float | None,
                low_open: bool = False, high_open: bool = False) -> str | None:
    """Why `key = value` is outside [low, high] (parentheses for open ends; None: unbounded), or None."""
    inside = math.isfinite(value) and (
        (low is None or (value > low if low_open else value >= low))
        and (high is None or (value < high if high_open else value <= high)))
    if inside:
        return None
    lower = "-∞" if low is None else f"{low:g}"
    upper = "∞" if high is None else f"{high:g}"
    return f"{key} = {value!r} is outside {'(' if low_open or low is None else '['}{lower}, {upper}{')' if high_open or high is None else ']'}"
