"""Percentiles without numpy."""

import math
from typing import Any


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not ordered:
        return float("nan")
    rank = min(len(ordered), max(1, math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def summarise(seconds: list[float], duration: float) -> dict[str, Any]:
    """Count, rate per second over ``duration``, and p50/p99/max in milliseconds."""
    ordered = sorted(seconds)
    return {
        "count": len(ordered),
        "rate": len(ordered) / duration if duration else 0.0,
        "p50_ms": 1000 * percentile(ordered, 0.50),
        "p99_ms": 1000 * percentile(ordered, 0.99),
        "max_ms": 1000 * ordered[-1] if ordered else float("nan"),
    }
