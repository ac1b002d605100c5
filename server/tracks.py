"""The stylized video track: a browser's camera in, the worker's output out, latency bounded.

aiortc queues every decoded frame of a remote track without limit and hands them out in
order, so a consumer slower than the camera falls further behind each second (aiortc issue
1192). Here a task drains the remote track as fast as frames arrive into a mailbox of two
frames where the newest wins over any frame that has waited too long; every frame thrown away
before it is used is dropped and counted.

A second task stylizes one frame ahead of the reader: the moment aiortc takes frame k to
encode it on its executor thread, the worker starts on the newest camera frame, so model and
encoder overlap instead of taking turns. At most one stylized frame waits for the reader, so
latency stays bounded, and the worker never stylizes a frame that is then thrown away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import cv2
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from stylecast.server.worker import ClientSettings, InferenceWorker

log = logging.getLogger("stylecast.server")


@dataclass
class TrackStats:
    received: int = 0  # frames that arrived from the browser
    dropped: int = 0  # thrown away for a newer frame before they were used
    processed: int = 0  # stylized and sent
    server_ms: float = 0.0  # last frame: taken from the slot -> stylized frame ready
    width: int = 0
    height: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return dict(vars(self))


StylizedImage = tuple[np.ndarray, int | None, Fraction | None]  # uint8 RGB, pts, time base


class FrameMailbox:
    """Camera frames waiting for the model, on the event loop: the newest wins over stale ones.

    A frame is stale once a newer one waits behind it and it has waited `max_wait_s`; take()
    drops stale frames (counted) and returns the oldest of the rest, and at most two frames wait.
    With `max_wait_s` 0 only the newest frame is ever used. A small allowance keeps frames that
    arrive in a bunch: at 30 fps the browser's encoder and jitter buffer deliver them 11 to 55 ms
    apart, so a model turn (23 ms median, 38 ms p95 on 2 cores) often spans two arrivals although
    the model keeps up on average. In 300 s streams (benchmarks/webrtc_latency.py) keeping only the
    newest dropped 2.8% of the camera's frames and a 50 ms allowance 1.5%, for 9 ms more p95
    latency. Latency cannot grow: a frame is used at most `max_wait_s` later than the newest would be.
    """

    capacity = 2

    def __init__(self, stats: TrackStats, max_wait_s: float, clock: Callable[[], float] = time.perf_counter):
        self.stats = stats
        self.max_wait_s = max_wait_s
        self.clock = clock
        self._frames: deque[tuple[float, VideoFrame]] = deque()  # (arrival time, frame), oldest first
        self._event = asyncio.Event()
        self.closed = False

    def put(self, frame: VideoFrame) -> None:
        self.stats.received += 1
        self._frames.append((self.clock(), frame))
        if len(self._frames) > self.capacity:
            self._frames.popleft()
            self.stats.dropped += 1
        self._event.set()

    async def take(self) -> VideoFrame:
        while not self._frames:
            if self.closed:
                raise MediaStreamError
            self._event.clear()
            await self._event.wait()
        now = self.clock()
        while len(self._frames) > 1 and now - self._frames[0][0] >= self.max_wait_s:
            self._frames.popleft()
            self.stats.dropped += 1
        return self._frames.popleft()[1]

    def close(self) -> None:
        self.closed = True
        self._event.set()


def fit_pixels(rgb: np.ndarray, max_pixels: int) -> np.ndarray:
    """Scale down (keeping the aspect) when a frame has more than `max_pixels` pixels."""
    h, w = rgb.shape[:2]
    if h * w <= max_pixels:
        return rgb
    scale = (max_pixels / (h * w)) ** 0.5
    return cv2.resize(
        rgb, (max(2, int(w * scale)) // 2 * 2, max(2, int(h * scale)) // 2 * 2), interpolation=cv2.INTER_AREA
    )


class StylizedTrack(MediaStreamTrack):
    """Video track that stylizes the newest frame of `source` each time it is read."""

    kind = "video"

    def __init__(
        self,
        source: MediaStreamTrack,
        worker: InferenceWorker,
        settings: ClientSettings,
        max_pixels: int = 1280 * 720,
        stamp_rows: int = 0,
        max_wait_s: float = 0.0,
    ):
        super().__init__()
        self.source = source
        self.worker = worker
        self.settings = settings
        self.max_pixels = max_pixels
        self.stamp_rows = stamp_rows  # rows at the bottom that carry the page's timestamp code
        self.stats = TrackStats()
        self._slot = FrameMailbox(self.stats, max_wait_s)
        self._ready: asyncio.Queue[StylizedImage | Exception] = asyncio.Queue(1)  # or what ended the track
        self._taken = asyncio.Event()  # the reader took the last stylized frame: start the next
        self._taken.set()
        self._drain = asyncio.ensure_future(self._pull())
        self._ahead = asyncio.ensure_future(self._stylize_ahead())
        worker.register()

    # Both loops end by returning, cancelled or not: a task that ends in an exception keeps it, and
    # its traceback's frames keep this track, its frames and its peer alive until the cyclic
    # collector runs; exceptions handed to the reader go without their tracebacks for the same reason.
    async def _pull(self) -> None:
        try:
            while True:
                self._slot.put(cast(VideoFrame, await self.source.recv()))  # a video track (app.on_track)
        except (MediaStreamError, asyncio.CancelledError):
            pass
        finally:
            self._slot.close()

    async def _stylize_ahead(self) -> None:
        try:
            while True:
                await self._taken.wait()  # so the camera frame is the newest when the reader frees up
                self._taken.clear()
                self._ready.put_nowait(await self._stylize(await self._slot.take()))
        except asyncio.CancelledError:  # stop(), or the worker cancelled the job as it stopped
            if self._ready.empty():  # the reader ends too
                self._ready.put_nowait(MediaStreamError())
        except MediaStreamError:  # the camera ended
            self._ready.put_nowait(MediaStreamError())
        except Exception as exc:  # noqa: BLE001 - handed to the reader, which ends the track
            log.warning("stylizing a frame failed: %s: %s", type(exc).__name__, exc)
            self._ready.put_nowait(exc.with_traceback(None))

    async def recv(self) -> VideoFrame:
        rgb, pts, time_base = await self.next_image()
        out = VideoFrame.from_ndarray(rgb, format="rgb24")
        out.pts, out.time_base = pts, time_base
        return out

    async def next_image(self) -> StylizedImage:
        """The next stylized frame: uint8 RGB with the camera frame's pts and time base."""
        if self.readyState != "live":
            raise MediaStreamError
        item = await self._ready.get()
        if isinstance(item, Exception):
            self._ready.put_nowait(item)  # every later read ends the same way
            raise item
        self._taken.set()
        return item

    async def _stylize(self, frame: VideoFrame) -> StylizedImage:
        started = time.perf_counter()
        full = frame.to_ndarray(format="rgb24")
        rgb = fit_pixels(full, self.max_pixels)
        rows = round(self.stamp_rows * rgb.shape[0] / full.shape[0])  # scaled with the frame
        rows = rows if 0 < rows < rgb.shape[0] // 2 else 0
        picture, stamp = (rgb[:-rows], rgb[-rows:]) if rows else (rgb, None)
        stylized = await self.worker.submit(picture, self.settings)
        if stamp is not None:  # the timestamp code travels back untouched
            stylized = np.concatenate([stylized, stamp], axis=0)
        self.stats.processed += 1
        self.stats.server_ms = (time.perf_counter() - started) * 1000
        self.stats.height, self.stats.width = stylized.shape[:2]
        return stylized, frame.pts, frame.time_base

    def stop(self) -> None:
        if self.readyState == "live":
            self.worker.unregister()
        super().stop()
        self._drain.cancel()
        self._ahead.cancel()
        self._slot.close()
        if self._ready.empty():  # a reader waiting for the next frame returns now
            self._ready.put_nowait(MediaStreamError())
