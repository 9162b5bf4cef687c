"""Seeded randomness: scalars for plans, Polars columns of noise for signals.

Every stream is keyed by its purpose (seed, athlete, session, signal), so adding an athlete or a
signal never shifts the numbers of another.  The generator is the standard library's Mersenne
Twister (`random.Random`): its `getrandbits` sequence for an integer seed is stable across Python
versions, unlike Arrow's generator (and NumPy is not installed).  One call draws all the bits of a
stream; Polars turns them into noise.
"""

from __future__ import annotations

import hashlib
import math
import random

import polars as pl
import pyarrow as pa

_TWO_POW_53 = float(2**53)


def derive_seed(*key: object) -> int:
    """A 64-bit seed from a key such as ``(seed, "alice", "session", 12)``."""
    digest = hashlib.sha256("\x1f".join(map(str, key)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


class Noise:
    """Random choices for one purpose (a week's plan, a session's shape, a weight series)."""

    def __init__(self, *key: object) -> None:
        self.rng = random.Random(derive_seed(*key))

    def uniform_scalar(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high], both ends included."""
        return self.rng.randint(low, high)

    def pick(self, options):
        return self.rng.choice(options)


def noise_frame(n: int, key: tuple, streams: dict[str, float | tuple[float, float]]) -> pl.DataFrame:
    """n rows of seeded noise, one column per stream, each drawn from its own key.

    A stream is `sigma` (white normal noise) or `(tau_s, sigma)`: stationary AR(1) noise at 1 Hz,
    exponentially correlated over `tau_s`.  An exponential moving average of white noise is AR(1)
    with variance α/(2−α); the first draw is scaled to that variance, so the series is stationary
    from its first sample.  Normals come from pairs of uniforms (Box–Muller).
    """
    arrays: dict[str, pa.Array] = {}
    columns: list[pl.Expr] = []
    for name, spec in streams.items():
        raw = random.Random(derive_seed(*key, name)).getrandbits(128 * n).to_bytes(16 * n, "little") if n else b""
        for half in (0, 1):
            buffer = pa.py_buffer(raw[8 * n * half : 8 * n * (half + 1)])
            arrays[f"{name}.{half}"] = pa.Array.from_buffers(pa.uint64(), n, [None, buffer])
        z = _normal(f"{name}.0", f"{name}.1")
        if isinstance(spec, tuple):
            tau_s, sigma = spec
            alpha = 1.0 - math.exp(-1.0 / tau_s)
            k = math.sqrt(alpha / (2.0 - alpha))
            z = pl.when(pl.int_range(pl.len()) == 0).then(z * k).otherwise(z)
            columns.append((z.ewm_mean(alpha=alpha, adjust=False) * (sigma / k)).alias(name))
        else:
            columns.append((z * spec).alias(name))
    return pl.from_arrow(pa.table(arrays)).select(columns)


def _unit(column: str) -> pl.Expr:
    """Floats in [0, 1) from the top 53 bits of 64-bit words."""
    return (pl.col(column) // 2048).cast(pl.Float64) / _TWO_POW_53


def _normal(first: str, second: str) -> pl.Expr:
    return ((1.0 - _unit(first)).log() * -2.0).sqrt() * (_unit(second) * (2 * math.pi)).cos()
