"""The processing resolution of a live stream, following how fast the model runs.

A live source delivers frames at its own rate; a model slower than that rate shows fewer of
them (the live loop and the server drop the stale ones). The governor measures each model
call and, while calls take longer than the frame budget, lowers the longest processed side to
the next rung of a ladder below it; when they run well under budget it goes back up a rung.
The frame keeps its size: the reduced output is upsampled to it (`realtime.processing`).
"""

from __future__ import annotations

import logging
import time
from collections import deque

import numpy as np

from stylecast.realtime.stylizer import Stylizer

log = logging.getLogger("stylecast.governor")

# Longest processing side, from full size down; the governor moves along this ladder.
RESOLUTION_LADDER: tuple[int | None, ...] = (None, 960, 720, 640, 480, 400, 320, 256, 192)


def smallest_cap(*caps: int | None) -> int | None:
    """The tightest of several optional caps on the longest side (None: no cap)."""
    given = [cap for cap in caps if cap]
    return min(given) if given else None


class ResolutionGovernor:
    """Steps the processing size down when calls exceed the budget, up when well under it."""

    def __init__(self, budget_s: float, window: int = 8):
        self.budget = budget_s
        self.window = window
        self.level = 0
        self.recent: deque[float] = deque(maxlen=window)

    @property
    def max_size(self) -> int | None:
        return RESOLUTION_LADDER[self.level]

    def observe(self, seconds: float, processed_side: int) -> None:
        """One model call took `seconds` with `processed_side` pixels on the longest side.

        Stepping down goes straight to the first rung below the processed side: the rungs
        above it would not change the frame (a 640x480 camera under the 960 and 720 caps)
        and would each cost a window of slow frames.
        """
        self.recent.append(seconds)
        if len(self.recent) < self.window:
            return
        typical = float(np.median(self.recent))
        if typical > 1.15 * self.budget and self.level < len(RESOLUTION_LADDER) - 1:
            self.level = next(
                (
                    level
                    for level in range(self.level + 1, len(RESOLUTION_LADDER))
                    if (cap := RESOLUTION_LADDER[level]) is not None and cap < processed_side
                ),
                len(RESOLUTION_LADDER) - 1,
            )
            self.recent.clear()
            log.info(
                "model calls take %.0f ms > %.0f ms budget: processing at %s px",
                typical * 1e3,
                self.budget * 1e3,
                self.max_size,
            )
        elif typical < 0.45 * self.budget and self.level > 0:
            self.level -= 1
            self.recent.clear()
            log.info("model calls take %.0f ms: back up to %s px", typical * 1e3, self.max_size or "full size")


class AdaptiveStylizer:
    """A live source's stylize function (RGB frame -> RGB frame) with a governed processing size.

    The user's own `--max-size` stays an upper bound; the governor may go lower.
    """

    def __init__(self, stylizer: Stylizer, target_fps: float):
        self.stylizer = stylizer
        self.user_max_size = stylizer.options.max_size
        self.governor = ResolutionGovernor(1.0 / target_fps)

    @property
    def max_size(self) -> int | None:
        return smallest_cap(self.user_max_size, self.governor.max_size)

    def describe(self) -> str:
        return f"at {self.max_size} px" if self.max_size else "full size"

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        if self.max_size != self.stylizer.options.max_size:  # only when the governor moved
            self.stylizer.set_max_size(self.max_size)
        started = time.perf_counter()
        out = self.stylizer.one(frame)
        processed = self.stylizer.options.processing_size(*frame.shape[:2])
        self.governor.observe(time.perf_counter() - started, max(processed))
        return out
