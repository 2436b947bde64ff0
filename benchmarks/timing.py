"""Timing helpers of the benchmark scripts: best of repeated runs, and two functions timed
in turn so that a busy moment of the shared machine falls on both alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def timed(function: Callable[..., Any], *args: Any, repeat: int = 3) -> tuple[float, Any]:
    """Best time (s) of ``repeat`` calls of ``function(*args)``, and the last result."""
    best, value = np.inf, None
    for _ in range(repeat):
        started = time.perf_counter()
        value = function(*args)
        best = min(best, time.perf_counter() - started)
    return best, value


def side_by_side(
    before: Callable[[], Any], after: Callable[[], Any], repeat: int
) -> tuple[float, Any, float, Any]:
    """Best time and result of each, the two run in turn ``repeat`` times."""
    times, values = [np.inf, np.inf], [None, None]
    for _ in range(repeat):
        for side, function in enumerate((before, after)):
            started = time.perf_counter()
            values[side] = function()
            times[side] = min(times[side], time.perf_counter() - started)
    return times[0], values[0], times[1], values[1]
