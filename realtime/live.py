"""The live loop: newest frame from the source -> stylize -> sinks, with fps and latency.

Latency is bounded by design: the source thread overwrites an unconsumed frame (counted as
dropped) instead of queueing it, so a frame waits at most one model run before it is taken.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from stylecast.realtime.sinks import Sink
from stylecast.realtime.sources import LiveSource

WARM_UP_S = 30.0  # how long the first frame may take on top of `seconds` (camera start, warm-up call)


@dataclass
class LiveStats:
    frames: int  # frames stylized and delivered to the sinks, the first one included
    # The rest leave the first frame out: it warms the model up (see run_live).
    dropped: int  # frames the source produced that were replaced by newer ones
    seconds: float
    fps: float
    latency_ms_mean: float  # capture -> written to the sinks
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_max: float


class RollingRate:
    """Frames per second over the last `window` seconds, for the on-screen overlay."""

    def __init__(self, window: float = 1.0):
        self.window = window
        self.times: deque[float] = deque()

    def tick(self, now: float) -> float:
        self.times.append(now)
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0


def draw_overlay(rgb: np.ndarray, lines: list[str]) -> np.ndarray:
    """Text in the top-left corner on a dark band (a copy; the input is left alone)."""
    out = rgb.copy()
    scale = max(0.4, rgb.shape[0] / 720)
    height = int(22 * scale) + 4
    cv2.rectangle(out, (0, 0), (int(260 * scale), height * len(lines) + 6), (0, 0, 0), -1)
    for i, line in enumerate(lines):
        y = (i + 1) * height
        cv2.putText(out, line, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def run_live(
    source: LiveSource,
    stylize: Callable[[np.ndarray], np.ndarray],
    sinks: list[Sink],
    seconds: float | None = None,
    max_frames: int | None = None,
    overlay: bool = True,
    status: Callable[[], str] | None = None,
) -> LiveStats:
    """Run until the source ends, a sink asks to stop, `seconds` pass or `max_frames` are shown.

    `status` gives one more overlay line (the processing size of an adaptive stylizer).
    """
    latencies: list[float] = []  # of the frames after the first
    shown = 0
    rate = RollingRate()
    started, dropped_before = time.perf_counter(), 0
    source.start()
    try:
        while True:
            # (before the first frame, `seconds` also bounds a source that never delivers one)
            if seconds is not None and time.perf_counter() - started >= seconds + (0.0 if shown else WARM_UP_S):
                break
            if max_frames is not None and shown >= max_frames:
                break
            frame = source.slot.take(timeout=0.5)
            if frame is None:
                if source.error is not None:
                    raise source.error
                if source.slot.closed:
                    break
                continue
            out = stylize(frame.rgb)
            now = time.perf_counter()
            fps = rate.tick(now)
            if overlay:
                latency_ms = (now - frame.captured_at) * 1000
                text = [f"{fps:5.1f} fps", f"{latency_ms:5.0f} ms", f"{source.slot.dropped - dropped_before} dropped"]
                if status is not None:
                    text.append(status())
                out = draw_overlay(out, text)
            keep_going = all([sink.write(out, frame.captured_at) for sink in sinks])
            shown += 1
            if shown == 1:
                # The first frame warms up: the first call at a frame size is the slow one (the
                # auto backend times its candidates, compiled backends build kernels). The
                # clock, the latency figures and the dropped count start after it.
                started, dropped_before = time.perf_counter(), source.slot.dropped
            else:
                latencies.append(time.perf_counter() - frame.captured_at)
            if not keep_going:
                break
    except KeyboardInterrupt:
        pass  # Ctrl-C ends a live session normally: recordings are kept
    finally:
        source.stop()
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return LiveStats(
        frames=shown,
        dropped=source.slot.dropped - dropped_before,
        seconds=elapsed,
        fps=len(latencies) / elapsed if elapsed else 0.0,
        latency_ms_mean=float(ms.mean()),
        latency_ms_p50=float(np.percentile(ms, 50)),
        latency_ms_p95=float(np.percentile(ms, 95)),
        latency_ms_max=float(ms.max()),
    )
