"""Warm-up, repeats, and the summary of the samples: median and spread, never a single run; and
the end of every benchmark: its table printed, its results written as JSON."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from waterrock import files


def summarize(samples_ms) -> dict:
    """Median, interquartile range, min and max of millisecond samples."""
    a = np.asarray(list(samples_ms), dtype=np.float64)
    if a.size == 0:
        raise ValueError("no samples to summarize")
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {
        "median_ms": float(med), "iqr_ms": float(q3 - q1), "min_ms": float(a.min()),
        "max_ms": float(a.max()), "n": int(a.size),
    }


def budget_crossing(lo: tuple[float, float], hi: tuple[float, float], budget_ms: float) -> float:
    """The count whose cost is ``budget_ms``, between two measured (count, ms) points around it:
    log(ms) interpolated linearly in log(count), as a frame's cost is close to a power of its
    particle count between neighbouring sizes."""
    slope = (math.log(hi[1]) - math.log(lo[1])) / (math.log(hi[0]) - math.log(lo[0])) if hi[0] != lo[0] else 1.0
    if slope <= 0:  # noise made the larger count the cheaper one: the smaller is all that is known
        return lo[0]
    return math.exp(math.log(lo[0]) + (math.log(budget_ms) - math.log(lo[1])) / slope)


def time_calls(fn: Callable[[], object], repeat: int, warmup: int = 1,
               sync: Callable[[], object] | None = None) -> dict:
    """Call ``fn`` ``warmup`` times untimed, then ``repeat`` times, each fenced by ``sync``
    (the device's finish, so queued work is counted); the summary of the timed calls."""
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    for _ in range(warmup):
        fn()
    if sync is not None:
        sync()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        samples.append(1e3 * (time.perf_counter() - t0))
    return summarize(samples)


def spread_text(s: dict) -> str:
    """'12.3 ms (IQR 0.4)' for tables."""
    return f"{s['median_ms']:.2f} (IQR {s['iqr_ms']:.2f})"


def report(result: dict, table: Callable[[dict], str], json_path=None, indent: int | None = 1) -> dict:
    """Print a benchmark's table and, when asked, write its results as JSON."""
    print(table(result))
    if json_path:
        files.write_json(json_path, result, indent=indent)
    return result
